"""Erase one user from a saved model artefact (right to be forgotten).

Generic over components: the user's id is replaced by a tombstone, their stored history is
emptied, and every row indexed by user in any saved tensor or sparse matrix (embeddings,
propagated vectors, user × item matrices) is zeroed, so neither their identity nor anything
learnt only for them remains. Item-side parameters keep the aggregate signal, as in any
trained model.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch


def _tombstone(user_id: str) -> str:
    return "forgotten:" + hashlib.sha256(user_id.encode()).hexdigest()[:16]


def _scrub(obj, row: int, n_users: int):
    """Zero ``row`` in every user-indexed tensor / sparse state found in ``obj`` (recursively)."""
    if isinstance(obj, torch.Tensor):
        if obj.dim() >= 1 and obj.shape[0] == n_users and obj.dtype.is_floating_point and not obj.is_sparse:
            obj = obj.clone()
            obj[row] = 0
        return obj
    if isinstance(obj, dict):
        if {"data", "indices", "indptr", "shape"} <= set(obj) and list(obj["shape"])[0] == n_users:
            indptr = torch.as_tensor(obj["indptr"])
            data = torch.as_tensor(obj["data"]).clone()
            data[int(indptr[row]):int(indptr[row + 1])] = 0
            return obj | {"data": data if isinstance(obj["data"], torch.Tensor) else data.numpy()}
        return {k: _scrub(v, row, n_users) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v, row, n_users) for v in obj]
    return obj


def scrub_user(path: str | Path, user_id: str) -> bool:
    """Remove ``user_id`` from the artefact at ``path`` in place; False when it was not there."""
    path = Path(path)
    meta_path = path / "model.json"
    meta = json.loads(meta_path.read_text())
    try:
        row = meta["user_ids"].index(user_id)
    except ValueError:
        return False
    n_users = len(meta["user_ids"])
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    lens = state["history_len"].clone()
    flat = state["history_flat"]
    start = int(lens[:row].sum())
    state["history_flat"] = torch.cat([flat[:start], flat[start + int(lens[row]):]])
    lens[row] = 0
    state["history_len"] = lens
    state["components"] = _scrub(state["components"], row, n_users)
    # new files renamed into place: a process that memory-maps the old ones keeps valid pages
    _replace(path / "state.pt", lambda tmp: torch.save(state, tmp))
    meta["user_ids"][row] = _tombstone(user_id)
    _replace(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=1)))
    _scrub_serving_files(path, user_id)
    return True


def _replace(target: Path, write) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, target)


def _scrub_serving_files(path: Path, user_id: str) -> None:
    """The precomputed serving arrays (``recommender.serving``) lose the user too: the user's row
    of top items is emptied and the id leaves the sorted user index; the files are rewritten by
    rename and stamped with the rewritten model, so they stay current."""
    from recommender.serving import SERVING_DIR, serving_stamp

    serving = path / SERVING_DIR
    if not serving.exists():
        return
    keys = np.load(serving / "user_keys.npy")
    rows = np.load(serving / "user_rows.npy")
    pos = int(np.searchsorted(keys, user_id))
    if pos < len(keys) and keys[pos] == user_id:
        row = int(rows[pos])
        scores = np.load(serving / "top_scores.npy")
        scores[row] = -np.inf
        items = np.load(serving / "top_items.npy")
        items[row] = 0
        keep = np.ones(len(keys), dtype=bool)
        keep[pos] = False
        for name, array in (("top_scores", scores), ("top_items", items), ("user_keys", keys[keep]),
                            ("user_rows", rows[keep])):
            _replace(serving / f"{name}.npy", lambda tmp, a=array: _save_array(tmp, a))
    meta = json.loads((path / "model.json").read_text())
    stamp = serving_stamp(path, len(meta["user_ids"]), len(meta["item_ids"]))
    _replace(serving / "meta.json", lambda tmp: tmp.write_text(json.dumps(stamp)))



def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would append ".npy" to a path
        np.save(fh, array)
