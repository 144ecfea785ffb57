from celery import shared_task

from . import services


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=2)
def train(params: dict | None = None) -> dict:
    version = services.train_model(params)
    return {"version": version.pk, "state": version.state, "metrics": version.metrics}


@shared_task
def maybe_retrain() -> int | None:
    version = services.maybe_retrain()
    return version.pk if version else None
