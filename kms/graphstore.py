"""The process-wide graph store, configured from settings (Neo4j/any Bolt server, or local ArcadeDB)."""
from __future__ import annotations

import threading

from django.conf import settings

from graph import GraphConfig, GraphStore
from graph.server import DATABASE, USER, ensure_local_server

_lock = threading.Lock()
_store: GraphStore | None = None
_schema_ready = False


def graph_config() -> GraphConfig:
    cfg = settings.KMS_GRAPH
    if cfg["URI"]:
        return GraphConfig(uri=cfg["URI"], user=cfg["USER"], password=cfg["PASSWORD"],
                           database=cfg["DATABASE"], batch_size=cfg["BATCH_SIZE"])
    info = ensure_local_server(cfg["LOCAL_ROOT"], java_opts=cfg["JAVA_OPTS"])
    return GraphConfig(uri=info.uri, user=USER, password=info.password, database=DATABASE,
                       batch_size=cfg["BATCH_SIZE"])


def get_graph_store() -> GraphStore:
    global _store, _schema_ready
    with _lock:
        if _store is None:
            _store = GraphStore(graph_config())
        if not _schema_ready and _store.ping():
            # Only once the server answers: readiness checks must not wait out the write retries.
            _store.ensure_schema()
            _schema_ready = True
        return _store


def reset_graph_store() -> None:
    """Forget the cached store (tests, and after settings change)."""
    global _store, _schema_ready
    with _lock:
        if _store is not None:
            _store.close()
        _store = None
        _schema_ready = False
