"""Celery entry points for events: thin callers of kms.events.services, and the one place that
queues the graph push of new interactions (``deliver_to_graph``)."""
import logging
import threading
from collections.abc import Sequence

from celery import shared_task
from django.core.cache import cache
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from . import services

log = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True,  # fire and forget: never
             # wait on the result backend (a broker outage must not hold up POST /events)
             autoretry_for=(TransientError, ServiceUnavailable, SessionExpired),
             retry_backoff=True, retry_backoff_max=30, max_retries=10)
def push_pending_interactions() -> int:
    """Write every interaction not yet in the graph store (coalesced pushes of POST /events)."""
    return services.push_interactions_to_graph()


PUSH_DELAY_SECONDS = 1.0
_PUSH_SCHEDULED = "kms:events:graph-push-scheduled"


def deliver_to_graph(interaction_ids: Sequence[int]) -> None:
    """Project newly stored interactions into the graph store.

    Where Celery runs eagerly (the zero-setup default, the tests) they are written at once.
    With a broker, a burst of ``POST /events`` is coalesced: at most one push task per
    ``PUSH_DELAY_SECONDS`` and web process, which writes every pending interaction in one batch,
    instead of one graph transaction per request (concurrent small MERGEs on the same user and
    product nodes also deadlock-retry in the graph store). Recommendations read histories from
    the database, so they see an event at once either way. Anything not delivered (graph store
    or broker down) is delivered by the periodic ``flush_graph_outbox``.
    """
    from kms.celery import app

    if not interaction_ids:
        return
    if app.conf.task_always_eager:
        try:
            services.push_interactions_to_graph(interaction_ids)
        except Exception as exc:  # the periodic flush delivers them when the store is back
            log.warning("graph store unavailable, %d events queued: %s", len(interaction_ids), exc)
        return
    if not cache.add(_PUSH_SCHEDULED, True, timeout=PUSH_DELAY_SECONDS):
        return  # a push is already due in this window; it takes these rows too
    # Published from a thread: a slow or unreachable broker (connecting to a stopped Redis takes
    # seconds) never holds up the request that stored the events.
    threading.Thread(target=_queue_push, args=(len(interaction_ids),), name="events-push", daemon=True).start()


BROKER_RETRY_SECONDS = 10.0


def _queue_push(n_events: int) -> None:
    try:
        push_pending_interactions.apply_async(countdown=PUSH_DELAY_SECONDS, retry=False)
    except Exception as exc:  # broker down: the periodic flush delivers them; try again in a while
        cache.set(_PUSH_SCHEDULED, True, timeout=BROKER_RETRY_SECONDS)
        log.warning("broker unavailable, %d events wait for the periodic flush: %s", n_events, exc)
