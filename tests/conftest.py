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


@pytest.fixture
def kms_graph(graph_config, settings):
    """Point the Django side at the test graph server, empty, with tasks run eagerly; afterwards
    the settings (pytest-django), Celery's eager flag and the process's graph store are restored."""
    from kms.celery import app
    from kms.graphstore import get_graph_store, reset_graph_store

    settings.KMS_GRAPH = {**settings.KMS_GRAPH, "URI": graph_config.uri, "USER": graph_config.user,
                          "PASSWORD": graph_config.password, "DATABASE": graph_config.database}
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    reset_graph_store()
    store = get_graph_store()
    store.clear()
    try:
        yield store
    finally:
        app.conf.task_always_eager = eager
        reset_graph_store()


@pytest.fixture
def models_dir(settings, tmp_path):
    settings.KMS_MODELS_DIR = tmp_path / "models"
    settings.KMS_NLP_DIR = tmp_path / "nlp"
    from kms.recs.services import index_cache

    index_cache.clear()
    yield settings.KMS_MODELS_DIR
    index_cache.clear()


from tests.slices import _scientific_slice  # noqa: E402


@pytest.fixture(scope="session")
def scientific_slice():
    return _scientific_slice


# --- API clients (anonymous, and with a key of each scope) ---------------------------------------
@pytest.fixture
def anon_client():
    from rest_framework.test import APIClient

    return APIClient()


def _client_with(scope: str):
    from rest_framework.test import APIClient

    from kms.api.models import ApiKey

    key, secret = ApiKey.issue(f"test-{scope}", scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    client.key, client.secret = key, secret
    return client


@pytest.fixture
def read_client(db):
    return _client_with("read")


@pytest.fixture
def write_client(db):
    return _client_with("write")
