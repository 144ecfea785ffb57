"""Serving more than one model version: the index of each version an experiment arm serves.

The active version's index stays ``kms.recs.services.index_cache`` (with its cold-start items and
reloads); the other arms' versions are loaded once per process into ``version_indexes`` (trained
items only) and dropped when no running experiment names them.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from kms.recs import services as recs

from .services import running

log = logging.getLogger(__name__)


class _VersionIndexes:
    def __init__(self):
        self.lock = threading.Lock()
        self.indexes: dict[int, object] = {}

    def get(self, version_id: int):
        index = self.indexes.get(version_id)
        if index is not None:
            return index
        with self.lock:
            index = self.indexes.get(version_id)
            if index is None:  # seconds, once per process and version
                from kms.recs.models import ModelVersion

                index = recs.index_cache._load(ModelVersion.objects.get(pk=version_id))
                self.indexes[version_id] = index
            return index

    def keep_only(self, version_ids: set[int]) -> None:
        with self.lock:
            for v in [v for v in self.indexes if v not in version_ids]:
                del self.indexes[v]

    def clear(self) -> None:
        with self.lock:
            self.indexes.clear()


version_indexes = _VersionIndexes()


@dataclass(frozen=True)
class Choice:
    """What serves one request: the index, its version, and the experiment arm (None outside one)."""

    index: object
    version_id: int | None
    experiment_id: int | None = None
    arm: str = ""


def choose(user: str | None) -> Choice | None:
    """The index that serves ``user``: None (the caller's usual path, the active version) unless a
    running experiment assigns the user to an arm. No SQL on the request path once loaded."""
    experiment = running.get()
    if experiment is None:
        if version_indexes.indexes:
            version_indexes.keep_only(set())
        return None
    if not user:
        return None
    assigned = experiment.assign(user)
    if assigned is None:
        return None
    arm, version_id = assigned
    active = recs.index_cache.get()
    if active is not None and recs.index_cache.version_id == version_id:
        return Choice(active, version_id, experiment.id, arm)
    try:
        return Choice(version_indexes.get(version_id), version_id, experiment.id, arm)
    except Exception:  # a version that cannot be loaded must not fail requests: the user is left out
        log.exception("could not load model version %s of experiment %s", version_id, experiment.id)
        return None


def warm_up() -> None:
    """Load the running experiment's arms before a worker takes requests (gunicorn post_worker_init)."""
    experiment = running.get()
    if experiment is None:
        return
    for version_id in set(experiment.versions.values()):
        if version_id != recs.index_cache.version_id:
            version_indexes.get(version_id)
