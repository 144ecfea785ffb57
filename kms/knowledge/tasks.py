from celery import shared_task
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from . import services


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True,
             autoretry_for=(TransientError, ServiceUnavailable, SessionExpired),
             retry_backoff=True, retry_backoff_max=120, max_retries=8)
def run_ingestion(self, job_id: int) -> dict:
    # Idempotent: products already extracted at their content hash are skipped on a re-run.
    job = services.run_ingestion_job(job_id)
    return services.job_progress(job) | {"started_at": None, "finished_at": None}


@shared_task
def flush_graph_outbox() -> int:
    from kms.events.services import push_interactions_to_graph

    return push_interactions_to_graph()
