"""Ingestion rows: extraction results as fact rows and entity references in the database (COPY
on PostgreSQL), and the node/relationship rows that mirror them in the graph store."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from kgschema import SUBCATEGORY_OF, category_chain, uid_key
import nlp
from kms.catalogue.models import Product

from .extractor import get_pipeline, product_text
from .models import Entity, Fact, Status

log = logging.getLogger(__name__)

# --- facts -------------------------------------------------------------------------------------
def _entity_type(object_type: str) -> str:
    return object_type.upper()


def _graph_rows(products: Sequence[Product], facts_by_product: dict[int, list]) -> tuple[list[dict], list[dict]]:
    """Nodes and relationships that mirror these products' facts (``Fact`` rows or ``FactRow``s)."""
    nodes: dict[str, dict] = {}
    rels: dict[tuple, dict] = {}
    for p in products:
        nodes[p.graph_uid] = {"uid": p.graph_uid, "props": {
            "external_id": p.external_id, "title": p.title[:500], "name": p.title[:200], "brand": p.brand[:200]}}
        for f in facts_by_product.get(p.pk, []):
            if f.status == Status.CANDIDATE:
                continue  # under its relation's threshold: waits in the review queue, not in the graph
            e = f.entity
            if e.type == "CATEGORY" and e.uid not in nodes:  # its chain is in once its own node is
                chain = category_chain(uid_key(e.uid), list(p.category_path))
                for child, parent in zip(chain[1:], chain[:-1]):
                    rels[(child[0], SUBCATEGORY_OF, parent[0])] = {
                        "src": child[0], "dst": parent[0], "type": SUBCATEGORY_OF, "props": {}}
                for uid, name in chain:
                    nodes.setdefault(uid, {"uid": uid, "props": {"name": name, "type": "CATEGORY"}})
            nodes[e.uid] = {"uid": e.uid, "props": {"name": e.name, "type": e.type}}
            key = (p.graph_uid, f.relation, e.uid)
            best = rels.get(key)
            if best is None or f.confidence > best["props"]["confidence"]:
                # The graph carries what queries filter and rank on; the full provenance (span,
                # field, extractor version) stays on the Fact row in the database.
                props = {"status": f.status, "confidence": f.confidence, "extractor": f.extractor}
                if f.value:
                    props.update(value=f.value, unit=f.unit)
                rels[key] = {"src": p.graph_uid, "dst": e.uid, "type": f.relation, "props": props}
    return list(nodes.values()), list(rels.values())


MAX_UID = 512
_FACT_COLUMNS = ("product_id", "relation", "entity_id", "value", "unit", "field", "start", "end", "text",
                 "extractor", "extractor_version", "confidence", "status", "created_at", "updated_at")


@dataclass(frozen=True, slots=True)
class EntityRef:
    """What ingestion needs of an Entity row (no model instance: a chunk resolves thousands)."""

    pk: int
    uid: str
    type: str
    name: str


@dataclass(slots=True)
class FactRow:
    """A new automatic fact as ingestion writes it: the columns of ``Fact`` with ``entity`` an
    EntityRef. ``_graph_rows`` reads it exactly as it reads a ``Fact`` instance."""

    product_id: int
    relation: str
    entity: EntityRef
    value: str
    unit: str
    field: str
    start: int | None
    end: int | None
    text: str
    extractor: str
    extractor_version: str
    confidence: float
    status: str = Status.AUTO


def _insert_facts(facts: list[FactRow]) -> None:
    """Insert new facts: one COPY on PostgreSQL (no per-row SQL or model instances; ~10x Django's
    bulk_create for a chunk's thousands of rows), bulk_create elsewhere."""
    if not facts:
        return
    if connection.vendor != "postgresql":
        Fact.objects.bulk_create([Fact(**{c: getattr(f, c) for c in _FACT_COLUMNS[:-2] if c != "entity_id"},
                                       entity_id=f.entity.pk) for f in facts], batch_size=1000)
        return
    now = timezone.now().isoformat()
    quote = connection.ops.quote_name
    sql = f"COPY {quote(Fact._meta.db_table)} ({', '.join(quote(c) for c in _FACT_COLUMNS)}) FROM STDIN"
    # COPY's text format, written in one piece (psycopg's write_row adapts each value in Python).
    # Relation and status are identifiers; the other text columns may hold anything.
    lines = ["\t".join((str(f.product_id), f.relation, str(f.entity.pk), _copy_text(f.value), _copy_text(f.unit),
                        _copy_text(f.field), _copy_text(f.start), _copy_text(f.end), _copy_text(f.text), _copy_text(f.extractor),
                        _copy_text(f.extractor_version), repr(float(f.confidence)), f.status, now, now)) + "\n"
             for f in facts]
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write("".join(lines))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value) -> str:
    """One column in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    return value.translate(_COPY_ESCAPES) if isinstance(value, str) else str(value)


_ENTITY_COLUMNS = ("uid", "id", "type", "name", "merged_into__id", "merged_into__uid", "merged_into__type",
                   "merged_into__name")


def _entity_ref(uid, pk, type_, name, m_pk, m_uid, m_type, m_name) -> EntityRef:
    # A merged entity's facts go to the entity it was merged into.
    return EntityRef(m_pk, m_uid, m_type, m_name) if m_pk is not None else EntityRef(pk, uid, type_, name)


def _entity_refs(uids: list[str]) -> dict[str, EntityRef]:
    return {row[0]: _entity_ref(*row) for row in Entity.objects.filter(uid__in=uids).values_list(*_ENTITY_COLUMNS)}


def _upsert_entities_postgres(wanted: dict[str, tuple[str, str]]) -> dict[str, EntityRef]:
    """Create the missing entities and read back all of ``wanted``: two statements whatever the
    chunk's size. Arrays as parameters: Django's per-row INSERT and an IN list with thousands of
    parameters cost ~0.1 s a chunk in SQL building alone."""
    import psycopg

    table = connection.ops.quote_name(Entity._meta.db_table)
    uids = list(wanted)
    connection.ensure_connection()
    # A server-side binding cursor: Django's (client-side binding) would quote the arrays' thousands
    # of strings into the SQL text in Python.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"INSERT INTO {table} (uid, type, name, aliases, status, created_at, updated_at) "
            "SELECT u, t, n, '[]'::jsonb, %s, now(), now() FROM unnest(%s::text[], %s::text[], %s::text[]) AS x(u, t, n) "
            "ON CONFLICT (uid) DO NOTHING",
            [Status.AUTO.value, uids, [_entity_type(t) for t, _ in wanted.values()],
             [(name or uid)[:255] for uid, (_, name) in wanted.items()]])
        cursor.execute(
            f"SELECT e.uid, e.id, e.type, e.name, m.id, m.uid, m.type, m.name FROM {table} e "
            f"LEFT JOIN {table} m ON m.id = e.merged_into_id WHERE e.uid = ANY(%s)", [uids])
        return {row[0]: _entity_ref(*row) for row in cursor.fetchall()}


def _ensure_entities(extracted: list["nlp.Fact"], known: dict[str, EntityRef] | None = None) -> dict[str, EntityRef]:
    """uid -> the entity its facts attach to, creating the entities that do not exist yet.

    ``known`` (a job's cache of earlier chunks' answers) is consulted first and filled in."""
    known = {} if known is None else known
    wanted = {}
    for f in extracted:
        uid = f.object_uid
        if uid not in known:
            wanted.setdefault(uid, (f.object_type, f.object_name))
    if not wanted:
        return known
    if connection.vendor == "postgresql":
        known.update(_upsert_entities_postgres(wanted))
        return known
    have = _entity_refs(list(wanted))
    missing = [Entity(uid=uid, type=_entity_type(t), name=(name or uid)[:255])
               for uid, (t, name) in wanted.items() if uid not in have]
    if missing:
        Entity.objects.bulk_create(missing, ignore_conflicts=True)
        have.update(_entity_refs([e.uid for e in missing]))
    known.update(have)
    return known


def extract_products(products: Sequence[Product], pipe=None) -> dict:
    """The NLP step alone (no I/O): product pk -> ExtractionResult."""
    pipe = pipe or get_pipeline()
    return {r.product_uid: r for r in nlp.extract(pipe, [product_text(p) for p in products])}
