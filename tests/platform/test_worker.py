"""A real Celery worker process, on the local Redis broker, runs the ingestion task to completion."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker_process(kms_graph, graph_config, settings, tmp_path):
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs PostgreSQL and Redis (set DATABASE_URL and CELERY_BROKER_URL; CI does)")
    db = connection.settings_dict
    env = os.environ | {
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "NEO4J_URI": graph_config.uri, "NEO4J_USER": graph_config.user,
        "NEO4J_PASSWORD": graph_config.password, "NEO4J_DATABASE": graph_config.database or "",
        "KMS_DATA_DIR": str(tmp_path),
    }
    from kms.celery import app

    app.connection_for_write().default_channel.client.flushdb()
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "kms", "worker", "-Q", "celery,training", "-c", "1",
         "--pool", "prefork", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=open(tmp_path / "worker.log", "wb"), stderr=subprocess.STDOUT)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        yield proc
    finally:
        app.conf.task_always_eager = eager
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.django_db(transaction=True)
def test_worker_completes_ingestion_task(celery_worker_process, kms_graph, scientific_slice, tmp_path):
    from kms.catalogue.services import upsert_products
    from kms.knowledge.models import IngestionJob
    from kms.knowledge.tasks import start_ingestion

    products, _ = scientific_slice(5)
    created = upsert_products(products).created
    job = start_ingestion(created)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state in (IngestionJob.State.DONE, IngestionJob.State.FAILED):
            break
        assert celery_worker_process.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        time.sleep(0.5)
    log = (tmp_path / "worker.log").read_text()
    assert job.state == IngestionJob.State.DONE, log[-3000:]
    assert job.done == len(created) and job.failed == 0
    assert "succeeded" in log  # the worker, not an eager call, ran it
    assert kms_graph.count_relationships("HAS_BRAND") > 0


@pytest.mark.django_db(transaction=True)
def test_posted_events_reach_graph_through_coalesced_worker_pushes(celery_worker_process, kms_graph,
                                                                   scientific_slice, tmp_path):
    """With a broker, POST /events stores the events and queues at most one push per second and
    process: a burst of single-event requests reaches the graph store in a few batched writes."""
    from django.core.cache import cache

    from kms.catalogue.services import upsert_products
    from kms.events.models import Interaction
    from kms.events.services import record_events
    from kms.events.tasks import deliver_to_graph

    products, events = scientific_slice(5)
    upsert_products(products)
    cache.clear()
    burst = events[:30]
    for event in burst:  # thirty requests of one event each, as POST /events handles them
        deliver_to_graph(record_events([event]).interaction_ids)
    pairs = {(e["user"], e["product"]) for e in burst}
    deadline = time.monotonic() + 60
    while Interaction.objects.filter(in_graph=False).exists() and time.monotonic() < deadline:
        assert celery_worker_process.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        time.sleep(0.5)
    log = (tmp_path / "worker.log").read_text()
    assert not Interaction.objects.filter(in_graph=False).exists(), log[-3000:]
    assert kms_graph.count_relationships("INTERACTED") == len(pairs)
    pushes = log.count("push_pending_interactions[") // 2  # "received" + "succeeded" lines
    assert 1 <= pushes < len(burst) / 3, log[-3000:]


@pytest.mark.django_db(transaction=True)
def test_post_jobs_train_is_trained_by_the_worker(celery_worker_process, kms_graph, scientific_slice, tmp_path):
    """POST /jobs/train registers a queued version and the training task, run by a real worker
    from the broker, trains and activates that same version (no second, orphan version)."""
    from rest_framework.test import APIClient

    from kms.api.models import ApiKey
    from kms.catalogue.services import upsert_products
    from kms.events.services import push_interactions_to_graph, record_events
    from kms.knowledge.models import IngestionJob
    from kms.knowledge.services import run_ingestion_job
    from kms.recs.models import ModelVersion

    products, events = scientific_slice(20)
    upsert_products(products)
    assert run_ingestion_job(IngestionJob.objects.create(kind="ingest-all").pk).state == "done"
    record_events(events)
    push_interactions_to_graph()
    _, secret = ApiKey.issue("train-worker", "write")
    client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    from tests.reliability.conftest import TINY_MODEL

    # the API takes scalars: a preset by name and single fields over it
    tiny = {"preset": "fast", "seq_epochs": 2, **{k: v for k, v in TINY_MODEL.items() if not isinstance(v, list)}}
    response = client.post("/api/v1/jobs/train", {"params": tiny}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "pending" and "result" not in body  # sent to the worker, not run here
    finished = {ModelVersion.State.ACTIVE, ModelVersion.State.READY, ModelVersion.State.REJECTED,
                ModelVersion.State.FAILED}
    deadline = time.monotonic() + 300
    while ModelVersion.objects.get(pk=body["version"]).state not in finished and time.monotonic() < deadline:
        assert celery_worker_process.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        time.sleep(0.5)
    log = (tmp_path / "worker.log").read_text()
    version = ModelVersion.objects.get(pk=body["version"])
    assert version.state == ModelVersion.State.ACTIVE, (version.message, log[-3000:])
    assert version.params == tiny and version.n_interactions > 0 and version.metrics
    assert ModelVersion.objects.count() == 1
    assert f"kms.recs.tasks.train[{body['task_id']}] succeeded" in log, log[-3000:]
    detail = client.get(f"/api/v1/jobs/train/{version.pk}").json()
    assert detail["state"] == "active" and detail["id"] == version.pk
