"""Revert: undo one audit entry, by a table of handlers (one per action)."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from kms.catalogue.models import Product
from kms.knowledge.models import Entity, Fact

from .models import AuditEntry
from .audit import FACT_EDITABLE, Action, CurationError, _audit, entity_snapshot
from .entities import _clean_aliases
from .facts import _locked_facts
from .outbox import _deliver_after_commit, _enqueue, _enqueue_entity, _enqueue_products

log = logging.getLogger(__name__)

# --- revert ------------------------------------------------------------------------------------
def _restore_facts(snapshots: list[dict], expected: list[dict]) -> set[int]:
    """Put facts back as in ``snapshots``; refuse if they changed since ``expected``."""
    current = {f.pk: f for f in _locked_facts(s["id"] for s in snapshots)}
    exp = {s["id"]: s for s in expected}
    for s in snapshots:
        f = current[s["id"]]
        if s["id"] in exp and any(getattr(f, k) != exp[s["id"]][k] for k in FACT_EDITABLE):
            raise CurationError(f"fact {f.pk} changed after this action; revert the later change first")
        for k in FACT_EDITABLE:
            setattr(f, k, s[k])
        f.save()
    return {f.product_id for f in current.values()}


def _check_entity(e: Entity, expected: dict) -> None:
    if entity_snapshot(e) | {"id": expected["id"]} != expected:
        raise CurationError(f"{e.uid} changed after this action; revert the later change first")


def _revert_facts(b: dict, a: dict) -> tuple[set[int], list[Entity]]:
    return _restore_facts(b["facts"], a["facts"]), []


def _revert_create(b: dict, a: dict) -> tuple[set[int], list[Entity]]:
    e = Entity.objects.select_for_update().get(pk=a["entity"]["id"])
    if e.facts.exists() or e.merged.exists():
        raise CurationError(f"{e.uid} has facts now; delete it instead")
    _enqueue("delete_node", uid=e.uid)
    e.delete()
    return set(), []


def _revert_rename(b: dict, a: dict) -> tuple[set[int], list[Entity]]:
    e = Entity.objects.select_for_update().get(pk=b["entity"]["id"])
    _check_entity(e, a["entity"])
    e.name, e.aliases, e.status = b["entity"]["name"], b["entity"]["aliases"], b["entity"]["status"]
    e.save()
    return set(), [e]


def _revert_merge(b: dict, a: dict) -> tuple[set[int], list[Entity]]:
    keep = Entity.objects.select_for_update().get(pk=b["keep"]["id"])
    drop = Entity.objects.select_for_update().get(pk=b["drop"]["id"])
    if drop.merged_into_id != keep.pk:
        raise CurationError(f"{drop.uid} is no longer merged into {keep.uid}")
    moved = Fact.objects.filter(pk__in=a["moved_fact_ids"], entity=keep)
    products = set(moved.values_list("product_id", flat=True))
    moved.update(entity=drop, updated_at=timezone.now())
    Entity.objects.filter(pk__in=a["repointed_entity_ids"], merged_into=keep).update(merged_into=drop)
    keep.aliases = [x for x in keep.aliases if x in b["keep"]["aliases"]
                    or x not in [b["drop"]["name"], *b["drop"]["aliases"]]]
    keep.save()
    drop.merged_into = None
    drop.save()
    products |= set(Fact.objects.filter(entity_id=drop.pk).values_list("product_id", flat=True))
    return products, [keep, drop]


def _revert_split(b: dict, a: dict) -> tuple[set[int], list[Entity]]:
    source = Entity.objects.select_for_update().get(pk=b["source"]["id"])
    new = Entity.objects.select_for_update().get(pk=a["new"]["id"])
    if Fact.objects.filter(entity=new).exclude(pk__in=[f["id"] for f in a["facts"]]).exists():
        raise CurationError(f"{new.uid} has other facts now; move them first")
    products = _restore_facts(b["facts"], a["facts"])
    source.aliases = _clean_aliases([*source.aliases, *new.aliases], source.name)
    source.save()
    _enqueue("delete_node", uid=new.uid)
    new.delete()
    return products, [source]


def _revert_delete(b: dict, a: dict) -> tuple[set[int], list[Entity]]:
    s = b["entity"]
    if Entity.objects.filter(uid=s["uid"]).exists():
        raise CurationError(f"{s['uid']} exists again; merge instead")
    e = Entity.objects.create(id=s["id"], uid=s["uid"], type=s["type"], name=s["name"],
                              aliases=s["aliases"], status=s["status"], merged_into_id=s["merged_into_id"])
    existing_products = set(Product.objects.filter(pk__in={f["product_id"] for f in b["facts"]})
                            .values_list("id", flat=True))
    Fact.objects.bulk_create([
        Fact(id=f["id"], product_id=f["product_id"], relation=f["relation"], entity=e, value=f["value"],
             unit=f["unit"], field=f["field"], start=f["start"], end=f["end"], text=f["text"],
             extractor=f["extractor"], extractor_version=f["extractor_version"],
             confidence=f["confidence"], status=f["status"], curated_by_id=f["curated_by_id"])
        for f in b["facts"] if f["product_id"] in existing_products])
    Entity.objects.filter(pk__in=b["merged_children"], merged_into__isnull=True).update(merged_into=e)
    return existing_products, [e]


# How to undo each action, from its audit entry's (before, after): restore the rows, return the
# products whose graph rows must be re-synced and the entities whose nodes must be rewritten.
REVERT_HANDLERS = {
    Action.FACT_STATUS: _revert_facts,
    Action.FACT_EDIT: _revert_facts,
    Action.ENTITY_CREATE: _revert_create,
    Action.ENTITY_RENAME: _revert_rename,
    Action.ENTITY_MERGE: _revert_merge,
    Action.ENTITY_SPLIT: _revert_split,
    Action.ENTITY_DELETE: _revert_delete,
}


def revert(user, entry_id: int, reason: str = "") -> AuditEntry:
    """Undo one audit entry (recorded as a new 'revert' entry). Later changes must be reverted first."""
    with transaction.atomic():
        entry = AuditEntry.objects.select_for_update().get(pk=entry_id)
        if not entry.revertible:
            raise CurationError("this entry cannot be reverted (a revert, or already reverted)")
        handler = REVERT_HANDLERS.get(entry.action)
        if handler is None:
            raise CurationError(f"cannot revert {entry.action}")
        try:
            products, entities = handler(entry.before, entry.after)
        except (Entity.DoesNotExist, Fact.DoesNotExist) as exc:
            raise CurationError(f"the changed object no longer exists ({exc})") from exc
        for e in entities:
            _enqueue_entity(e)
        _enqueue_products(products)
        undo = _audit(user, Action.REVERT, f"reverted #{entry.pk}: {entry.summary}", entry.after, entry.before,
                      reason, entry.entity_uids, revert_of=entry)
        _deliver_after_commit()
    return undo
