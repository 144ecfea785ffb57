"""Celery entry points for training (routed to the "training" queue): thin callers of services."""
from celery import shared_task, uuid
from celery.result import AsyncResult
from django.db import transaction

from . import services
from .models import ModelVersion


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=2)
def train(params: dict | None = None, version_id: int | None = None) -> dict:
    version = services.train_model(params, version_id=version_id)
    return {"version": version.pk, "state": version.state}


@shared_task
def maybe_retrain() -> int | None:
    version = services.maybe_retrain()
    return version.pk if version else None


def queue_training(params: dict | None = None) -> tuple[ModelVersion, str, AsyncResult | None]:
    """For entry points: a queued version (``services.start_training``) sent to the training queue
    once the version is committed. Returns the version, the task id and the task's result (None
    while the send waits for an outer transaction's commit). Without a broker the task runs here,
    and a training failure propagates."""
    version = services.start_training(params)
    task_id = uuid()
    sent: dict = {}

    def send():
        sent["result"] = train.apply_async(kwargs={"version_id": version.pk}, task_id=task_id)

    transaction.on_commit(send)
    return version, task_id, sent.get("result")
