"""Celery entry points of the graph outbox: delivery, and its scheduling after a commit."""
import logging

from celery import shared_task
from django.db import transaction

log = logging.getLogger(__name__)


@shared_task
def deliver_graph_outbox() -> dict:
    """Apply pending outbox rows (also run by beat: the retry of anything an outage held back)."""
    from .services import deliver_outbox

    return deliver_outbox().as_dict()


def deliver_outbox_after_commit() -> None:
    """For entry points whose service wrote outbox rows: send the delivery task once they are
    committed (without a broker it runs in-process). A graph store or broker that is down loses
    nothing: the rows stay pending and beat's ``deliver-graph-outbox`` delivers them later."""
    transaction.on_commit(_send_delivery)


def _send_delivery() -> None:
    try:
        deliver_graph_outbox.apply_async(retry=False)
    except Exception as exc:  # the change is committed; the periodic delivery takes it
        log.warning("graph outbox delivery not started, beat retries it: %s", exc)
