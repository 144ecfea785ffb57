"""Minimal stand-in for torch_scatter (the functions RecBole 1.2.1's KGIN / MCCLK call)."""
from __future__ import annotations

import torch

__version__ = "0.0-shim"


def _expand_index(index: torch.Tensor, src: torch.Tensor, dim: int) -> torch.Tensor:
    # torch_scatter broadcasts a 1-D index along `dim`; index_add_ takes exactly that form.
    if index.dim() != 1:
        raise NotImplementedError("torch_scatter shim: only 1-D index tensors are implemented")
    return index.long()


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim: int = -1, out=None, dim_size=None) -> torch.Tensor:
    dim = dim % src.dim()
    index = _expand_index(index, src, dim)
    if dim_size is None:
        dim_size = int(index.max().item()) + 1 if index.numel() else 0
    shape = list(src.shape)
    shape[dim] = dim_size
    res = torch.zeros(shape, dtype=src.dtype, device=src.device) if out is None else out
    return res.index_add_(dim, index, src)


scatter_add = scatter_sum


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim: int = -1, out=None, dim_size=None) -> torch.Tensor:
    dim = dim % src.dim()
    total = scatter_sum(src, index, dim, out, dim_size)
    ones = torch.ones(src.shape[dim], dtype=src.dtype, device=src.device)
    count = torch.zeros(total.shape[dim], dtype=src.dtype, device=src.device).index_add_(0, index.long(), ones)
    view = [1] * total.dim()
    view[dim] = -1
    return total / count.clamp(min=1).view(view)


def scatter_max(src: torch.Tensor, index: torch.Tensor, dim: int = -1, dim_size=None):
    dim = dim % src.dim()
    if dim_size is None:
        dim_size = int(index.max().item()) + 1 if index.numel() else 0
    shape = list(src.shape)
    shape[dim] = dim_size
    idx = index.long().view([-1 if d == dim else 1 for d in range(src.dim())]).expand_as(src)
    res = torch.full(shape, float("-inf"), dtype=src.dtype, device=src.device)
    res = res.scatter_reduce(dim, idx, src, reduce="amax", include_self=True)
    return res, None


def scatter_softmax(src: torch.Tensor, index: torch.Tensor, dim: int = -1, dim_size=None) -> torch.Tensor:
    dim = dim % src.dim()
    mx, _ = scatter_max(src, index, dim, dim_size)
    shifted = (src - mx.index_select(dim, index.long())).exp()
    denom = scatter_sum(shifted, index, dim, dim_size=mx.shape[dim])
    return shifted / denom.index_select(dim, index.long()).clamp(min=1e-16)
