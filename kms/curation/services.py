"""Curation actions: approve/reject/edit facts; create, rename, merge, split, delete entities; revert.

Each action validates its input, then in one database transaction changes the rows, records an
``AuditEntry`` (before → after JSON) and writes ``OutboxEntry`` rows describing the graph-store
change. After the commit ``deliver_outbox()`` applies pending rows to the graph store; the
periodic Celery task ``deliver_graph_outbox`` calls it too, so a graph outage delays an edit
but never loses it. Views, management commands and tasks all call these functions.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from django.db import transaction
from django.db.models import Count, F, FloatField, Q, TextField, Value
from django.db.models.functions import Cast, Coalesce, Ln
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.text import slugify

import kgschema
from kms.catalogue.models import Product
from kms.events.models import Interaction
from kms.knowledge.models import Entity, Fact, Status

from .models import AuditEntry, OutboxEntry

log = logging.getLogger(__name__)

ENTITY_TYPES = tuple(t for t in kgschema.ENTITY_TYPES if t != kgschema.ATTRIBUTE_VALUE)  # curators pick these
FACT_RELATIONS = kgschema.FACT_RELATIONS
SYNC_CHUNK = 200
Action = AuditEntry.Action


class CurationError(ValueError):
    """The request cannot be carried out as asked (shown to the curator, HTTP 400)."""


# --- snapshots: what the audit trail stores and revert restores ---------------------------------
FACT_EDITABLE = ("relation", "entity_id", "value", "unit", "status", "curated_by_id")


def fact_snapshot(f: Fact) -> dict:
    return {"id": f.pk, "product_id": f.product_id, "relation": f.relation, "entity_id": f.entity_id,
            "entity_uid": f.entity.uid, "value": f.value, "unit": f.unit, "field": f.field,
            "start": f.start, "end": f.end, "text": f.text, "extractor": f.extractor,
            "extractor_version": f.extractor_version, "confidence": f.confidence, "status": f.status,
            "curated_by_id": f.curated_by_id}


def entity_snapshot(e: Entity) -> dict:
    return {"id": e.pk, "uid": e.uid, "type": e.type, "name": e.name, "aliases": list(e.aliases),
            "status": e.status, "merged_into_id": e.merged_into_id}


def _audit(user, action: str, summary: str, before: dict, after: dict, reason: str,
           entity_uids: Iterable[str], revert_of: AuditEntry | None = None) -> AuditEntry:
    return AuditEntry.objects.create(
        user=user if user is not None and user.is_authenticated else None, action=action,
        summary=summary[:300], before=before, after=after, reason=reason or "",
        entity_uids=sorted(set(entity_uids)), revert_of=revert_of)


# --- outbox ------------------------------------------------------------------------------------
def _enqueue(op: str, **payload) -> OutboxEntry:
    return OutboxEntry.add(op, **payload)


def _enqueue_entity(entity: Entity) -> None:
    _enqueue("upsert_entity", uid=entity.uid,
             props={"name": entity.name, "type": entity.type, "aliases": list(entity.aliases)})


def _enqueue_products(product_ids: Iterable[int]) -> None:
    ids = sorted(set(product_ids))
    for start in range(0, len(ids), SYNC_CHUNK):
        _enqueue("sync_products", product_ids=ids[start:start + SYNC_CHUNK])


def _deliver_after_commit() -> None:
    transaction.on_commit(_deliver_quietly)


def _deliver_quietly() -> None:
    try:
        deliver_outbox()
    except Exception as exc:  # the periodic task retries; the edit itself is committed
        log.warning("graph outbox delivery failed: %s", exc)


def _edge_status(facts: Sequence[Fact]) -> str:
    """One graph edge per (product, relation, entity): the latest curated decision wins."""
    curated = [f for f in facts if f.status in (Status.APPROVED, Status.REJECTED)]
    if curated:
        return max(curated, key=lambda f: (f.updated_at, f.pk)).status
    return Status.AUTO


def product_graph_rows(product_ids: Sequence[int]) -> tuple[list[Product], list[dict], list[dict]]:
    """The graph rows that mirror these products' facts in the database, curated ones included."""
    from kms.knowledge.services import _graph_rows  # the one place that shapes fact rows for the graph

    products = list(Product.objects.filter(pk__in=product_ids).order_by("id"))
    facts: dict[int, list[Fact]] = {p.pk: [] for p in products}
    by_key: dict[tuple, list[Fact]] = {}
    for f in Fact.objects.filter(product__in=products).select_related("entity").order_by("id"):
        facts[f.product_id].append(f)
        by_key.setdefault((f.product_id, f.relation, f.entity.uid), []).append(f)
    nodes, rels = _graph_rows(products, facts)
    uid_to_pk = {p.graph_uid: p.pk for p in products}
    for rel in rels:
        group = by_key.get((uid_to_pk.get(rel["src"]), rel["type"], rel["dst"]))
        if group:
            rel["props"]["status"] = _edge_status(group)
    return products, nodes, rels


def _apply(store, entry: OutboxEntry) -> None:
    p, Op = entry.payload, OutboxEntry.Op
    if entry.op == Op.UPSERT_ENTITY:
        store.upsert_nodes([{"uid": p["uid"], "props": p["props"]}])
    elif entry.op == Op.MERGE_NODES:
        store.upsert_nodes([{"uid": p["keep"], "props": p.get("keep_props") or {}}])
        store.merge_nodes(p["keep"], p["drop"])
    elif entry.op == Op.DELETE_NODE:
        store.delete_node(p["uid"])
    elif entry.op == Op.SYNC_PRODUCTS:
        _sync_products(store, p["product_ids"])
    elif entry.op == Op.DELETE_PRODUCT:
        store.delete_node(p["uid"])
        # The id may have been given to a new product before this row was delivered: the
        # database is the truth, so that product's node, facts and events go back in.
        again = list(Product.objects.filter(external_id=p["external_id"]).values_list("pk", flat=True))
        if again:
            _sync_products(store, again)
            _push_again(Interaction.objects.filter(product_id__in=again))
    elif entry.op == Op.ERASE_USERS:
        # Erasure and renames: the nodes go, and whoever holds these ids now (a renamed user, a
        # new user with an erased user's id) is rebuilt from their events in the database.
        for uid in p["uids"]:
            store.delete_node(uid)
        _push_again(Interaction.objects.filter(user__external_id__in=p["external_ids"]))
    elif entry.op == Op.DELETE_USER_EVENTS:
        store.write("MATCH (u:User {uid: $uid})-[e:INTERACTED]->() DELETE e", uid=p["uid"])
        _push_again(Interaction.objects.filter(user__external_id=p["external_id"]))  # recorded since
    else:
        raise ValueError(f"unknown outbox operation {entry.op!r}")


def _sync_products(store, product_ids: Sequence[int]) -> None:
    products, nodes, rels = product_graph_rows(product_ids)
    if products:
        store.replace_product_facts([x.graph_uid for x in products], nodes, rels, include_curated=True)


def _push_again(interactions) -> None:
    """Write these interactions to the graph store again (the event sweep's idempotent write)."""
    from kms.events.services import push_interactions_to_graph

    ids = list(interactions.values_list("id", flat=True))
    if ids:
        Interaction.objects.filter(id__in=ids).update(in_graph=False)
        push_interactions_to_graph(ids)


@dataclass
class DeliveryResult:
    delivered: int = 0
    pending: int = 0
    error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


_delivery_lock = threading.Lock()


def deliver_outbox(store=None, limit: int = 500) -> DeliveryResult:
    """Apply pending outbox rows to the graph store in order and mark them done.

    Stops at the first failure (later rows may depend on earlier ones); the failed row stays
    pending with its error and attempt count, and the next call starts from it again.
    """
    from kms.graphstore import get_graph_store

    result = DeliveryResult()
    if not OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING).exists():
        return result
    store = store or get_graph_store()
    # A quick check first: with the server down each write would retry for the driver's
    # max_transaction_retry_time before giving up, and this runs right after a curator's edit.
    if not store.ping():
        result.error = "graph store unreachable"
        result.pending = OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING).count()
        return result
    with _delivery_lock:
        while result.delivered < limit:
            with transaction.atomic():
                # skip_locked: two deliverers (web process, Celery beat task) never apply one row twice
                # at the same time; a row locked by the other is the other's to apply, so stop here.
                entry = (OutboxEntry.objects.select_for_update(skip_locked=True)
                         .filter(state=OutboxEntry.State.PENDING).order_by("id").first())
                if entry is None:
                    break
                first_pending = OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING).order_by("id") \
                    .values_list("id", flat=True).first()
                if first_pending != entry.pk:
                    break  # an earlier row is being applied elsewhere: keep the order
                try:
                    _apply(store, entry)
                except Exception as exc:
                    OutboxEntry.objects.filter(pk=entry.pk).update(
                        attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000])
                    result.error = f"{type(exc).__name__}: {exc}"
                    log.warning("outbox row %s (%s) failed: %s", entry.pk, entry.op, exc)
                    break
                entry.state = OutboxEntry.State.DONE
                entry.attempts += 1
                entry.delivered_at = timezone.now()
                entry.last_error = ""
                entry.save(update_fields=["state", "attempts", "delivered_at", "last_error"])
                result.delivered += 1
    result.pending = OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING).count()
    return result


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
    return f"{entity_type.lower()}:{key}"


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


def revert(user, entry_id: int, reason: str = "") -> AuditEntry:
    """Undo one audit entry (recorded as a new 'revert' entry). Later changes must be reverted first."""
    with transaction.atomic():
        entry = AuditEntry.objects.select_for_update().get(pk=entry_id)
        if not entry.revertible:
            raise CurationError("this entry cannot be reverted (a revert, or already reverted)")
        b, a = entry.before, entry.after
        products: set[int] = set()
        entities: list[Entity] = []
        try:
            if entry.action in (Action.FACT_STATUS, Action.FACT_EDIT):
                products = _restore_facts(b["facts"], a["facts"])
            elif entry.action == Action.ENTITY_CREATE:
                e = Entity.objects.select_for_update().get(pk=a["entity"]["id"])
                if e.facts.exists() or e.merged.exists():
                    raise CurationError(f"{e.uid} has facts now; delete it instead")
                _enqueue("delete_node", uid=e.uid)
                e.delete()
            elif entry.action == Action.ENTITY_RENAME:
                e = Entity.objects.select_for_update().get(pk=b["entity"]["id"])
                _check_entity(e, a["entity"])
                e.name, e.aliases, e.status = b["entity"]["name"], b["entity"]["aliases"], b["entity"]["status"]
                e.save()
                entities.append(e)
            elif entry.action == Action.ENTITY_MERGE:
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
                entities += [keep, drop]
            elif entry.action == Action.ENTITY_SPLIT:
                source = Entity.objects.select_for_update().get(pk=b["source"]["id"])
                new = Entity.objects.select_for_update().get(pk=a["new"]["id"])
                if Fact.objects.filter(entity=new).exclude(pk__in=[f["id"] for f in a["facts"]]).exists():
                    raise CurationError(f"{new.uid} has other facts now; move them first")
                products = _restore_facts(b["facts"], a["facts"])
                source.aliases = _clean_aliases([*source.aliases, *new.aliases], source.name)
                source.save()
                _enqueue("delete_node", uid=new.uid)
                new.delete()
                entities.append(source)
            elif entry.action == Action.ENTITY_DELETE:
                s = b["entity"]
                if Entity.objects.filter(uid=s["uid"]).exists():
                    raise CurationError(f"{s['uid']} exists again; merge instead")
                e = Entity.objects.create(id=s["id"], uid=s["uid"], type=s["type"], name=s["name"],
                                          aliases=s["aliases"], status=s["status"],
                                          merged_into_id=s["merged_into_id"])
                existing_products = set(Product.objects.filter(pk__in={f["product_id"] for f in b["facts"]})
                                        .values_list("id", flat=True))
                Fact.objects.bulk_create([
                    Fact(id=f["id"], product_id=f["product_id"], relation=f["relation"], entity=e, value=f["value"],
                         unit=f["unit"], field=f["field"], start=f["start"], end=f["end"], text=f["text"],
                         extractor=f["extractor"], extractor_version=f["extractor_version"],
                         confidence=f["confidence"], status=f["status"], curated_by_id=f["curated_by_id"])
                    for f in b["facts"] if f["product_id"] in existing_products])
                Entity.objects.filter(pk__in=b["merged_children"], merged_into__isnull=True).update(merged_into=e)
                products = existing_products
                entities.append(e)
            else:
                raise CurationError(f"cannot revert {entry.action}")
        except (Entity.DoesNotExist, Fact.DoesNotExist) as exc:
            raise CurationError(f"the changed object no longer exists ({exc})") from exc
        for e in entities:
            _enqueue_entity(e)
        if entry.action == Action.ENTITY_MERGE:
            products |= set(Fact.objects.filter(entity_id=b["drop"]["id"]).values_list("product_id", flat=True))
        _enqueue_products(products)
        undo = _audit(user, Action.REVERT, f"reverted #{entry.pk}: {entry.summary}", entry.after, entry.before,
                      reason, entry.entity_uids, revert_of=entry)
        _deliver_after_commit()
    return undo


# --- reads for the portal ----------------------------------------------------------------------
def entity_queryset(q: str = "", entity_type: str = "", include_merged: bool = False):
    qs = Entity.objects.annotate(n_facts=Count("facts"), degree=Count("facts__product", distinct=True))
    if not include_merged:
        qs = qs.filter(merged_into__isnull=True)
    if entity_type:
        qs = qs.filter(type=entity_type.upper())
    if q:
        qs = qs.annotate(aliases_text=Cast("aliases", TextField())).filter(
            Q(name__icontains=q) | Q(uid__icontains=q) | Q(aliases_text__icontains=q))
    return qs


def review_queue(relation: str = "", entity_type: str = ""):
    """Extracted facts not yet decided (automatic ones and candidates, which are under their
    relation's threshold and so not in the graph), most in need of review first: low confidence and
    high impact.

    impact = degree × traffic (degree: facts of the fact's entity; traffic: interactions with the
    fact's product); priority = (1.05 − confidence) × ln(2 + impact), so among equally confident
    facts the busiest come first, and a much less confident fact outranks a busier one.
    """
    degree = Fact.objects.filter(entity=OuterRef("entity")).order_by().values("entity") \
        .annotate(c=Count("id")).values("c")
    traffic = Interaction.objects.filter(product=OuterRef("product")).order_by().values("product") \
        .annotate(c=Count("id")).values("c")
    qs = Fact.objects.filter(status__in=(Status.AUTO, Status.CANDIDATE)).select_related("entity", "product")
    if relation:
        qs = qs.filter(relation=relation)
    if entity_type:
        qs = qs.filter(entity__type=entity_type.upper())
    return qs.annotate(
        degree=Coalesce(Subquery(degree), 0), traffic=Coalesce(Subquery(traffic), 0),
    ).annotate(impact=F("degree") * F("traffic")).annotate(
        priority=(Value(1.05) - F("confidence")) * Ln(Value(2.0) + Cast(F("impact"), FloatField())),
    ).order_by("-priority", "confidence", "-impact", "id")


def source_text(product: Product, field: str) -> str:
    if field == "categories":
        return ",".join(product.category_path or [])
    return str(getattr(product, field, "") or "") if field in {"title", "description", "brand"} else ""


def highlighted_span(fact: Fact, context: int = 80) -> tuple[str, str, str]:
    """(before, span, after) around the fact's evidence in its source field, trimmed to ``context``."""
    text = source_text(fact.product, fact.field)
    start, end = fact.start, fact.end
    if not (text and start is not None and end is not None and 0 <= start <= end <= len(text)
            and (not fact.text or text[start:end] == fact.text)):
        pos = text.find(fact.text) if text and fact.text else -1
        if pos < 0:
            return "", fact.text, ""
        start, end = pos, pos + len(fact.text)
    pre, post = text[max(0, start - context):start], text[end:end + context]
    return ("…" if start > context else "") + pre, text[start:end], post + ("…" if end + context < len(text) else "")


def graph_neighbourhood(uid: str, limit: int = 60) -> dict:
    """Nodes and edges around ``uid`` from the graph store, for the portal's graph view."""
    from kms.graphstore import get_graph_store

    store = get_graph_store()
    centre = store.node(uid)
    rows = store.neighbours(uid, limit=limit)
    nodes = {uid: {"id": uid, "label": (centre or {}).get("name") or (centre or {}).get("title") or uid,
                   "kind": _kind(uid), "centre": True}}
    edges = []
    for r in rows:
        if r["uid"] is None:
            continue
        nodes.setdefault(r["uid"], {"id": r["uid"], "label": str(r["name"])[:80], "kind": _kind(r["uid"])})
        src, dst = (uid, r["uid"]) if r["direction"] == "out" else (r["uid"], uid)
        edges.append({"source": src, "target": dst, "type": r["rel"],
                      "status": (r["props"] or {}).get("status", ""),
                      "confidence": (r["props"] or {}).get("confidence")})
    return {"centre": uid, "found": centre is not None, "nodes": list(nodes.values()), "edges": edges}


def _kind(uid: str) -> str:
    return uid.split(":", 1)[0]
