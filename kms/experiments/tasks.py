"""Celery entry points of online evaluation: thin callers of the services."""
from celery import shared_task

from . import attribution


@shared_task
def attribute_pending_feedback() -> dict:
    """Periodic: decide attributions whose lists arrived late or that wait for the window rule."""
    return attribution.attribute_pending()
