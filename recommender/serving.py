"""Recommendation index: a request is a lookup (or one small matmul).

``from_model`` precomputes each known user's top-K fused recommendations (history masked) and
keeps L2-normalised item embeddings for ``similar``. Requests the precomputed lists cannot
answer (an unknown user, a fresh ``history``, a large ``exclude``) are scored live from the
history; with no usable history the answer is popularity.

``save_serving(path)`` writes those arrays (top-K items and scores, the sorted user ids, item
vectors, popularity) as .npy files beside the model, once per model version; ``load(path)``
memory-maps them read-only, so every process on a host shares one copy in the page cache and a
process's private memory does not grow with the number of users' lists.
"""
from __future__ import annotations

import copy
import fcntl
import json
import os
import shutil
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from recommender.lightgcn import GraphRecommender
from recommender.training import TrainedModel

Ranked = list[tuple[str, float]]
_EMBEDDING_PREFERENCE = ("kgcn", "lightgcn", "bprmf")
NEG_INF = float("-inf")
SERVING_DIR = "serving"  # inside a model's directory
SERVING_FORMAT = 2
SIMILAR_K = 100  # precomputed neighbours per item (a request for more is scored live)


class UserIndex:
    """User id -> row, over a sorted array of ids (memory-mappable; no Python object per user)."""

    def __init__(self, keys: np.ndarray, rows: np.ndarray):
        self.keys, self.rows = keys, rows

    @classmethod
    def build(cls, user_ids: list[str]) -> "UserIndex":
        ids = np.asarray(user_ids, dtype=str) if user_ids else np.zeros(0, dtype="<U1")
        order = np.argsort(ids, kind="stable")
        return cls(ids[order], order.astype(np.int64))

    def get(self, user_id: str, default: int = -1) -> int:
        n = len(self.keys)
        if not n or not isinstance(user_id, str):
            return default
        pos = int(np.searchsorted(self.keys, user_id))
        if pos < n and self.keys[pos] == user_id:
            return int(self.rows[pos])
        return default

    def __contains__(self, user_id) -> bool:
        return self.get(user_id) >= 0

    def __len__(self) -> int:
        return len(self.keys)


class RecommendationIndex:
    def __init__(self, model: TrainedModel, top_items, top_scores, item_vectors: torch.Tensor | None,
                 popularity: torch.Tensor, user_index: UserIndex | None = None):
        """``top_items`` / ``top_scores``: (n_users, K) arrays (tensors, or memory-mapped numpy)."""
        self.model = model
        self.user_index = user_index if user_index is not None else UserIndex.build(list(model.user_ids))
        self.top_items, self.top_scores = top_items, top_scores
        self.item_vectors = item_vectors
        # (n_items, SIMILAR_K) nearest items by the item vectors, best first; None: scored live
        self.similar_items = self.similar_scores = None
        self.trained_popularity = popularity
        self._set_items()

    def _set_items(self) -> None:
        new = getattr(self.model, "new_item_ids", None) or []
        self.item_ids = list(self.model.item_ids) + list(new)
        self.item_index = {iid: n for n, iid in enumerate(self.item_ids)}
        self.popularity = torch.cat([self.trained_popularity, torch.zeros(len(new))])
        self._cold: tuple[torch.Tensor, float] | None = None  # (items without interactions, their share)

    def with_new_items(self, items: dict[str, Iterable[tuple[str, str]]]) -> "RecommendationIndex":
        """A copy that also serves items that arrived after training, given their (relation,
        entity uid) pairs:
        recommendable at once (cold start from the knowledge graph, ``TrainedModel.set_new_items``).

        Replaces the previous set. The copy shares every trained structure; ``self`` is left as
        it was, so requests already holding it stay consistent while a server swaps in the copy.
        """
        model = copy.copy(self.model)
        model.set_new_items(items)
        index = copy.copy(self)
        index.model = model
        index._set_items()
        return index

    @property
    def new_item_ids(self) -> list[str]:
        return getattr(self.model, "new_item_ids", None) or []

    @classmethod
    def from_model(cls, model: TrainedModel, top_k: int = 200, batch_size: int = 1024) -> "RecommendationIndex":
        n_users, n_items = len(model.user_ids), model.n_items
        k = min(top_k, n_items)
        top_items = torch.zeros(n_users, k, dtype=torch.int32)
        top_scores = torch.zeros(n_users, k)
        with torch.no_grad():
            for s in range(0, n_users, batch_size):
                users = torch.arange(s, min(s + batch_size, n_users))
                hist = [model.history[u] for u in users.tolist()]
                scores = model.score(users, hist)
                for r, h in enumerate(hist):
                    if h:
                        scores[r, torch.as_tensor(h)] = float("-inf")
                v, i = scores.topk(k, dim=1)
                top_items[users], top_scores[users] = i.to(torch.int32), v.float()
        flat = np.fromiter((i for h in model.history for i in h), dtype=np.int64)
        popularity = torch.as_tensor(np.bincount(flat, minlength=n_items), dtype=torch.float32)
        index = cls(model, top_items, top_scores, _item_vectors(model), popularity)
        if index.item_vectors is not None:
            index.similar_items, index.similar_scores = _similar_lists(index.item_vectors, SIMILAR_K, batch_size)
        return index

    # -- the shared on-disk copy --------------------------------------------------------
    def save_serving(self, model_dir: str | Path) -> Path:
        """Write the serving arrays to ``model_dir/serving`` (a new directory renamed into place,
        so a process mapping the previous files keeps reading them intact)."""
        model_dir = Path(model_dir)
        target = model_dir / SERVING_DIR
        tmp = model_dir / f".{SERVING_DIR}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        arrays = {"top_items": np.asarray(self.top_items, dtype=np.int32),
                  "top_scores": np.asarray(self.top_scores, dtype=np.float32),
                  "user_keys": np.asarray(self.user_index.keys), "user_rows": np.asarray(self.user_index.rows),
                  "popularity": self.trained_popularity.numpy().astype(np.float32)}
        if self.item_vectors is not None:
            arrays["item_vectors"] = self.item_vectors.detach().numpy().astype(np.float32)
        if self.similar_items is not None:
            arrays["similar_items"] = np.asarray(self.similar_items, dtype=np.int32)
            arrays["similar_scores"] = np.asarray(self.similar_scores, dtype=np.float32)
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array))
        (tmp / "meta.json").write_text(json.dumps(serving_stamp(model_dir, len(self.model.user_ids), self.model.n_items)))
        old = model_dir / f".{SERVING_DIR}.{os.getpid()}.old"
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        return target

    @classmethod
    def load(cls, model_dir: str | Path, model: TrainedModel | None = None) -> "RecommendationIndex":
        """The index of the model saved at ``model_dir``, its arrays memory-mapped from
        ``model_dir/serving``. Missing or stale files (an older artefact, a model rewritten since)
        are computed and written first, under a file lock: one process per host does it, the
        others wait and map the result."""
        model_dir = Path(model_dir)
        model = model if model is not None else TrainedModel.load(model_dir)
        if not serving_files_current(model_dir):
            with open(model_dir / ".serving.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not serving_files_current(model_dir):
                    cls.from_model(model).save_serving(model_dir)
        return cls.from_serving_files(model, model_dir / SERVING_DIR)

    @classmethod
    def from_serving_files(cls, model: TrainedModel, directory: Path) -> "RecommendationIndex":
        def mapped(name):
            return np.load(directory / f"{name}.npy", mmap_mode="r")

        vectors = None
        if (directory / "item_vectors.npy").exists():
            with warnings.catch_warnings():  # read-only pages: the index only ever reads them
                warnings.simplefilter("ignore", UserWarning)
                vectors = torch.from_numpy(mapped("item_vectors"))
        index = cls(model, mapped("top_items"), mapped("top_scores"), vectors,
                    torch.from_numpy(np.array(mapped("popularity"))), UserIndex(mapped("user_keys"), mapped("user_rows")))
        if (directory / "similar_items.npy").exists():
            index.similar_items, index.similar_scores = mapped("similar_items"), mapped("similar_scores")
        return index

    # -- requests ----------------------------------------------------------------------
    def recommend(self, user_id: str | None, k: int = 10, exclude: Iterable[str] = (),
                  history: Iterable[str] | None = None, row: int | None = None) -> Ranked:
        """Top-k (item id, score); never returns an excluded item or one in the user's history.
        ``row``: the user's row in ``user_index``, when the caller has looked it up already."""
        exclude_idx = {self.item_index[i] for i in exclude if i in self.item_index}
        u = row if row is not None else self.user_index.get(user_id, -1) if user_id is not None else -1
        stored = self.model.history[u] if u >= 0 else []
        given = [self.item_index[i] for i in (history or []) if i in self.item_index]
        if u >= 0 and not given:
            out = []
            want = None if self.new_item_ids else k  # with new items, all of them are merged below
            # Each excluded item can take one place of the stored row, so without new items its
            # first k + len(exclude) entries hold the answer: convert only those (a row has 200).
            end = None if want is None else k + len(exclude_idx)
            for i, s in zip(self.top_items[u][:end].tolist(), self.top_scores[u][:end].tolist()):
                if i not in exclude_idx and s > NEG_INF:
                    out.append((i, s))
                    if len(out) == want:
                        break
            if self.new_item_ids:  # merge the new items' calibrated scores into the stored ranking
                n0 = self.model.n_items
                fresh = self.model.score_new_items(torch.as_tensor([u]), [stored])[0].tolist()
                out += [(n0 + j, s) for j, s in enumerate(fresh) if n0 + j not in exclude_idx]
                out = self._floored(out)
            if len(out) >= k:
                return [(self.item_ids[i], s) for i, s in out[:k]]
        hist = list(dict.fromkeys(list(stored) + given))
        if not hist:
            return self.popular(k, exclude=exclude)
        scores = self.model.score(torch.as_tensor([u]), [hist])[0]
        return self._top(scores, k, set(hist) | exclude_idx)

    def _floored(self, ranked: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """A merged (item, score) list sorted, with the model's exposure floor for cold and new items
        (``TrainedModel.score`` applies it to the stored rankings)."""
        from recommender.calibration import exposure_floor

        every = getattr(self.model, "cold_every", 0)
        if every > 1 and ranked:
            if self._cold is None:  # once per index (a new-items swap makes a new index)
                mask = torch.cat([self.model.cold_items, torch.ones(len(self.new_item_ids), dtype=torch.bool)])
                self._cold = (mask, float(mask.double().mean()))
            mask, share = self._cold
            items = [i for i, _ in ranked]
            scores = exposure_floor(torch.as_tensor([[s for _, s in ranked]], dtype=torch.float64),
                                    mask[torch.as_tensor(items)], every, share=share)[0]
            ranked = list(zip(items, scores.tolist()))
        return sorted(ranked, key=lambda t: -t[1])

    def similar(self, item_id: str, k: int = 10, exclude: Iterable[str] = ()) -> Ranked:
        i = self.item_index[item_id]
        banned = {i} | {self.item_index[x] for x in exclude if x in self.item_index}
        if i >= self.model.n_items:  # a new item: the trained items sharing most of its entities
            near = self.model.new_item_neighbours(i - self.model.n_items, k + len(banned))
            return [(self.item_ids[j], s) for j, s in near if j not in banned][:k]
        if self.similar_items is not None and k + len(banned) <= self.similar_items.shape[1] + 1:
            near = [(j, s) for j, s in zip(self.similar_items[i].tolist(), self.similar_scores[i].tolist())
                    if j not in banned and s > NEG_INF]
            return [(self.item_ids[j], s) for j, s in near[:k]]
        if self.item_vectors is not None:
            scores = self.item_vectors @ self.item_vectors[i]
        else:
            scores = self.model.score(torch.as_tensor([-1]), [[i]])[0]
        return self._top(scores, k, banned)

    def popular(self, k: int = 10, candidates: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> Ranked:
        """Most popular items, optionally among ``candidates`` (e.g. a category's items)."""
        scores = self.popularity.clone()
        if candidates is not None:
            allowed = torch.zeros(len(scores), dtype=torch.bool)
            idx = [self.item_index[c] for c in candidates if c in self.item_index]
            allowed[idx] = True
            scores[~allowed] = float("-inf")
        return self._top(scores, k, {self.item_index[x] for x in exclude if x in self.item_index})

    def _top(self, scores: torch.Tensor, k: int, banned: set[int]) -> Ranked:
        scores = scores.clone()
        if banned:
            scores[torch.as_tensor(sorted(banned))] = float("-inf")
        v, i = scores.topk(min(k, len(scores)))
        return [(self.item_ids[int(a)], float(b)) for a, b in zip(i, v) if b > float("-inf")]


def _item_vectors(model: TrainedModel) -> torch.Tensor | None:
    for name in _EMBEDDING_PREFERENCE:
        c = model.components.get(name)
        if isinstance(c, GraphRecommender):
            return torch.nn.functional.normalize(c.item_emb, dim=1)
    for c in model.components.values():
        if isinstance(c, GraphRecommender):
            return torch.nn.functional.normalize(c.item_emb, dim=1)
        if hasattr(c, "item_vectors"):  # the sequence model's (entity-aware) item table
            return torch.nn.functional.normalize(c.item_vectors(), dim=1)
    return None


def serving_stamp(model_dir: Path, n_users: int, n_items: int) -> dict:
    """What the serving files were built from: a rewrite of the model (an erasure) changes it."""
    try:
        mtime = (model_dir / "model.json").stat().st_mtime_ns
    except OSError:
        mtime = 0
    return {"format": SERVING_FORMAT, "n_users": n_users, "n_items": n_items, "model_mtime_ns": mtime}


def serving_files_current(model_dir: str | Path) -> bool:
    model_dir = Path(model_dir)
    try:
        meta = json.loads((model_dir / SERVING_DIR / "meta.json").read_text())
        model_meta = json.loads((model_dir / "model.json").read_text())
    except (OSError, ValueError):
        return False
    return meta == serving_stamp(model_dir, len(model_meta["user_ids"]), len(model_meta["item_ids"]))


def _similar_lists(vectors: torch.Tensor, k: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's ``k`` nearest other items by dot product of the (normalised) vectors."""
    n = len(vectors)
    k = min(k, max(n - 1, 0))
    items = np.zeros((n, k), dtype=np.int32)
    scores = np.zeros((n, k), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, n, batch):
            block = vectors[s:s + batch] @ vectors.T
            rows = torch.arange(len(block))
            block[rows, rows + s] = NEG_INF  # never the item itself
            v, i = block.topk(k, dim=1)
            items[s:s + len(block)], scores[s:s + len(block)] = i.numpy(), v.numpy()
    return items, scores
