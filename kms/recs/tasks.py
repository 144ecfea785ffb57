"""Celery entry points for training (routed to the "training" queue): thin callers of services."""
from celery import shared_task

from . import services


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=2)
def train(params: dict | None = None, version_id: int | None = None) -> dict:
    version = services.train_model(params, version_id=version_id)
    return {"version": version.pk, "state": version.state}


@shared_task
def maybe_retrain() -> int | None:
    version = services.maybe_retrain()
    return version.pk if version else None
