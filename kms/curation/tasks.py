from celery import shared_task


@shared_task
def deliver_graph_outbox() -> dict:
    from .services import deliver_outbox

    return deliver_outbox().as_dict()
