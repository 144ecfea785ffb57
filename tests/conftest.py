"""Shared fixtures: a real ArcadeDB Bolt server for the whole session, and Neo4j when configured."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graph import GraphConfig, GraphStore  # noqa: E402
from graph.server import ArcadeDBProcess  # noqa: E402


@pytest.fixture(scope="session")
def arcadedb_server(tmp_path_factory):
    """A real ArcadeDB server from the arcadedb-embedded package on a free localhost port."""
    server = ArcadeDBProcess(tmp_path_factory.mktemp("arcadedb"), heap="768m")
    info = server.start(timeout=120)
    yield server
    server.stop()
    del info


def _backends():
    names = ["arcadedb"]
    if os.environ.get("NEO4J_URI"):
        names.append("neo4j")
    return names


@pytest.fixture(scope="session", params=_backends())
def graph_config(request):
    if request.param == "arcadedb":
        server = request.getfixturevalue("arcadedb_server")
        return GraphConfig(uri=f"bolt://127.0.0.1:{server.bolt_port}", user="root",
                           password=server.password, database="kms", batch_size=200)
    return GraphConfig(uri=os.environ["NEO4J_URI"], user=os.environ.get("NEO4J_USER", "neo4j"),
                       password=os.environ.get("NEO4J_PASSWORD", ""),
                       database=os.environ.get("NEO4J_DATABASE") or None, batch_size=200)


@pytest.fixture
def graph_store(graph_config):
    """An empty graph store with the schema in place."""
    store = GraphStore(graph_config)
    store.ensure_schema()
    store.clear()
    yield store
    store.close()
