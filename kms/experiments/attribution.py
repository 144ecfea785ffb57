"""Credit clicks, carts and purchases to the list, model version and position that showed the item.

An event that names a ``recommendation_id`` is credited to that list when the list holds the
product. Otherwise (no id, an unknown id, or a list without the product) the **window** rule
decides: the same user's most recent list, served at most ``KMS_ATTRIBUTION_WINDOW_HOURS``
(default 24) before the event's timestamp and not after it, that showed the product; none: the
event stays unattributed. Lists reach the database in batches (``impressions``), so a decision
waits until every process has flushed the lists it could depend on: a by-id match is final at
once, anything else after ``settle_seconds()``.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Attribution, Impression

FEEDBACK_TYPES = ("click", "cart", "purchase")
BATCH = 2000


def settle_seconds() -> float:
    """How long a list can sit in some process's buffer before it is in the database."""
    return 2 * settings.KMS_IMPRESSIONS_FLUSH_SECONDS + 5.0


def window() -> timedelta:
    return timedelta(hours=settings.KMS_ATTRIBUTION_WINDOW_HOURS)


def add_feedback(rows: list[tuple]) -> int:
    """Pending attributions for newly stored events: (interaction id, type, value, recommendation_id,
    timestamp). Called in the transaction that stored the events; returns how many were kept.
    Historical events (an import: older than the window, no id) cannot follow a list served now and are skipped."""
    now = timezone.now()
    oldest = now - window()
    new = [Attribution(interaction_id=i, type=t, value=v, recommendation_id=rid or "", received_at=now)
           for i, t, v, rid, ts in rows if t in FEEDBACK_TYPES and (rid or ts >= oldest)]
    Attribution.objects.bulk_create(new, batch_size=BATCH, ignore_conflicts=True)
    return len(new)


def _credit(a: Attribution, imp: Impression, method: str, position: int) -> dict:
    return {"state": Attribution.State.ATTRIBUTED, "method": method, "impression_id": imp.pk, "position": position,
            "model_version": imp.model_version, "experiment_id": imp.experiment_id, "arm": imp.arm}


def attribute_pending(now: datetime | None = None) -> dict:
    """Decide the pending attributions that can be decided now; returns counts by outcome."""
    now = now or timezone.now()
    settled = now - timedelta(seconds=settle_seconds())
    counts: dict[str, int] = defaultdict(int)
    last = 0
    while True:
        batch = list(Attribution.objects.filter(state=Attribution.State.PENDING, pk__gt=last)
                     .select_related("interaction__user", "interaction__product").order_by("pk")[:BATCH])
        if not batch:
            return dict(counts)
        last = batch[-1].pk
        by_id = {imp.recommendation_id: imp for imp in Impression.objects.filter(
            recommendation_id__in={a.recommendation_id for a in batch if a.recommendation_id})}
        undecided = []
        decisions: list[tuple[Attribution, dict]] = []
        for a in batch:
            imp = by_id.get(a.recommendation_id) if a.recommendation_id else None
            product = a.interaction.product.external_id
            if imp is not None and product in imp.items:
                decisions.append((a, _credit(a, imp, Attribution.Method.ID, imp.items.index(product) + 1)))
            elif a.received_at <= settled:
                undecided.append(a)
        decisions += _by_window(undecided)
        with transaction.atomic():
            for a, fields in decisions:
                # only a row still pending: two processes deciding the same event agree anyway
                if Attribution.objects.filter(pk=a.pk, state=Attribution.State.PENDING).update(**fields):
                    counts[fields.get("method") or "unattributed"] += 1


def _by_window(pending: list[Attribution]) -> list[tuple[Attribution, dict]]:
    if not pending:
        return []
    span = window()
    users = {a.interaction.user.external_id for a in pending}
    earliest = min(a.interaction.timestamp for a in pending) - span
    latest = max(a.interaction.timestamp for a in pending)
    lists: dict[str, list[Impression]] = defaultdict(list)
    for imp in (Impression.objects.filter(user__in=users, created_at__gte=earliest, created_at__lte=latest)
                .order_by("-created_at", "-id")):
        lists[imp.user].append(imp)
    out = []
    for a in pending:
        ts, product = a.interaction.timestamp, a.interaction.product.external_id
        for imp in lists.get(a.interaction.user.external_id, ()):
            if ts - span <= imp.created_at <= ts and product in imp.items:
                out.append((a, _credit(a, imp, Attribution.Method.WINDOW, imp.items.index(product) + 1)))
                break
        else:
            out.append((a, {"state": Attribution.State.UNATTRIBUTED}))
    return out
