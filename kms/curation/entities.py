"""Curation of entities: create, rename, merge, split, delete."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

import kgschema
from kms.knowledge.models import Entity, Fact, Status

from .models import AuditEntry
from .audit import ENTITY_TYPES, Action, CurationError, _audit, entity_snapshot, fact_snapshot
from .facts import _locked_facts
from .outbox import _deliver_after_commit, _enqueue, _enqueue_entity, _enqueue_products

log = logging.getLogger(__name__)

# --- entities ----------------------------------------------------------------------------------
def entity_uid(entity_type: str, name: str) -> str:
    """The uid extraction would give this entity, so later extractions land on it."""
    try:
        from nlp.normalize import entity_key

        key = entity_key(entity_type, name)
    except ImportError:  # the nlp package is optional for the portal itself
        key = slugify(name)
    if not key:
        raise CurationError("the name has no letters or digits to build a key from")
    return kgschema.entity_uid(entity_type, key)


def _clean_aliases(aliases: Iterable[str], name: str) -> list[str]:
    out: list[str] = []
    for a in aliases or []:
        a = " ".join(str(a).split())[:255]
        if a and a != name and a not in out:
            out.append(a)
    return out


def create_entity(user, entity_type: str, name: str, aliases: Iterable[str] = (), reason: str = "") -> AuditEntry:
    entity_type = (entity_type or "").upper()
    name = " ".join((name or "").split())[:255]
    if entity_type not in ENTITY_TYPES:
        raise CurationError(f"type must be one of {', '.join(ENTITY_TYPES)}")
    if not name:
        raise CurationError("a name is required")
    uid = entity_uid(entity_type, name)
    with transaction.atomic():
        if Entity.objects.filter(uid=uid).exists():
            raise CurationError(f"{uid} already exists")
        e = Entity.objects.create(uid=uid, type=entity_type, name=name, aliases=_clean_aliases(aliases, name),
                                  status=Status.APPROVED)
        entry = _audit(user, Action.ENTITY_CREATE, f"created {uid}", {}, {"entity": entity_snapshot(e)}, reason, [uid])
        _enqueue_entity(e)
        _deliver_after_commit()
    return entry


def rename_entity(user, entity_id: int, name: str, aliases: Iterable[str] | None = None,
                  keep_old_name_as_alias: bool = True, reason: str = "") -> AuditEntry:
    """Change the display name (and optionally the aliases); the uid stays stable."""
    name = " ".join((name or "").split())[:255]
    if not name:
        raise CurationError("a name is required")
    with transaction.atomic():
        e = Entity.objects.select_for_update().get(pk=entity_id)
        before = entity_snapshot(e)
        new_aliases = list(e.aliases) if aliases is None else list(aliases)
        if keep_old_name_as_alias and e.name != name:
            new_aliases.append(e.name)
        e.name, e.aliases, e.status = name, _clean_aliases(new_aliases, name), Status.APPROVED
        e.save()
        entry = _audit(user, Action.ENTITY_RENAME, f"renamed {e.uid}: {before['name']} → {name}",
                       {"entity": before}, {"entity": entity_snapshot(e)}, reason, [e.uid])
        _enqueue_entity(e)
        _deliver_after_commit()
    return entry


def merge_entities(user, keep_id: int, drop_id: int, reason: str = "") -> AuditEntry:
    """Fold ``drop`` into ``keep``: its facts move, its name and aliases become ``keep``'s aliases,
    and ``drop.merged_into`` points at ``keep`` (the NLP rules and re-extraction follow it)."""
    if int(keep_id) == int(drop_id):
        raise CurationError("cannot merge an entity into itself")
    with transaction.atomic():
        locked = {e.pk: e for e in Entity.objects.select_for_update().filter(pk__in=[keep_id, drop_id])}
        if len(locked) != 2:
            raise CurationError("unknown entity")
        keep, drop = locked[int(keep_id)], locked[int(drop_id)]
        if keep.type != drop.type:
            raise CurationError(f"cannot merge a {drop.type} into a {keep.type}")
        if keep.merged_into_id or drop.merged_into_id:
            raise CurationError("one of the entities was already merged into another")
        before = {"keep": entity_snapshot(keep), "drop": entity_snapshot(drop)}
        fact_ids = list(Fact.objects.filter(entity=drop).values_list("id", flat=True))
        product_ids = set(Fact.objects.filter(pk__in=fact_ids).values_list("product_id", flat=True))
        children = list(Entity.objects.filter(merged_into=drop).values_list("id", flat=True))
        Fact.objects.filter(pk__in=fact_ids).update(entity=keep, updated_at=timezone.now())
        Entity.objects.filter(pk__in=children).update(merged_into=keep)
        keep.aliases = _clean_aliases([*keep.aliases, drop.name, *drop.aliases], keep.name)
        keep.save()
        drop.merged_into = keep
        drop.save()
        after = {"keep": entity_snapshot(keep), "drop": entity_snapshot(drop), "moved_fact_ids": fact_ids,
                 "repointed_entity_ids": children}
        entry = _audit(user, Action.ENTITY_MERGE, f"merged {drop.uid} into {keep.uid} ({len(fact_ids)} facts)",
                       before, after, reason, [keep.uid, drop.uid])
        _enqueue("merge_nodes", keep=keep.uid, drop=drop.uid,
                 keep_props={"name": keep.name, "type": keep.type, "aliases": keep.aliases})
        _enqueue_products(product_ids)
        _deliver_after_commit()
    return entry


def split_entity(user, entity_id: int, new_name: str, fact_ids: Iterable[int],
                 aliases: Iterable[str] = (), reason: str = "") -> AuditEntry:
    """Move some facts (and aliases) of an entity to a new entity of the same type.

    The moved facts become curated (approved) so that re-extraction does not put them back.
    """
    fact_ids = sorted({int(i) for i in fact_ids})
    if not fact_ids:
        raise CurationError("choose the facts that belong to the new entity")
    with transaction.atomic():
        source = Entity.objects.select_for_update().get(pk=entity_id)
        facts = _locked_facts(fact_ids)
        if any(f.entity_id != source.pk for f in facts):
            raise CurationError("every fact to move must belong to this entity")
        new_name = " ".join((new_name or "").split())[:255]
        if not new_name:
            raise CurationError("a name is required for the new entity")
        uid = entity_uid(source.type, new_name)
        if Entity.objects.filter(uid=uid).exists():
            raise CurationError(f"{uid} already exists: merge or edit the facts instead")
        moved_aliases = [a for a in _clean_aliases(aliases, "") if a in source.aliases]
        before = {"source": entity_snapshot(source), "facts": [fact_snapshot(f) for f in facts]}
        new = Entity.objects.create(uid=uid, type=source.type, name=new_name,
                                    aliases=_clean_aliases(moved_aliases, new_name), status=Status.APPROVED)
        source.aliases = [a for a in source.aliases if a not in moved_aliases]
        source.save()
        now = timezone.now()
        for f in facts:
            f.entity, f.status, f.curated_by, f.updated_at = new, Status.APPROVED, user, now
        Fact.objects.bulk_update(facts, ["entity", "status", "curated_by", "updated_at"])
        after = {"source": entity_snapshot(source), "new": entity_snapshot(new),
                 "facts": [fact_snapshot(f) for f in facts]}
        entry = _audit(user, Action.ENTITY_SPLIT, f"split {len(facts)} fact(s) of {source.uid} into {uid}",
                       before, after, reason, [source.uid, uid])
        _enqueue_entity(source)
        _enqueue_entity(new)
        _enqueue_products(f.product_id for f in facts)
        _deliver_after_commit()
    return entry


def delete_entity(user, entity_id: int, reason: str = "") -> AuditEntry:
    """Delete an entity with its facts (the audit entry keeps everything needed to restore them)."""
    with transaction.atomic():
        e = Entity.objects.select_for_update().get(pk=entity_id)
        facts = list(Fact.objects.filter(entity=e).select_related("entity"))
        before = {"entity": entity_snapshot(e), "facts": [fact_snapshot(f) for f in facts],
                  "merged_children": list(Entity.objects.filter(merged_into=e).values_list("id", flat=True))}
        product_ids = {f.product_id for f in facts}
        uid = e.uid
        e.delete()
        entry = _audit(user, Action.ENTITY_DELETE, f"deleted {uid} ({len(facts)} facts)", before, {}, reason, [uid])
        _enqueue("delete_node", uid=uid)
        _enqueue_products(product_ids)
        _deliver_after_commit()
    return entry
