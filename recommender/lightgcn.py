"""LightGCN (He et al., SIGIR 2020) with BPR, its 0-layer special case BPR-MF, and a
knowledge-aware variant that propagates over the collaborative knowledge graph.

The graph is users + items (+ entities). Each relation gets its own symmetric-normalised
block, held as a torch sparse CSR matrix (``LGConv`` on CSR is ~5x faster than on an
edge_index on CPU). The knowledge-aware variant mixes the blocks with learned, positive
per-relation weights: E' = A_ui E + Σ_r w_r A_r E, so the model learns how much a brand or a
category should pull items together. Items with no interactions keep a zero id embedding, so
their representation comes from their entities alone: cold items are scored inductively.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import LGConv

from recommender.data import Split, history_matrix
from recommender.knowledge import relation_matrices
from recommender.scoring import FitContext, Histories, Knowledge, Scorer, pick_device


def to_torch_csr(m: sp.spmatrix) -> torch.Tensor:
    m = sp.csr_matrix(m, dtype=np.float32)
    with warnings.catch_warnings():  # "CSR support is in beta": it is what makes CPU training fast
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.as_tensor(m.indptr.astype(np.int64)),
            torch.as_tensor(m.indices.astype(np.int64)),
            torch.as_tensor(m.data),
            size=m.shape,
        )


def graph_blocks(
    interactions: sp.csr_matrix, knowledge: Knowledge | None, n_users: int, n_items: int
) -> list[sp.csr_matrix]:
    """Symmetric-normalised adjacency blocks over nodes [users | items | entities].

    Block 0 holds user–item edges, block 1 + r the item–entity edges of relation r. Degrees
    are taken over the whole graph so the blocks sum to the usual D^-1/2 A D^-1/2.
    """
    n_ent = knowledge.n_entities if knowledge is not None else 0
    n = n_users + n_items + n_ent
    raw = [sp.bmat([[None, interactions], [interactions.T, None]], format="csr")]
    if knowledge is not None and n_ent:
        for rel in relation_matrices(knowledge.item_entity, n_items, n_ent, knowledge.n_relations):
            raw.append(sp.bmat([[None, rel], [rel.T, None]], format="csr"))
    pad = []
    for k, b in enumerate(raw):
        off = 0 if k == 0 else n_users
        full = sp.csr_matrix((n, n), dtype=np.float32)
        full = full + sp.csr_matrix(
            (b.tocoo().data, (b.tocoo().row + off, b.tocoo().col + off)), shape=(n, n), dtype=np.float32
        )
        pad.append(full.tocsr())
    deg = np.asarray(sum(pad).sum(axis=1)).ravel()
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg, dtype=np.float64), where=deg > 0).astype(np.float32)
    d = sp.diags(inv)
    return [(d @ b @ d).tocsr() for b in pad]


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ x`` for a symmetric sparse ``A``, whose gradient wrt ``x`` is ``A @ grad`` again.

    torch's CSR matmul differentiates through ``A.T``, which it rebuilds (a sort of every nonzero)
    on each backward pass: three layers times one block per relation per batch. Every block of
    :func:`graph_blocks` is symmetric (D^-1/2 [[0, R], [R^T, 0]] D^-1/2), so the transpose is the
    matrix itself and the backward pass is one more product (2-3x less time per step, measured
    in bench/RESULTS.md). No gradient flows to ``A`` (the graph is not learned).
    """

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, torch.sparse.mm(ctx.adj, grad)


class SymmetricLGConv(LGConv):
    """PyG's ``LGConv`` (unnormalised) over a symmetric sparse adjacency: the fused sparse path
    with the symmetric backward above. Same outputs and gradients as ``LGConv`` (tested)."""

    def message_and_aggregate(self, adj_t, x: torch.Tensor) -> torch.Tensor:
        return _SymmetricSpMM.apply(adj_t, x)


@dataclass
class RelationGraph:
    """Every relation block of :func:`graph_blocks` in one CSR matrix, each nonzero tagged with its
    relation, so the knowledge-aware layer is one sparse product per layer instead of one per
    relation (bench/propagation.py times both). ``rows`` is each nonzero's row (for the relation
    weights' gradient)."""

    crow: torch.Tensor
    col: torch.Tensor
    base: torch.Tensor
    rel: torch.Tensor
    rows: torch.Tensor
    n: int

    @classmethod
    def from_blocks(cls, blocks: list[sp.csr_matrix]) -> "RelationGraph":
        coo = [b.tocoo() for b in blocks]
        rows = np.concatenate([c.row for c in coo]).astype(np.int64)
        cols = np.concatenate([c.col for c in coo]).astype(np.int64)
        base = np.concatenate([c.data for c in coo]).astype(np.float32)
        rel = np.concatenate([np.full(c.nnz, r, dtype=np.int64) for r, c in enumerate(coo)])
        order = np.lexsort((cols, rows))  # CSR order; a pair in two relations stays two entries
        rows, cols, base, rel = rows[order], cols[order], base[order], rel[order]
        n = blocks[0].shape[0]
        crow = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int64)
        return cls(torch.as_tensor(crow), torch.as_tensor(cols), torch.as_tensor(base),
                   torch.as_tensor(rel), torch.as_tensor(rows), n)

    def to(self, device) -> "RelationGraph":
        return RelationGraph(self.crow.to(device), self.col.to(device), self.base.to(device), self.rel.to(device),
                             self.rows.to(device), self.n)

    def matrix(self, weights: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.crow, self.col, self.base * weights[self.rel], size=(self.n, self.n))


class _WeightedRelationSpMM(torch.autograd.Function):
    """``(Σ_r w_r A_r) @ x`` over a :class:`RelationGraph` of symmetric blocks, differentiable in
    ``x`` (the same product again: the weighted sum of symmetric blocks is symmetric) and in ``w``
    (∂/∂w_r = Σ over r's nonzeros (i, j) of A_r[i, j] · <grad_i, x_j>)."""

    CHUNK = 1 << 16  # nonzeros per gather in the weights' gradient (memory: CHUNK × dim floats)

    @staticmethod
    def forward(ctx, graph: RelationGraph, adj: torch.Tensor, weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``adj``: ``graph.matrix(weights)``, built once per forward pass and shared by its layers."""
        ctx.graph, ctx.adj, ctx.n_rel = graph, adj, len(weights)
        ctx.save_for_backward(x)
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        g = ctx.graph
        grad_x = torch.sparse.mm(ctx.adj, grad) if ctx.needs_input_grad[3] else None
        grad_w = None
        if ctx.needs_input_grad[2]:
            grad_w = torch.zeros(ctx.n_rel, dtype=grad.dtype, device=grad.device)
            for s in range(0, len(g.rows), _WeightedRelationSpMM.CHUNK):
                sl = slice(s, s + _WeightedRelationSpMM.CHUNK)
                per_nnz = g.base[sl] * (grad[g.rows[sl]] * x[g.col[sl]]).sum(1)
                grad_w.index_add_(0, g.rel[sl], per_nnz)
        return None, None, grad_w, grad_x


class GraphEncoder(nn.Module):
    """Node embeddings → LightGCN layer mean. Shapes: out (n_nodes, dim)."""

    def __init__(self, n_nodes: int, dim: int, layers: int, n_relations: int):
        super().__init__()
        self.embedding = nn.Embedding(n_nodes, dim)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.layers = layers
        self.conv = SymmetricLGConv(normalize=False)  # blocks are symmetric (graph_blocks)
        self.relation_logit = nn.Parameter(torch.zeros(n_relations))  # softplus(0) ≈ 0.69

    def relation_weights(self) -> torch.Tensor:
        return F.softplus(self.relation_logit)

    def forward(self, blocks: list, node_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``blocks``: [the user-item CSR block] or [that, a RelationGraph of the relation blocks]."""
        x = self.embedding.weight
        if node_mask is not None:
            x = x * node_mask[:, None]
        out = [x]
        w = self.relation_weights()
        relations = blocks[1].matrix(w.detach()) if len(blocks) > 1 else None
        for _ in range(self.layers):
            h = self.conv(x, blocks[0])  # user-item block: PyG's LGConv
            if relations is not None:  # every relation block at once, each weighted by its learned w_r
                h = h + _WeightedRelationSpMM.apply(blocks[1], relations, w, x)
            x = h
            out.append(x)
        return torch.stack(out).mean(0)


class GraphRecommender(Scorer):
    """LightGCN (``layers`` ≥ 1), BPR-MF (``layers`` = 0), KG-aware with ``use_knowledge``."""

    trainable = True

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 64,
        layers: int = 3,
        use_knowledge: bool = False,
        knowledge: Knowledge | None = None,
        name: str | None = None,
        lr: float = 5e-3,
        reg: float = 1e-4,
        batch_size: int = 2048,
        epochs: int = 300,
        eval_every: int = 5,
        patience: int = 5,
        device: str = "auto",
        max_seconds: float | None = None,
    ):
        self.name = name or ("kgcn" if use_knowledge else ("lightgcn" if layers else "bprmf"))
        self.n_users, self.n_items, self.dim, self.layers = n_users, n_items, dim, layers
        self.use_knowledge = use_knowledge
        self.knowledge = knowledge if use_knowledge else None
        self.n_entities = self.knowledge.n_entities if self.knowledge else 0
        self.n_relations = self.knowledge.n_relations if self.knowledge else 0
        self.hp = dict(lr=lr, reg=reg, batch_size=batch_size, epochs=epochs, eval_every=eval_every, patience=patience,
                       max_seconds=max_seconds)
        self.device = pick_device(device)
        self.encoder = GraphEncoder(n_users + n_items + self.n_entities, dim, layers, self.n_relations)
        self.user_emb = torch.zeros(n_users, dim)
        self.item_emb = torch.zeros(n_items, dim)
        self.fit_info: dict = {}

    # -- graph state -------------------------------------------------------------------
    def _graph(self, histories: Histories) -> tuple[list[torch.Tensor], torch.Tensor]:
        inter = history_matrix(list(histories), len(histories), self.n_items)
        if inter.shape[0] < self.n_users:
            inter = sp.vstack([inter, sp.csr_matrix((self.n_users - inter.shape[0], self.n_items))]).tocsr()
        raw = graph_blocks(inter, self.knowledge, self.n_users, self.n_items)
        blocks = [to_torch_csr(raw[0]).to(self.device)]
        if len(raw) > 1:
            blocks.append(RelationGraph.from_blocks(raw[1:]).to(self.device))
        # Items without interactions carry no trained id embedding: zero it (see module doc).
        mask = torch.ones(self.n_users + self.n_items + self.n_entities)
        item_deg = np.asarray(inter.sum(axis=0)).ravel()
        mask[self.n_users:self.n_users + self.n_items] = torch.as_tensor(item_deg > 0, dtype=torch.float32)
        return blocks, mask.to(self.device)

    @torch.no_grad()
    def _propagate(self, blocks, mask) -> None:
        self.encoder.eval()
        out = self.encoder(blocks, mask).cpu()
        self.user_emb = out[: self.n_users].clone()
        self.item_emb = out[self.n_users:self.n_users + self.n_items].clone()

    def prepare(self, histories: Histories) -> None:
        self.encoder.to(self.device)
        self._propagate(*self._graph(histories))

    def score(self, users: torch.Tensor, histories: Histories) -> torch.Tensor:
        u = torch.zeros(len(users), self.dim)
        known = users >= 0
        if known.any():
            u[known] = self.user_emb[users[known]]
        for r in (~known).nonzero().squeeze(1).tolist():  # unknown user: mean of history items
            if len(histories[r]):
                u[r] = self.item_emb[torch.as_tensor(list(histories[r]))].mean(0)
        return u @ self.item_emb.T

    # -- training ----------------------------------------------------------------------
    def fit(self, split: Split, ctx: FitContext) -> dict:
        from recommender.metrics import evaluate

        hp = self.hp
        torch.manual_seed(ctx.seed)
        rng = np.random.default_rng(ctx.seed)
        self.encoder.to(self.device)
        blocks, mask = self._graph(split.train)
        users = np.repeat(np.arange(len(split.train)), [len(h) for h in split.train])
        items = np.fromiter((i for h in split.train for i in h), dtype=np.int64, count=len(users))
        seen = np.unique(users * self.n_items + items)
        opt = torch.optim.Adam(self.encoder.parameters(), lr=hp["lr"])
        best, best_state, best_epoch, bad = -1.0, None, 0, 0
        history_valid = split.history("valid")
        start = time.perf_counter()
        epoch = 0
        for epoch in range(1, hp["epochs"] + 1):
            self.encoder.train()
            perm = rng.permutation(len(users))
            neg = rng.integers(0, self.n_items, len(users))
            clash = np.isin(users * self.n_items + neg, seen)
            while clash.any():  # resample negatives the user has interacted with
                neg[clash] = rng.integers(0, self.n_items, int(clash.sum()))
                clash = np.isin(users * self.n_items + neg, seen)
            for b in range(0, len(perm), hp["batch_size"]):
                idx = perm[b:b + hp["batch_size"]]
                u = torch.as_tensor(users[idx], device=self.device)
                i = torch.as_tensor(items[idx] + self.n_users, device=self.device)
                j = torch.as_tensor(neg[idx] + self.n_users, device=self.device)
                out = self.encoder(blocks, mask)
                pos_s = (out[u] * out[i]).sum(1)
                neg_s = (out[u] * out[j]).sum(1)
                e0 = self.encoder.embedding.weight
                reg = (e0[u].pow(2).sum() + e0[i].pow(2).sum() + e0[j].pow(2).sum()) / (2 * len(idx))
                loss = -F.logsigmoid(pos_s - neg_s).mean() + hp["reg"] * reg
                opt.zero_grad()
                loss.backward()
                opt.step()
            out_of_time = hp["max_seconds"] is not None and time.perf_counter() - start > hp["max_seconds"]
            if not (split.valid_target >= 0).any():  # no validation targets: train to the budget
                ctx.epoch(self.name, epoch, loss.item(), seconds=time.perf_counter() - start)
                best_epoch = epoch
                if out_of_time:
                    break
                continue
            if epoch % hp["eval_every"] == 0 or epoch == hp["epochs"] or out_of_time:
                self._propagate(blocks, mask)
                ndcg = evaluate(lambda x: self.score(x, [history_valid[k] for k in x.tolist()]),
                                history_valid, split.valid_target)["ndcg@20"]
                ctx.epoch(self.name, epoch, loss.item(), ndcg)
                if ndcg > best:
                    best, best_epoch, bad = ndcg, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in self.encoder.state_dict().items()}
                else:
                    bad += 1
                    if bad >= hp["patience"]:
                        break
                if out_of_time:
                    break
        if best_state is not None:
            self.encoder.load_state_dict(best_state)
        self._propagate(blocks, mask)
        self.fit_info = {"best_epoch": best_epoch, "epochs_run": epoch, "valid_ndcg@20": best,
                         "train_seconds": time.perf_counter() - start,
                         "relation_weights": self.encoder.relation_weights().tolist()}
        return self.fit_info

    # -- persistence -------------------------------------------------------------------
    def state(self) -> dict:
        k = self.knowledge
        return {
            "name": self.name, "n_users": self.n_users, "n_items": self.n_items, "dim": self.dim,
            "layers": self.layers, "use_knowledge": self.use_knowledge, "hp": self.hp,
            "n_entities": k.n_entities if k else 0, "n_relations": k.n_relations if k else 0,
            "item_entity": torch.as_tensor(k.item_entity) if k else torch.zeros(0, 3, dtype=torch.long),
            "encoder": {n: v.cpu() for n, v in self.encoder.state_dict().items()},
            "user_emb": self.user_emb, "item_emb": self.item_emb, "fit_info": self.fit_info,
        }

    @classmethod
    def from_state(cls, state: dict) -> "GraphRecommender":
        k = None
        if state["use_knowledge"]:
            k = Knowledge(state["n_entities"], state["n_relations"], state["item_entity"].numpy())
        m = cls(state["n_users"], state["n_items"], state["dim"], state["layers"], state["use_knowledge"], k,
                name=state["name"], device="cpu", **state["hp"])
        m.encoder.load_state_dict(state["encoder"])
        m.user_emb, m.item_emb, m.fit_info = state["user_emb"], state["item_emb"], state["fit_info"]
        return m
