"""Celery entry points of online evaluation: thin callers of the services."""
from celery import shared_task

from . import attribution, impressions


@shared_task
def attribute_pending_feedback() -> dict:
    """Periodic: decide attributions whose lists arrived late or that wait for the window rule
    (the queued lists first, so a decision sees every list served before it)."""
    impressions.drain_queue(wait=5.0)
    return attribution.attribute_pending()


@shared_task(ignore_result=True)
def write_impressions() -> int:
    """Periodic (every KMS_IMPRESSIONS_WRITE_SECONDS): the queue's writer, out of the web processes."""
    return impressions.write_queued()
