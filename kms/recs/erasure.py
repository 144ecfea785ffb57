"""Erasing a user from everything the recommender holds."""
from __future__ import annotations

from pathlib import Path

from django.db import transaction

from kgschema import user_uid
from kms.events.models import ShopUser

from .index import index_cache
from .models import ModelVersion
from .serving_cache import serving_cache


def forget_user(external_id: str) -> dict:
    """Erase a user: database rows, graph node and edges (outbox), and every stored model artefact
    (so precomputed recommendations and the data models were trained on no longer hold them)."""
    from recommender.privacy import scrub_user

    from kms.curation.models import OutboxEntry

    uid = user_uid(external_id)
    with transaction.atomic():
        user = ShopUser.objects.filter(external_id=external_id).first()
        events = user.interactions.count() if user else 0
        if user:
            user.delete()  # cascades to the interactions
        # The graph node and edges go through the outbox, so a graph-store outage delays the
        # erasure but cannot lose it (the caller has it delivered after the commit).
        OutboxEntry.add(OutboxEntry.Op.ERASE_USERS, uids=[uid], external_ids=[external_id])
    scrubbed = [v.pk for v in ModelVersion.objects.exclude(path="") if Path(v.path).exists() and scrub_user(v.path, uid)]
    index_cache.clear()
    serving_cache.changed("model", users=[external_id])  # every process drops the user's lists and history
    return {"user": external_id, "events_deleted": events, "model_versions_scrubbed": scrubbed}
