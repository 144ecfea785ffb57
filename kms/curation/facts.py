"""Curation of facts: approve / reject (status) and edit."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from kms.knowledge.models import Entity, Fact, Status

from .models import AuditEntry
from .audit import FACT_RELATIONS, Action, CurationError, _audit, fact_snapshot
from .outbox import _deliver_after_commit, _enqueue_products

log = logging.getLogger(__name__)

# --- facts -------------------------------------------------------------------------------------
def _locked_facts(fact_ids: Iterable[int]) -> list[Fact]:
    ids = sorted({int(i) for i in fact_ids})
    if not ids:
        raise CurationError("no facts selected")
    facts = list(Fact.objects.select_for_update(of=("self",)).filter(pk__in=ids)
                 .select_related("entity").order_by("id"))
    if len(facts) != len(ids):
        missing = sorted(set(ids) - {f.pk for f in facts})
        raise CurationError(f"unknown facts: {missing[:10]}")
    return facts


def set_fact_status(user, fact_ids: Iterable[int], status: str, reason: str = "") -> AuditEntry:
    """Approve or reject facts (one or many: one audit entry, one-click revert for the batch)."""
    if status not in (Status.APPROVED, Status.REJECTED, Status.AUTO):
        raise CurationError(f"unknown status {status!r}")
    with transaction.atomic():
        facts = _locked_facts(fact_ids)
        before = [fact_snapshot(f) for f in facts]
        now = timezone.now()
        for f in facts:
            f.status, f.curated_by, f.updated_at = status, (user if status != Status.AUTO else None), now
        Fact.objects.bulk_update(facts, ["status", "curated_by", "updated_at"])
        verb = {"approved": "approved", "rejected": "rejected", "auto": "reset"}[status]
        entry = _audit(user, Action.FACT_STATUS, f"{verb} {len(facts)} fact(s)", {"facts": before},
                       {"facts": [fact_snapshot(f) for f in facts]}, reason, (f.entity.uid for f in facts))
        _enqueue_products(f.product_id for f in facts)
        _deliver_after_commit()
    return entry


def _live_entity(uid_or_id) -> Entity:
    """The entity a uid/id names, following merges (facts always point at the surviving entity)."""
    qs = Entity.objects.select_related("merged_into")
    e = qs.filter(pk=uid_or_id).first() if str(uid_or_id).isdigit() else qs.filter(uid=uid_or_id).first()
    if e is None:
        raise CurationError(f"unknown entity {uid_or_id!r}")
    seen = set()
    while e.merged_into_id and e.pk not in seen:
        seen.add(e.pk)
        e = Entity.objects.select_related("merged_into").get(pk=e.merged_into_id)
    return e


def edit_fact(user, fact_id: int, *, relation: str | None = None, entity: str | None = None,
              value: str | None = None, unit: str | None = None, reason: str = "") -> AuditEntry:
    """Correct a fact; the corrected fact counts as curated (approved), so re-extraction keeps it."""
    with transaction.atomic():
        (fact,) = _locked_facts([fact_id])
        before = fact_snapshot(fact)
        if relation is not None and relation != fact.relation:
            if relation not in FACT_RELATIONS:
                raise CurationError(f"unknown relation {relation!r}")
            fact.relation = relation
        if entity not in (None, ""):
            fact.entity = _live_entity(entity)
        if value is not None:
            fact.value = str(value)[:64]
        if unit is not None:
            fact.unit = str(unit)[:32]
        fact.status, fact.curated_by = Status.APPROVED, user
        fact.save()
        after = fact_snapshot(fact)
        entry = _audit(user, Action.FACT_EDIT, f"edited fact {fact.pk}", {"facts": [before]}, {"facts": [after]},
                       reason, {before["entity_uid"], after["entity_uid"]})
        _enqueue_products([fact.product_id])
        _deliver_after_commit()
    return entry
