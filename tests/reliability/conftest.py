"""A small real world for hostile-input tests, set up once per package: a slice of Amazon-Scientific
imported, ingested through the NLP pipeline into the test ArcadeDB server, events pushed, a tiny
model trained and activated, and API keys of each scope.

The rows are committed (outside any test transaction) so that every test sees them; each test
still runs in its own rolled-back transaction (``db``). Teardown flushes the database and empties
the graph so later packages start clean. Tests here must not use ``transactional_db``: its flush
would wipe the world under the other tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.caches import clear_process_caches
from tests.slices import _scientific_slice

TINY_MODEL = {"components": ["popularity", "itemcf", "lightgcn"], "fusion": ["itemcf", "lightgcn"],
              "dim": 8, "layers": 1, "epochs": 4, "eval_every": 2, "patience": 1, "threads": 1, "seed": 0}
SLICE_USERS = 40


@dataclass
class World:
    products: list[str]
    users: list[str]
    read_secret: str
    write_secret: str
    version_id: int

    def headers(self, who: str) -> dict[str, str]:
        secret = {"read": self.read_secret, "write": self.write_secret}.get(who)
        return {"Authorization": f"Api-Key {secret}"} if secret else {}


@pytest.fixture(scope="package")
def world(django_db_setup, django_db_blocker, graph_config, tmp_path_factory):
    from django.conf import settings
    from django.core.management import call_command

    from kms.api.models import ApiKey
    from kms.catalogue.services import upsert_products
    from kms.celery import app
    from kms.events.services import push_interactions_to_graph, record_events
    from kms.graphstore import get_graph_store, reset_graph_store
    from kms.knowledge.models import IngestionJob
    from kms.knowledge.services import run_ingestion_job
    from kms.recs.services import train_model

    missing = object()
    saved = {name: getattr(settings, name, missing) for name in ("KMS_GRAPH", "KMS_MODELS_DIR", "KMS_NLP_DIR")}
    eager = app.conf.task_always_eager
    work = tmp_path_factory.mktemp("reliability")
    settings.KMS_GRAPH = {**settings.KMS_GRAPH, "URI": graph_config.uri, "USER": graph_config.user,
                          "PASSWORD": graph_config.password, "DATABASE": graph_config.database}
    settings.KMS_MODELS_DIR, settings.KMS_NLP_DIR = work / "models", work / "nlp"
    app.conf.task_always_eager = True
    reset_graph_store()
    clear_process_caches()
    try:
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
            get_graph_store().clear()
            products, events = _scientific_slice(SLICE_USERS)
            upsert_products(products)
            record_events(events)
            job = run_ingestion_job(IngestionJob.objects.create(kind="ingest-all").pk)
            assert job.state == "done", job.errors
            push_interactions_to_graph()
            version = train_model(TINY_MODEL)
            assert version.state == "active", version.message
            _, read_secret = ApiKey.issue("reliability-read", "read")
            _, write_secret = ApiKey.issue("reliability-write", "write")
        yield World(products=[p["external_id"] for p in products],
                    users=sorted({e["user"] for e in events}, key=int),
                    read_secret=read_secret, write_secret=write_secret, version_id=version.pk)
    finally:
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
            try:
                get_graph_store().clear()
            except Exception:  # the server may already be gone at session end
                pass
        for name, value in saved.items():
            if value is missing:
                delattr(settings, name)
            else:
                setattr(settings, name, value)
        app.conf.task_always_eager = eager
        reset_graph_store()
        clear_process_caches()


@pytest.fixture
def live(world, db):
    """The package world inside this test's rolled-back transaction, with cold process caches.

    Requests sent straight to the WSGI app (schemathesis, not Django's test client) fire
    request_started/finished, whose close_old_connections() would close the connection holding
    this test's transaction; the test client disconnects it for the same reason.
    """
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    clear_process_caches()
    try:
        yield world
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        clear_process_caches()


def pytest_collection_modifyitems(session, config, items):
    """Run test_fuzz.py after this package's other tests: what its generated writes do to the graph
    store (deleted or renamed nodes) is not rolled back with the test transaction, so the shared
    world is only exact before it."""
    here = Path(__file__).parent
    fuzz = [i for i in items if i.path.parent == here and i.path.name == "test_fuzz.py"]
    if not fuzz:
        return
    fuzz_ids = {id(i) for i in fuzz}
    rest = [i for i in items if id(i) not in fuzz_ids]
    ours = [n for n, i in enumerate(rest) if i.path.parent == here]
    at = ours[-1] + 1 if ours else len(rest)
    items[:] = rest[:at] + fuzz + rest[at:]
