"""Feedback events: validate, store in the database, project into the graph store.

``record_events`` stores and returns; getting new interactions into the graph store is the
caller's to start (``kms.events.tasks.deliver_to_graph``): only entry points and tasks enqueue."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.dispatch import Signal

from kms.catalogue.models import Product
from kms.recs.serving_cache import serving_cache

from .api.serializers import EVENT_ID_MAX, ID_MAX, EventWrite  # noqa: F401  (the limits, re-exported)
from .models import Interaction, ShopUser

log = logging.getLogger(__name__)
# Sent inside the transaction that stored new events, with ``events``: a list of (interaction id,
# type, value, recommendation_id or None, timestamp); kms.experiments attributes clicks/carts/purchases from it.
events_stored = Signal()


@dataclass
class EventsResult:
    created: int = 0
    duplicates: int = 0
    errors: list[dict] = field(default_factory=list)
    interaction_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"created": self.created, "duplicates": self.duplicates, "errors": self.errors}


def clean_event(record) -> tuple[dict | None, dict]:
    """``(event, {})`` or ``(None, {field: message})``: the rules are ``EventWrite``'s, the API body's."""
    return EventWrite.clean(record)


def record_events(records: Iterable) -> EventsResult:
    """Store valid events (idempotent on event_id); report invalid ones; then update the graph."""
    result = EventsResult()
    valid = []
    for n, record in enumerate(records):
        event, errors = clean_event(record)
        if errors:
            result.errors.append({"index": n, "errors": errors})
        else:
            valid.append((n, event))
    products = dict(Product.objects.filter(external_id__in={e["product"] for _, e in valid})
                    .values_list("external_id", "id"))
    kept = []
    for n, event in valid:
        if event["product"] not in products:
            result.errors.append({"index": n, "errors": {"product": f"unknown product {event['product']!r}"}})
        else:
            kept.append(event)
    if not kept:
        return result
    with transaction.atomic():
        user_ids = ensure_users({e["user"] for e in kept})
        existing = set(Interaction.objects.filter(event_id__in=[e["event_id"] for e in kept])
                       .values_list("event_id", flat=True))
        new, rec_ids = [], {}
        for e in kept:
            if e["event_id"] in existing:
                result.duplicates += 1
                continue
            existing.add(e["event_id"])
            rec_ids[e["event_id"]] = e.get("recommendation_id")
            new.append(Interaction(event_id=e["event_id"], user_id=user_ids[e["user"]],
                                   product_id=products[e["product"]], type=e["type"], value=e["value"],
                                   timestamp=e["timestamp"]))
        Interaction.objects.bulk_create(new, batch_size=2000)
        stored = dict(Interaction.objects.filter(event_id__in=[i.event_id for i in new])
                      .values_list("event_id", "id")) if new else {}
        if stored:
            events_stored.send(sender=Interaction, events=[
                (stored[i.event_id], i.type, i.value, rec_ids[i.event_id], i.timestamp) for i in new
                if i.event_id in stored])
    result.created = len(new)
    if new:  # the next recommendation request of these users reads their history again
        by_pk = {pk: ext for ext, pk in user_ids.items()}
        serving_cache.changed(users={by_pk[i.user_id] for i in new})
    result.interaction_ids = sorted(stored.values())
    return result


def find_user(external_id: str) -> ShopUser | None:
    return ShopUser.objects.filter(external_id=external_id).first()


def user_exists(external_id: str) -> bool:
    return ShopUser.objects.filter(external_id=external_id).exists()


def create_user(external_id: str) -> tuple[ShopUser, bool]:
    """The user with this id and whether it was created now (False: it existed)."""
    return ShopUser.objects.get_or_create(external_id=external_id)


def count_events(user: ShopUser) -> int:
    return user.interactions.count()


def ensure_users(external_ids: Iterable[str]) -> dict[str, int]:
    external_ids = set(external_ids)
    have = dict(ShopUser.objects.filter(external_id__in=external_ids).values_list("external_id", "id"))
    missing = [ShopUser(external_id=x) for x in external_ids - set(have)]
    if missing:
        ShopUser.objects.bulk_create(missing, batch_size=2000, ignore_conflicts=True)
        have = dict(ShopUser.objects.filter(external_id__in=external_ids).values_list("external_id", "id"))
    return have


def push_interactions_to_graph(interaction_ids: Sequence[int] | None = None, batch: int = 5000) -> int:
    """Write pending interactions to the graph store and mark them delivered (at-least-once, idempotent)."""
    from kms.graphstore import get_graph_store

    store = get_graph_store()
    qs = Interaction.objects.filter(in_graph=False).select_related("user", "product").order_by("id")
    if interaction_ids is not None:
        qs = qs.filter(id__in=list(interaction_ids))
    total = 0
    while True:
        chunk = list(qs[:batch])
        if not chunk:
            return total
        # Both ends must exist; a product not yet ingested gets its node now, its facts later.
        store.upsert_nodes([{"uid": i.user.graph_uid, "props": {"external_id": i.user.external_id}}
                            for i in {i.user_id: i for i in chunk}.values()]
                           + [{"uid": i.product.graph_uid, "props": {"external_id": i.product.external_id}}
                              for i in {i.product_id: i for i in chunk}.values()])
        store.record_interactions([
            {"user": i.user.graph_uid, "product": i.product.graph_uid, "ts": i.timestamp.timestamp(),
             "type": i.type, "value": i.value, "event_id": i.event_id}
            for i in chunk
        ])
        Interaction.objects.filter(id__in=[i.id for i in chunk]).update(in_graph=True)
        total += len(chunk)


def delete_user_events(external_id: str) -> int:
    """Remove a user's events from the database; the graph's go through the outbox, written in
    the same transaction (the caller has it delivered after the commit)."""
    from kms.curation.models import OutboxEntry

    user = ShopUser.objects.filter(external_id=external_id).first()
    if user is None:
        return 0
    with transaction.atomic():
        n, _ = user.interactions.all().delete()
        OutboxEntry.add(OutboxEntry.Op.DELETE_USER_EVENTS, uid=user.graph_uid, external_id=external_id)
    serving_cache.changed(users=[external_id])
    return n


def rename_user(user: ShopUser, external_id: str) -> ShopUser:
    """Give a user a new id; in the graph the old node goes and the user's events are written
    again under the new one (through the outbox, like every graph change after a commit)."""
    from kms.curation.models import OutboxEntry

    old_uid, old_id = user.graph_uid, user.external_id
    with transaction.atomic():
        user.external_id = external_id
        user.save(update_fields=["external_id"])
        OutboxEntry.add(OutboxEntry.Op.ERASE_USERS, uids=[old_uid, user.graph_uid],
                        external_ids=[old_id, external_id])
    serving_cache.changed(users=[old_id, external_id])
    return user
