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
from pathlib import Path

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
    torch.save(state, path / "state.pt")
    meta["user_ids"][row] = _tombstone(user_id)
    meta_path.write_text(json.dumps(meta, indent=1))
    return True
