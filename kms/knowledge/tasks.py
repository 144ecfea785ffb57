"""Celery entry points for ingestion: thin callers of kms.knowledge.services."""
from celery import Task, shared_task
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from . import services

GRAPH_ERRORS = (TransientError, ServiceUnavailable, SessionExpired)


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=GRAPH_ERRORS,
             retry_backoff=True, retry_backoff_max=60, max_retries=10)
def run_ingestion(job_id: int) -> dict:
    """Plan the job and queue its chunks (idempotent: re-planning queues only what is pending)."""
    job = services.run_ingestion_job(job_id, dispatch=True)
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
def dispatch_pending_jobs() -> int:
    return services.dispatch_pending_jobs()


@shared_task
def flush_graph_outbox() -> int:
    from kms.events.services import push_interactions_to_graph

    return push_interactions_to_graph()
