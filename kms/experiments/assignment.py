"""Which arm a user is in: a pure function of the experiment's salt and the user id.

sha256 (not Python's ``hash()``, which is salted per process) makes the answer the same in every
worker, on every host and after every restart; the salt is stored on the experiment (a DB row).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence


def unit_hash(salt: str, user: str) -> float:
    """A uniform number in [0, 1) from the first 64 bits of sha256(salt ":" user)."""
    digest = hashlib.sha256(f"{salt}:{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def arm_for(salt: str, user: str, traffic: float, arms: Sequence[tuple[str, float]]) -> str | None:
    """The arm name for ``user``, or None when the user is outside the experiment's ``traffic``
    share. ``arms`` are (name, share) in a fixed order; shares are relative weights."""
    u = unit_hash(salt, user)
    if u >= traffic or not arms:
        return None
    total = sum(share for _, share in arms)
    point, edge = u / traffic * total, 0.0
    for name, share in arms:
        edge += share
        if point < edge:
            return name
    return arms[-1][0]
