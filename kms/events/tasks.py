"""Celery entry points for events: thin callers of kms.events.services."""
from celery import shared_task
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from . import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True,  # fire and forget: never
             # wait on the result backend (a broker outage must not hold up POST /events)
             autoretry_for=(TransientError, ServiceUnavailable, SessionExpired),
             retry_backoff=True, retry_backoff_max=30, max_retries=10)
def push_pending_interactions() -> int:
    """Write every interaction not yet in the graph store (coalesced pushes of POST /events)."""
    return services.push_interactions_to_graph()
