"""Minimal stand-in for the parts of DGL that RecBole 1.2.1's KGAT uses (see ../README.md)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__version__ = "0.0-shim"


class _EdgeBatch:
    def __init__(self, data: dict):
        self.data = data


class DGLGraph:
    def __init__(self, src: torch.Tensor, dst: torch.Tensor, num_nodes: int | None = None):
        self._src = torch.as_tensor(src).long()
        self._dst = torch.as_tensor(dst).long()
        if num_nodes is None:
            num_nodes = int(max(self._src.max().item(), self._dst.max().item())) + 1 if len(self._src) else 0
        self._n = num_nodes
        self.edata: dict[str, torch.Tensor] = {}

    def num_nodes(self) -> int:
        return self._n

    def num_edges(self) -> int:
        return len(self._src)

    def edges(self):
        return self._src, self._dst

    def filter_edges(self, predicate) -> torch.Tensor:
        mask = predicate(_EdgeBatch(self.edata))
        return torch.nonzero(torch.as_tensor(mask), as_tuple=False).flatten()

    def adjacency_matrix(self, transpose: bool = False, ctx=None, scipy_fmt: str | None = None, etype=None):
        row, col = (self._dst, self._src) if transpose else (self._src, self._dst)
        if scipy_fmt is None:
            idx = torch.stack([row, col])
            return torch.sparse_coo_tensor(idx, torch.ones(len(row)), (self._n, self._n))
        m = sp.coo_matrix(
            (np.ones(len(row), dtype=np.float32), (row.numpy(), col.numpy())), shape=(self._n, self._n)
        )
        return m.asformat(scipy_fmt)


def graph(data, num_nodes: int | None = None, **_) -> DGLGraph:
    src, dst = data
    return DGLGraph(src, dst, num_nodes)


def edge_subgraph(g: DGLGraph, edges, preserve_nodes: bool = True, **_) -> DGLGraph:
    if not preserve_nodes:
        raise NotImplementedError("dgl shim: only preserve_nodes=True is implemented")
    eids = torch.as_tensor(edges).long()
    sub = DGLGraph(g._src[eids], g._dst[eids], g._n)
    sub.edata = {k: v[eids] for k, v in g.edata.items()}
    return sub
