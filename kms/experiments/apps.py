from django.apps import AppConfig


def forget_impressions(sender, instance, **kwargs):
    """An erased user's lists go with them (their attributions cascade with the events)."""
    from .impressions import buffer, forget_queued
    from .models import Impression

    buffer.forget(instance.external_id)  # this process's lists not yet written
    forget_queued(instance.external_id)  # lists waiting in the queue are never written
    Impression.objects.filter(user=instance.external_id).delete()


def attribute_feedback(sender, events, **kwargs):
    """``kms.events.services.events_stored``: clicks, carts and purchases become pending
    attributions in the events' transaction, decided after the commit."""
    from django.db import transaction

    from .attribution import add_feedback

    if add_feedback(events):
        transaction.on_commit(_settle_after_commit)


def _settle_after_commit() -> None:
    import logging

    from .impressions import buffer

    try:
        buffer.flush()  # this process's lists first, so a click on a list it served is credited at once
    except Exception:  # the flusher thread and the beat task retry
        logging.getLogger(__name__).exception("could not attribute feedback now; left pending")
    buffer.feedback()  # the window rule's decisions settle in a few seconds, beat or no beat


class ExperimentsConfig(AppConfig):
    name = "kms.experiments"
    label = "experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete

        from kms.events.models import ShopUser
        from kms.events.services import events_stored

        post_delete.connect(forget_impressions, sender=ShopUser, dispatch_uid="experiments-forget-impressions")
        events_stored.connect(attribute_feedback, dispatch_uid="experiments-attribute-feedback")
