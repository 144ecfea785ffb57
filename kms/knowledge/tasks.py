"""Celery entry points for ingestion: thin callers of kms.knowledge.services, and the one place
that queues ingestion work (``start_ingestion``, ``dispatch_job``): services do the work and return."""
import logging
from collections.abc import Sequence

from celery import Task, shared_task
from django.db import transaction
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from . import services

GRAPH_ERRORS = (TransientError, ServiceUnavailable, SessionExpired)
log = logging.getLogger(__name__)


def start_ingestion(product_ids: Sequence[int] | None = None, force: bool = False):
    """Create an ingestion job and hand it to the workers once the transaction commits (eagerly,
    without a broker, it runs then). What ``POST /ingest``, the portal and ``ingest --background`` call."""
    job = services.create_ingestion_job(product_ids, force=force)
    transaction.on_commit(lambda: dispatch_job(job.pk))
    return job


def dispatch_job(job_id: int) -> bool:
    """Queue the job's planning task; with the broker down the job stays pending for the sweep."""
    try:
        run_ingestion.apply_async((job_id,), retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2})
        return True
    except Exception as exc:  # broker unreachable: dispatch_pending_jobs retries later
        services.note_dispatch_failed(job_id, exc)
        return False


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=GRAPH_ERRORS,
             retry_backoff=True, retry_backoff_max=60, max_retries=10)
def run_ingestion(job_id: int) -> dict:
    """Plan the job and queue its chunks (idempotent: re-planning queues only what is pending)."""
    job, chunks = services.plan_job(job_id, services.CHUNK_SIZE)
    for chunk in chunks:
        ingest_chunk.delay(job_id, chunk)
    job = services.finish_if_complete(job_id)
    return {"id": job.pk, "state": job.state, "total": job.total}


class ChunkTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        job_id, product_ids = args[0], args[1]
        services.fail_chunk(job_id, product_ids, f"{type(exc).__name__}: {exc}")


@shared_task(base=ChunkTask, acks_late=True, reject_on_worker_lost=True, autoretry_for=GRAPH_ERRORS,
             retry_backoff=True, retry_backoff_max=60, max_retries=20)
def ingest_chunk(job_id: int, product_ids: list[int]) -> dict:
    out = services.process_chunk(job_id, product_ids)
    return {"ok": len(out["ok"]), "failed": len(out["failed"])}


@shared_task
def dispatch_pending_jobs(older_than_seconds: float = 30.0) -> int:
    """Periodic sweep: re-queue jobs whose dispatch failed (state still pending)."""
    return sum(dispatch_job(pk) for pk in services.pending_job_ids(older_than_seconds))


@shared_task
def flush_graph_outbox() -> int:
    from kms.events.services import push_interactions_to_graph

    return push_interactions_to_graph()
