"""The graph outbox: curation writes what the graph store must change as ``OutboxEntry`` rows in its
own transaction; ``deliver_outbox`` applies them (after the commit, and periodically), so a graph
outage delays an edit but never loses it."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from kms.catalogue.models import Product
from kms.events.models import Interaction
from kms.knowledge.models import Entity, Fact, Status

from .models import OutboxEntry
from .audit import SYNC_CHUNK

log = logging.getLogger(__name__)

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
