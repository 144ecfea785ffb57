"""Neighbourhood collaborative filtering: item-based and user-based, cosine similarity.

Item-CF follows score(u, i) = Σ_{j∈N(i)} r(u, j)·sim(j, i) / Σ_{j∈N(i)} sim(j, i) with N(i) the
top-N most similar items of i. r(u, j) is 1 for a history item, or decay**age with
``recency_decay`` < 1 (age 0 = the most recent item), which turns it into a cheap
sequence-aware model: what the user bought last weighs most.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recommender.scoring import Histories, Scorer


def recency_matrix(histories: Histories, n_items: int, decay: float = 1.0) -> sp.csr_matrix:
    """Rows are users; r(u, j) = decay**age of the latest occurrence of j (1 when decay = 1)."""
    rows, cols, vals = [], [], []
    for r, hist in enumerate(histories):
        n = len(hist)
        last: dict[int, int] = {}
        for pos, item in enumerate(hist):
            last[int(item)] = pos
        for item, pos in last.items():
            rows.append(r)
            cols.append(item)
            vals.append(decay ** (n - 1 - pos))
    return sp.csr_matrix(
        (np.asarray(vals, dtype=np.float32), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
        shape=(len(histories), n_items),
    )


def top_n_per_column(m: sp.spmatrix, n: int) -> sp.csc_matrix:
    """Keep the n largest entries of each column."""
    m = sp.csc_matrix(m)
    m.eliminate_zeros()
    keep = np.zeros(m.nnz, dtype=bool)
    for c in range(m.shape[1]):
        lo, hi = m.indptr[c], m.indptr[c + 1]
        if hi - lo <= n:
            keep[lo:hi] = True
        else:
            keep[lo + np.argpartition(-m.data[lo:hi], n)[:n]] = True
    data = np.where(keep, m.data, 0.0).astype(np.float32)
    out = sp.csc_matrix((data, m.indices, m.indptr), shape=m.shape)
    out.eliminate_zeros()
    return out


def cosine_item_similarity(x: sp.csr_matrix) -> sp.csr_matrix:
    """Item × item cosine similarity of the binary user × item matrix, zero diagonal."""
    x = x.copy()
    x.data[:] = 1.0
    co = (x.T @ x).tocsr().astype(np.float32)
    norms = np.sqrt(co.diagonal()).astype(np.float32)
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    sim = sp.diags(inv) @ co @ sp.diags(inv)
    sim = sim.tolil()
    sim.setdiag(0.0)
    return sim.tocsr()


def _sparse_to_state(m: sp.spmatrix) -> dict:
    m = sp.csr_matrix(m)
    return {
        "shape": list(m.shape),
        "data": torch.as_tensor(m.data),
        "indices": torch.as_tensor(m.indices.astype(np.int64)),
        "indptr": torch.as_tensor(m.indptr.astype(np.int64)),
    }


def _sparse_from_state(s: dict) -> sp.csr_matrix:
    return sp.csr_matrix((s["data"].numpy(), s["indices"].numpy(), s["indptr"].numpy()), shape=tuple(s["shape"]))


class ItemCF(Scorer):
    name = "itemcf"

    def __init__(self, n_items: int, neighbours: int = 100, recency_decay: float = 1.0):
        self.n_items = n_items
        self.neighbours = neighbours
        self.recency_decay = recency_decay
        self.weights = sp.csr_matrix((n_items, n_items), dtype=np.float32)  # sim(j, i) / Σ_j sim(j, i)
        self.similarity = sp.csr_matrix((n_items, n_items), dtype=np.float32)  # top-N sim(j, i)

    def prepare(self, histories: Histories) -> None:
        x = recency_matrix(histories, self.n_items)
        sim = top_n_per_column(cosine_item_similarity(x), self.neighbours)
        denom = np.asarray(sim.sum(axis=0)).ravel()
        inv = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)
        self.similarity = sim.tocsr()
        self.weights = (sim @ sp.diags(inv.astype(np.float32))).tocsr()

    def score(self, users: torch.Tensor, histories: Histories) -> torch.Tensor:
        r = recency_matrix(histories, self.n_items, self.recency_decay)
        return torch.as_tensor((r @ self.weights).toarray(), dtype=torch.float32)

    def neighbours_of(self, item: int, k: int) -> list[tuple[int, float]]:
        row = self.similarity.getcol(item).tocoo()  # sim(j, item) for j in N(item)
        order = np.argsort(-row.data)[:k]
        return [(int(row.row[o]), float(row.data[o])) for o in order]

    def state(self) -> dict:
        return {
            "n_items": self.n_items,
            "neighbours": self.neighbours,
            "recency_decay": self.recency_decay,
            "weights": _sparse_to_state(self.weights),
            "similarity": _sparse_to_state(self.similarity),
        }

    @classmethod
    def from_state(cls, state: dict) -> "ItemCF":
        m = cls(state["n_items"], state["neighbours"], state["recency_decay"])
        m.weights = _sparse_from_state(state["weights"])
        m.similarity = _sparse_from_state(state["similarity"])
        return m


class UserCF(Scorer):
    """score(u, i) = Σ_{v∈N(u)} sim(u, v)·r(v, i) / Σ_{v∈N(u)} sim(u, v), cosine, top-N users."""

    name = "usercf"

    def __init__(self, n_items: int, neighbours: int = 100):
        self.n_items = n_items
        self.neighbours = neighbours
        self.matrix = sp.csr_matrix((0, n_items), dtype=np.float32)

    def prepare(self, histories: Histories) -> None:
        self.matrix = recency_matrix(histories, self.n_items)

    def score(self, users: torch.Tensor, histories: Histories) -> torch.Tensor:
        q = recency_matrix(histories, self.n_items)
        norms = np.sqrt(np.asarray(self.matrix.sum(axis=1)).ravel())
        qn = np.sqrt(np.asarray(q.sum(axis=1)).ravel())
        overlap = torch.as_tensor((q @ self.matrix.T).toarray(), dtype=torch.float32)  # (B, U)
        denom = torch.as_tensor(np.outer(qn, norms), dtype=torch.float32).clamp(min=1e-8)
        sims = overlap / denom
        known = (users >= 0).nonzero().squeeze(1)
        if len(known):
            sims[known, users[known]] = 0.0  # a user is not their own neighbour
        top, idx = sims.topk(min(self.neighbours, sims.shape[1]), dim=1)
        rows = np.repeat(np.arange(len(q.indptr) - 1), top.shape[1])
        neigh = sp.csr_matrix((top.numpy().ravel(), (rows, idx.numpy().ravel())), shape=sims.shape)
        out = torch.as_tensor((neigh @ self.matrix).toarray(), dtype=torch.float32)
        return out / top.sum(1, keepdim=True).clamp(min=1e-8)

    def state(self) -> dict:
        return {"n_items": self.n_items, "neighbours": self.neighbours, "matrix": _sparse_to_state(self.matrix)}

    @classmethod
    def from_state(cls, state: dict) -> "UserCF":
        m = cls(state["n_items"], state["neighbours"])
        m.matrix = _sparse_from_state(state["matrix"])
        return m


class EntityCF(ItemCF):
    """Item-CF whose similarity comes from shared knowledge-graph entities, not co-purchases.

    sim(j, i) = cosine of the items' entity vectors (brand, category levels, ...), so an item
    with no interactions has the same neighbours as any other: cold items are scored from the
    user's (recency-weighted) history with no training at all. The vectors are binary or
    IDF-weighted (an entity on few items says more than one on many: a brand vs "steel"),
    whichever scores better on validation (``fit``); ``entity_weights`` holds the choice.
    """

    name = "entitycf"

    def __init__(self, n_items: int, item_entity: sp.csr_matrix | None = None, neighbours: int = 100,
                 recency_decay: float = 0.5):
        super().__init__(n_items, neighbours, recency_decay)
        self.item_entity = item_entity
        self.entity_weights: np.ndarray | None = None  # per entity; None = binary vectors
        self.fit_info: dict = {}

    def weighted(self, item_entity: sp.csr_matrix) -> sp.csr_matrix:
        """Items' entity vectors as this component compares them."""
        m = sp.csr_matrix(item_entity, dtype=np.float32)
        return m if self.entity_weights is None else (m @ sp.diags(self.entity_weights)).tocsr()

    @staticmethod
    def idf(item_entity: sp.csr_matrix) -> np.ndarray:
        df = np.asarray((item_entity > 0).sum(axis=0)).ravel().astype(np.float64)
        n = max(item_entity.shape[0], 1)
        return np.where(df > 0, np.log((1.0 + n) / (1.0 + df)) + 1.0, 0.0).astype(np.float32)

    def _build(self) -> None:
        sim = top_n_per_column(cosine_item_similarity_weighted(self.weighted(self.item_entity)), self.neighbours)
        denom = np.asarray(sim.sum(axis=0)).ravel()
        inv = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 0)
        self.similarity = sim.tocsr()
        self.weights = (sim @ sp.diags(inv.astype(np.float32))).tocsr()

    def fit(self, split, ctx) -> dict:
        from recommender.metrics import evaluate

        if self.item_entity is None or self.item_entity.nnz == 0 or not (split.valid_target >= 0).any():
            return self.fit_info
        hist, results = split.train, {}
        for name, weights in (("binary", None), ("idf", self.idf(self.item_entity))):
            self.entity_weights = weights
            self._build()
            results[name] = evaluate(lambda u: self.score(u, [hist[i] for i in u.tolist()]), hist,
                                     split.valid_target)["ndcg@20"]
        choice = max(results, key=results.get)
        self.entity_weights = None if choice == "binary" else self.idf(self.item_entity)
        self._build()
        self.fit_info = {"entity_weighting": choice, "valid_ndcg@20": {k: round(v, 5) for k, v in results.items()}}
        ctx.log(f"[{self.name}] entity weighting {choice} (valid ndcg@20 {self.fit_info['valid_ndcg@20']})")
        return self.fit_info

    def prepare(self, histories: Histories) -> None:
        if self.item_entity is None or self.weights.nnz:
            return  # interaction-independent: computed once
        self._build()

    def state(self) -> dict:
        out = super().state()
        if self.entity_weights is not None:
            out["entity_weights"] = torch.as_tensor(self.entity_weights)
        return out

    @classmethod
    def from_state(cls, state: dict) -> "EntityCF":
        m = cls(state["n_items"], None, state["neighbours"], state["recency_decay"])
        m.weights = _sparse_from_state(state["weights"])
        m.similarity = _sparse_from_state(state["similarity"])
        if "entity_weights" in state:
            m.entity_weights = state["entity_weights"].numpy()
        return m


def cosine_item_similarity_weighted(x: sp.csr_matrix) -> sp.csr_matrix:
    """Item × item cosine of the rows of a (weighted) item × feature matrix, zero diagonal."""
    x = sp.csr_matrix(x, dtype=np.float32)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel()).astype(np.float32)
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    xn = sp.diags(inv) @ x
    sim = (xn @ xn.T).tolil()
    sim.setdiag(0.0)
    return sim.tocsr()


class EASE(Scorer):
    """EASE (Steck, WWW 2019): a linear item-item model with a closed form,
    B = I − P·diag(1/diag P), P = (XᵀX + λI)⁻¹, score(u) = x_u·B (zero diagonal).

    λ is chosen on validation (train histories in, validation targets out) from a grid scaled by
    the mean item popularity, so one grid fits catalogues of any density. B is kept as its
    ``neighbours`` largest entries per column (sparse, like item-CF) so a model's size grows with
    items × neighbours, not items². The inverse is dense: above ``max_items`` items the component
    scores nothing (all zeros) and says so in ``fit_info``.
    """

    name = "ease"
    REG_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # × mean diagonal of XᵀX

    def __init__(self, n_items: int, neighbours: int = 200, reg: float | None = None, max_items: int = 20_000):
        self.n_items = n_items
        self.neighbours = neighbours
        self.reg = reg
        self.max_items = max_items
        self.weights = sp.csr_matrix((n_items, n_items), dtype=np.float32)
        self.fit_info: dict = {}

    def _solve(self, histories: Histories, reg_scale: float) -> sp.csr_matrix:
        """B = I - P·diag(1/diag(P)) with P = (XᵀX + λI)⁻¹, keeping each column's top ``neighbours``.

        The inverse is a Cholesky inverse in float32 through torch (XᵀX + λI is positive definite):
        about 5× less CPU than a float64 LU inverse, and it runs on torch's threads (what
        ``TrainConfig.threads`` sets) instead of BLAS's own."""
        x = recency_matrix(histories, self.n_items)
        gram = torch.as_tensor((x.T @ x).toarray(), dtype=torch.float32)
        lam = reg_scale * max(float(gram.diagonal().mean()), 1e-6)
        gram.diagonal().add_(lam)
        p = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        del gram
        b = p.div_(-p.diagonal())  # column j divided by -P_jj
        b.fill_diagonal_(0.0)
        n = self.n_items
        k = min(self.neighbours, n)
        if k <= 0:
            return sp.csr_matrix((n, n), dtype=np.float32)
        vals, rows = torch.topk(b, k, dim=0)  # (k, n): the k largest weights of each column
        cols = np.broadcast_to(np.arange(n), (k, n))
        out = sp.csr_matrix((vals.numpy().ravel(), (rows.numpy().ravel(), cols.ravel())), shape=(n, n))
        out.eliminate_zeros()
        return out

    def fit(self, split, ctx) -> dict:
        from recommender.metrics import evaluate

        if self.n_items > self.max_items:
            self.fit_info = {"skipped": f"{self.n_items} items > max_items {self.max_items}"}
            ctx.log(f"[{self.name}] {self.fit_info['skipped']}: scores nothing")
            return self.fit_info
        if self.reg is None:
            hist, targets = split.train, split.valid_target
            results = {}
            for scale in self.REG_GRID:
                self.weights = self._solve(hist, scale)
                results[scale] = evaluate(lambda u: self.score(u, [hist[i] for i in u.tolist()]), hist, targets)["ndcg@20"]
            self.reg = max(results, key=results.get)
            self.fit_info = {"reg_scale": self.reg, "valid_ndcg@20": results[self.reg],
                             "grid": {str(k): round(v, 5) for k, v in results.items()}}
            ctx.log(f"[{self.name}] λ scale {self.reg} (valid ndcg@20 {results[self.reg]:.4f}; grid {self.fit_info['grid']})")
        return self.fit_info

    def prepare(self, histories: Histories) -> None:
        if self.n_items <= self.max_items:
            self.weights = self._solve(histories, self.reg if self.reg is not None else 1.0)

    def score(self, users: torch.Tensor, histories: Histories) -> torch.Tensor:
        r = recency_matrix(histories, self.n_items)
        return torch.as_tensor((r @ self.weights).toarray(), dtype=torch.float32)

    def state(self) -> dict:
        return {"n_items": self.n_items, "neighbours": self.neighbours, "reg": self.reg, "max_items": self.max_items,
                "weights": _sparse_to_state(self.weights)}

    @classmethod
    def from_state(cls, state: dict) -> "EASE":
        m = cls(state["n_items"], state["neighbours"], state["reg"], state["max_items"])
        m.weights = _sparse_from_state(state["weights"])
        return m
