from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "kms.experiments"
    label = "experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete

        from kms.events.models import ShopUser

        def forget_impressions(sender, instance, **kwargs):
            # an erased user's lists go with them (their attributions cascade with the events)
            from .models import Impression

            Impression.objects.filter(user=instance.external_id).delete()

        post_delete.connect(forget_impressions, sender=ShopUser, dispatch_uid="experiments-forget-impressions")

        from kms.events.services import events_stored

        def feedback(sender, events, **kwargs):
            from django.db import transaction

            from .attribution import add_feedback

            if add_feedback(events):
                # this process's lists first, so a click on a list it served is credited at once
                transaction.on_commit(_settle_after_commit)

        events_stored.connect(feedback, dispatch_uid="experiments-attribute-feedback")


def _settle_after_commit() -> None:
    import logging

    from .impressions import buffer

    try:
        buffer.flush()  # also runs attribute_pending
    except Exception:  # the flusher thread and the beat task retry
        logging.getLogger(__name__).exception("could not attribute feedback now; left pending")
