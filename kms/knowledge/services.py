"""Knowledge ingestion: products → spaCy extraction → facts with provenance → graph store.

One code path: the management command, the Celery tasks and the API all run a job made by
``create_ingestion_job``, inline (``run_ingestion_job``) or as chunk tasks (``plan_job`` +
``process_chunk``); queueing it is ``kms.knowledge.tasks``'s (``start_ingestion``).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max
from django.utils import timezone

from kgschema import SUBCATEGORY_OF, category_chain, uid_key
import kms.lookups  # noqa: F401  (registers __any)
import nlp
from kms.catalogue.models import Product
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from .attributes import attribute_schema, schema_version
from .models import CURATED, EXTRACTED, Entity, Fact, IngestionJob, Status

log = logging.getLogger(__name__)

CHUNK_SIZE = 64
RETRYABLE_GRAPH_ERRORS = (TransientError, ServiceUnavailable, SessionExpired)
MAX_ERRORS_KEPT = 1000
GRAPH_ATTEMPTS = 4

_pipeline_lock = threading.Lock()
_pipeline: tuple[tuple, object] | None = None


# --- the pipeline, rebuilt when the knowledge base changes ---------------------------------------
def _curated_entities():
    """Entities a curator shaped (aliases, merges, approvals): the part of the KB beyond product fields."""
    from django.db.models import Q

    return Entity.objects.filter(Q(status=Status.APPROVED) | Q(merged_into__isnull=False) | ~Q(aliases=[]))


def knowledge_version() -> tuple:
    # Entities that ingestion itself creates do not change the rules, so they are not counted:
    # otherwise every chunk of a job would rebuild the pipeline.
    p = Product.objects.aggregate(n=Count("id"), t=Max("updated_at"))
    e = _curated_entities().aggregate(n=Count("id"), t=Max("updated_at"))
    return (p["n"], str(p["t"]), e["n"], str(e["t"]), str(current_ner_dir()), schema_version(),
            str(attribute_model_dir()))


def nlp_dir() -> Path:
    return Path(settings.KMS_NLP_DIR)


def current_ner_dir() -> Path | None:
    pointer = nlp_dir() / "CURRENT"
    if pointer.exists():
        path = nlp_dir() / pointer.read_text().strip()
        if path.exists():
            return path
    return None


def attribute_model_dir() -> Path | None:
    """A trained attribute NER (``nlp.attributes.save_model``) under KMS_NLP_DIR/attributes, if any."""
    path = nlp_dir() / "attributes"
    return path if (path / "ner").exists() else None


def train_nlp_models(n_iter: int = 6, seed: int = 0, log=print, acceptor_only: bool = False) -> dict:
    """Train the NER, brand and category models on the catalogue (weak supervision from its
    structured fields) and refit the fact acceptor with the curators' decisions; save a versioned
    artefact and make ingestion use it from now on. ``acceptor_only`` refits only the acceptor
    (the current artefact's other models are copied into the new version)."""
    import shutil

    from nlp.training import train_ner

    version = timezone.now().strftime("ner-%Y%m%d-%H%M%S")
    out = nlp_dir() / version
    if acceptor_only:
        current = current_ner_dir()
        if current is not None:
            shutil.copytree(current, out)
        out.mkdir(parents=True, exist_ok=True)
        scores: dict = {}
    else:
        products = [product_text(p) for p in Product.objects.all().iterator()]
        scores = train_ner(products, out, n_iter=n_iter, seed=seed, log=log)
    acceptor, n_curated = acceptor_from_curation()
    acceptor.save(out / "acceptor.json")
    (nlp_dir() / "CURRENT").write_text(version)
    return scores | {"artefact": version, "curated_facts": n_curated}


def curated_examples() -> list[tuple]:
    """Curators' decisions as acceptor training data: (nlp Fact, its cues, approved?) for every
    approved or rejected extracted fact, with cues computed against the product's other facts."""
    from nlp.acceptance import product_cues

    by_product: dict[int, list[Fact]] = {}
    for f in (Fact.objects.filter(product__facts__status__in=CURATED).distinct()
              .select_related("entity", "product").order_by("product_id", "id")):
        by_product.setdefault(f.product_id, []).append(f)
    out = []
    for rows in by_product.values():
        p = rows[0].product
        text = {"title": p.title, "description": p.description, "brand": p.brand,
                "categories": list(p.category_path)}
        facts = [_as_nlp_fact(f) for f in rows]
        for f, nf, cue_names in zip(rows, facts, product_cues(facts, text)):
            if f.status in CURATED and f.extractor not in ("", "curator"):
                out.append((nf, cue_names, f.status == Status.APPROVED))
    return out


def _as_nlp_fact(f: Fact) -> "nlp.Fact":
    object_type, _, key = f.entity.uid.partition(":")
    try:
        value = float(f.value) if f.value else None
    except ValueError:
        value = None
    return nlp.Fact(relation=f.relation, object_type=object_type.upper(), object_key=key,
                    object_name=f.entity.name, value=value, unit=f.unit or None, field=f.field,
                    start=f.start or 0, end=f.end or 0, text=f.text, extractor=f.extractor,
                    confidence=f.confidence)


def acceptor_from_curation() -> tuple["nlp.acceptance.Acceptor", int]:
    """The shipped acceptor (fitted on the labelled calibration sample) plus curators' decisions."""
    from nlp.acceptance import Acceptor

    base = Acceptor.load() or Acceptor()
    examples = curated_examples()
    return base.with_feedback(examples, version=f"{base.version}+curated-{len(examples)}"), len(examples)


def product_text(p: Product) -> nlp.ProductText:
    return nlp.ProductText(uid=p.pk, title=p.title, description=p.description, brand=p.brand,
                           categories=list(p.category_path), attributes=dict(p.attributes))


def build_knowledge_base() -> "nlp.KnowledgeBase":
    """Structured catalogue fields plus curated entities (aliases, merges) from the database."""
    products = (nlp.ProductText(uid=pid, title="", brand=brand or "", categories=list(cats or []))
                for pid, brand, cats in Product.objects.values_list("id", "brand", "category_path").iterator())
    kb = nlp.KnowledgeBase.from_products(products)
    kinds = {"BRAND", "PRODUCT_TYPE", "MATERIAL", "COLOR", "USE"}
    for entity in _curated_entities().filter(type__in=kinds).select_related("merged_into").iterator():
        target = entity.merged_into or entity
        key = target.uid.split(":", 1)[1]
        if key not in kb.entities.get(entity.type, {}):
            kb.add_entity(entity.type, target.name, key=key)
        if entity.merged_into_id:
            # the merged entity may also come from products' brand fields: fold it in wholesale
            drop = entity.uid.split(":", 1)[1]
            if drop in kb.entities.get(entity.type, {}):
                kb.merge(entity.type, key, drop)
        for alias in [entity.name, *entity.aliases]:
            kb.add_alias(entity.type, key, alias)
    return kb


def get_pipeline():
    global _pipeline
    version = knowledge_version()
    with _pipeline_lock:
        if _pipeline is None or _pipeline[0] != version:
            started = time.perf_counter()
            pipe = nlp.build_pipeline(build_knowledge_base(), ner_model_dir=current_ner_dir(),
                                      attributes=attribute_schema(),
                                      attribute_model_dir=attribute_model_dir())
            _pipeline = (version, pipe)
            log.info("built NLP pipeline in %.1fs", time.perf_counter() - started)
        return _pipeline[1]


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


@dataclass
class PreparedChunk:
    """A chunk ready to write: its facts as rows and the graph rows that mirror them."""

    ok: list[Product]
    failed: list[dict]
    facts: list[FactRow]
    nodes: list[dict]
    rels: list[dict]
    previously: list[str]  # graph uids of products whose earlier automatic facts are replaced


class ChunkWriter:
    """Turns extraction results into facts and graph rows, and writes them chunk by chunk.

    Each chunk is one database transaction (facts, product hashes, the job's counter) that wraps
    its graph write: if the graph write fails, the database rolls back and the chunk is retried
    whole. ``write(prepared, overlap=...)`` runs ``overlap`` (preparing the next chunk) while the
    graph store works on this one, so the graph write's wait costs no time of its own.

    Per writer (one job run) it remembers the entity nodes and category links already in the
    graph, which later chunks then do not send again, and the entities already resolved.
    """

    def __init__(self, store=None, job_id: int | None = None):
        from kms.graphstore import get_graph_store

        self.store = store or get_graph_store()
        self.job_id = job_id
        self.written: set = set()
        self.entities: dict[str, EntityRef] = {}
        self._merges = None  # merged entities' (count, last change) when ``entities`` was filled
        self._graph_thread = None

    def __enter__(self) -> "ChunkWriter":
        return self

    def __exit__(self, *exc) -> None:
        if self._graph_thread is not None:
            self._graph_thread.shutdown(wait=True)
            self._graph_thread = None

    def prepare(self, products: Sequence[Product], results: dict) -> PreparedChunk:
        ok, failed = [], []
        extracted_all = []
        for p in products:
            r = results.get(p.pk)
            if r is None or r.error:
                failed.append({"product": p.external_id, "error": r.error if r else "no extraction result"})
            else:
                ok.append(p)
                # an "entity" whose key is longer than a uid can be is a run-away span, not knowledge
                r.facts = [f for f in r.facts if len(f.object_uid) <= MAX_UID]
                extracted_all.extend(r.facts)
        # A curator's merge while the job runs re-points the facts that exist; the cache must not
        # keep sending new ones to the merged-away entity. One query on a partial index per chunk.
        merges = tuple(Entity.objects.filter(merged_into__isnull=False).aggregate(n=Count("id"), t=Max("updated_at"))
                       .values())
        if merges != self._merges:
            self.entities.clear()
            self._merges = merges
        entities = _ensure_entities(extracted_all, self.entities)
        ok_ids = [p.pk for p in ok]
        curated = set(Fact.objects.filter(product_id__any=ok_ids, status__in=CURATED)
                      .values_list("product_id", "relation", "entity__uid"))
        new_facts: dict[int, list[FactRow]] = {p.pk: [] for p in ok}
        for p in ok:
            rows = new_facts[p.pk]
            for f in results[p.pk].facts:
                entity = entities[f.object_uid]
                if curated and (p.pk, f.relation, entity.uid) in curated:
                    continue  # the curator's decision wins over re-extraction
                rows.append(FactRow(
                    p.pk, f.relation, entity, "" if f.value is None else str(f.value)[:64], (f.unit or "")[:32],
                    f.field, f.start, f.end, (f.text or "")[:1000], f.extractor[:64],
                    str(f.extractor_version)[:32], float(f.confidence),
                    Status.CANDIDATE if getattr(f, "status", Status.AUTO) == Status.CANDIDATE else Status.AUTO))
        nodes, rels = _graph_rows(ok, new_facts)
        return PreparedChunk(ok, failed, [f for fs in new_facts.values() for f in fs], nodes, rels,
                             [p.graph_uid for p in ok if p.extracted_hash])

    def _fresh(self, prepared: PreparedChunk) -> tuple[list[dict], list[dict]]:
        written = self.written
        nodes = [n for n in prepared.nodes if n["uid"].startswith("product:") or n["uid"] not in written]
        rels = [r for r in prepared.rels
                if r["type"] != SUBCATEGORY_OF or (r["src"], r["type"], r["dst"]) not in written]
        return nodes, rels

    def _graph_write(self, prepared: PreparedChunk, nodes, rels, overlap):
        """The chunk's graph write; ``overlap()`` runs meanwhile. Returns what ``overlap`` returned."""
        if overlap is None:
            self.store.replace_product_facts(prepared.previously, nodes, rels)
            return None
        if self._graph_thread is None:
            from concurrent.futures import ThreadPoolExecutor

            self._graph_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-write")
        future = self._graph_thread.submit(self.store.replace_product_facts, prepared.previously, nodes, rels)
        ahead = None
        try:
            with transaction.atomic():  # a savepoint: a failure there must not undo this chunk
                ahead = overlap()
        except Exception as exc:
            log.warning("preparing the next chunk failed (%s); it is prepared again on its own", exc)
            self.entities.clear()  # resolved inside the rolled-back savepoint
            ahead = None
        future.result()  # raises the graph store's error: the transaction rolls back
        return ahead

    def write(self, prepared: PreparedChunk, overlap=None):
        """Write one prepared chunk; returns {"ok", "failed"} and ``overlap``'s result (or None)."""
        ok = prepared.ok
        ahead = None
        for attempt in range(GRAPH_ATTEMPTS):
            nodes, rels = self._fresh(prepared)
            try:
                with transaction.atomic():
                    ok_ids = [p.pk for p in ok]
                    Fact.objects.filter(product_id__any=ok_ids, status__in=EXTRACTED).delete()
                    _insert_facts(prepared.facts)
                    Product.objects.filter(pk__any=ok_ids).update(
                        extracted_hash=F("content_hash"), ingest_error="")
                    if self.job_id is not None and ok:
                        # counted in the same transaction as the facts: a redelivered chunk never counts twice
                        IngestionJob.objects.filter(pk=self.job_id).update(done=F("done") + len(ok))
                    # Inside the transaction: if the graph write fails, the database rolls back too
                    # and the chunk is retried as a whole.
                    ahead = self._graph_write(prepared, nodes, rels, overlap)
                self.written.update(n["uid"] for n in nodes if not n["uid"].startswith("product:"))
                self.written.update((r["src"], r["type"], r["dst"]) for r in rels if r["type"] == SUBCATEGORY_OF)
                break
            except RETRYABLE_GRAPH_ERRORS as exc:
                self.entities.clear()  # entities created in the rolled-back transaction are gone
                overlap = None  # prepared again on its own after this chunk
                if attempt == GRAPH_ATTEMPTS - 1:
                    raise
                delay = 2 ** attempt
                log.warning("ingestion chunk failed (%s); retrying in %ss", exc, delay)
                time.sleep(delay)
            except Exception:
                self.entities.clear()
                raise
        for item in prepared.failed:
            Product.objects.filter(external_id=item["product"]).update(ingest_error=item["error"][:2000])
        return {"ok": [p.pk for p in ok], "failed": prepared.failed}, ahead


def ingest_products(products: Sequence[Product], pipe=None, store=None, job_id: int | None = None,
                    results: dict | None = None) -> dict:
    """Extract (unless ``results`` are given), store facts and project one chunk into the graph.

    Returns {"ok": [product ids], "failed": [{"product": external id, "error": text}]}.
    Curated facts (approved/rejected) are never replaced; a rejected fact is not re-added.
    """
    if results is None:
        results = extract_products(products, pipe)
    with ChunkWriter(store, job_id) as writer:
        out, _ = writer.write(writer.prepare(products, results))
    return out


# --- jobs ----------------------------------------------------------------------------------------
# A job is split into chunk tasks: each is small, idempotent (content hashes) and acknowledged
# late, so a worker killed mid-job loses only its in-flight chunk, which the broker redelivers.


STALE = "stale"  # extracted_hash of a product whose facts must be re-extracted though its content is unchanged


def mark_stale(product_ids: Sequence[int] | None = None) -> int:
    """Make products (all by default) due for re-extraction. Their graph facts are still replaced,
    not added to: only a product never ingested has an empty ``extracted_hash``."""
    qs = Product.objects.all() if product_ids is None else Product.objects.filter(pk__in=product_ids)
    return qs.exclude(extracted_hash="").update(extracted_hash=STALE)


def create_ingestion_job(product_ids: Sequence[int] | None = None, force: bool = False) -> IngestionJob:
    """An ingestion job for these products (None: the whole catalogue), pending. Running it is the
    caller's: ``kms.knowledge.tasks.start_ingestion`` queues it for the workers, ``manage.py ingest``
    runs it inline (``run_ingestion_job``)."""
    if force:
        mark_stale(product_ids)
    return IngestionJob.objects.create(product_ids=list(product_ids) if product_ids is not None else [],
                                       kind="ingest" if product_ids is not None else "ingest-all")


def pending_job_ids(older_than_seconds: float = 30.0) -> list[int]:
    """Jobs still pending after ``older_than_seconds``: their dispatch failed (broker down)."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return list(IngestionJob.objects.filter(state=IngestionJob.State.PENDING, created_at__lt=cutoff)
                .values_list("id", flat=True))


def note_dispatch_failed(job_id: int, exc: Exception) -> None:
    log.warning("could not queue ingestion job %s: %s", job_id, exc)
    IngestionJob.objects.filter(pk=job_id).update(message=f"queued later: broker unavailable ({exc})"[:2000])


def _job_scope(job: IngestionJob):
    return Product.objects.all() if job.kind == "ingest-all" else Product.objects.filter(pk__in=job.product_ids)


def plan_job(job_id: int, chunk_size: int = CHUNK_SIZE) -> tuple[IngestionJob, list[list[int]]]:
    """Count the job's products and return its pending chunks. Re-planning a running job keeps its counters."""
    with transaction.atomic():
        job = IngestionJob.objects.select_for_update().get(pk=job_id)
        if job.state == IngestionJob.State.DONE:
            return job, []
        scope = _job_scope(job)
        pending = list(scope.exclude(extracted_hash=F("content_hash")).order_by("id").values_list("id", flat=True))
        if job.state == IngestionJob.State.PENDING:
            job.total = scope.count()
            job.skipped = job.total - len(pending)
            job.done = job.failed = 0
            job.errors = []
            job.state = IngestionJob.State.RUNNING
            job.started_at = timezone.now()
            job.save()
        else:
            failed = {e["product"] for e in job.errors}
            pending = [pk for pk, ext in Product.objects.filter(pk__in=pending).values_list("id", "external_id")
                       if ext not in failed]
    return job, [pending[i:i + chunk_size] for i in range(0, len(pending), chunk_size)]


def _chunk_products(job_id: int, product_ids: Sequence[int]) -> list[Product]:
    failed_before = {e["product"] for e in IngestionJob.objects.get(pk=job_id).errors}
    return [p for p in Product.objects.filter(pk__any=list(product_ids)).exclude(extracted_hash=F("content_hash"))
            .order_by("id") if p.external_id not in failed_before]


def _write_isolated(writer: ChunkWriter, job_id: int, products: list[Product], results=None,
                    prepared: PreparedChunk | None = None, pipe=None, overlap=None) -> tuple[dict, object]:
    """Write one chunk; if something in one product breaks it, ingest its products one by one."""
    if not products:
        return {"ok": [], "failed": []}, None
    try:
        if prepared is None:
            prepared = writer.prepare(products, results if results is not None else extract_products(products, pipe))
        return writer.write(prepared, overlap)
    except RETRYABLE_GRAPH_ERRORS:
        raise  # the task retries the chunk with backoff
    except Exception as exc:
        log.warning("chunk of job %s failed (%s); ingesting its products one by one", job_id, exc)
        out = {"ok": [], "failed": []}
        for product in products:
            try:
                part = ingest_products([product], pipe=pipe, store=writer.store, job_id=job_id)
            except RETRYABLE_GRAPH_ERRORS:
                raise
            except Exception as one:
                part = {"ok": [], "failed": [{"product": product.external_id, "error": f"{type(one).__name__}: {one}"[:500]}]}
            out["ok"] += part["ok"]
            out["failed"] += part["failed"]
        return out, None


def _count_failures(job_id: int, out: dict) -> None:
    if out["failed"]:
        with transaction.atomic():
            job = IngestionJob.objects.select_for_update().get(pk=job_id)
            new = [f for f in out["failed"] if f["product"] not in {e["product"] for e in job.errors}]
            job.failed += len(new)
            job.errors = (job.errors + new)[:MAX_ERRORS_KEPT]
            job.save(update_fields=["failed", "errors"])


def process_chunk(job_id: int, product_ids: Sequence[int], pipe=None) -> dict:
    """Ingest the chunk's products that still need it and count them into the job (a chunk task)."""
    with ChunkWriter(job_id=job_id) as writer:
        out, _ = _write_isolated(writer, job_id, _chunk_products(job_id, product_ids), pipe=pipe)
    _count_failures(job_id, out)
    finish_if_complete(job_id)
    return out


def fail_chunk(job_id: int, product_ids: Sequence[int], error: str) -> None:
    """A chunk task gave up (retries exhausted): its unprocessed products count as failed, so the
    job still finishes and says why instead of staying 'running' for ever."""
    with transaction.atomic():
        job = IngestionJob.objects.select_for_update().get(pk=job_id)
        known = {e["product"] for e in job.errors}
        left = Product.objects.filter(pk__in=product_ids).exclude(extracted_hash=F("content_hash"))
        new = [{"product": ext, "error": error[:500]} for ext in left.values_list("external_id", flat=True)
               if ext not in known]
        job.failed += len(new)
        job.errors = (job.errors + new)[:MAX_ERRORS_KEPT]
        job.save(update_fields=["failed", "errors"])
    finish_if_complete(job_id)


def finish_if_complete(job_id: int) -> IngestionJob:
    with transaction.atomic():
        job = IngestionJob.objects.select_for_update().get(pk=job_id)
        if job.state == IngestionJob.State.RUNNING and job.done + job.skipped + job.failed >= job.total:
            job.state = IngestionJob.State.DONE
            job.finished_at = timezone.now()
            job.save(update_fields=["state", "finished_at"])
    return job


INLINE_CHUNK_SIZE = 512
_forked_pipeline = None  # the pipeline a forked extraction process inherits


def _extract_forked(texts: list) -> dict:
    return {r.product_uid: r for r in nlp.extract(_forked_pipeline, texts)}


def _extraction_executor(pipe, n_chunks: int):
    """Where the inline runner extracts the next chunk while it writes the current one.

    A forked process when that is safe (several chunks, a fork-capable OS, and this process
    runs a single thread, as the ``ingest`` command does): extraction then runs on another core
    instead of competing with the writes for the GIL. The child inherits the pipeline, gets plain
    product texts and returns the extraction results; it never touches the database or the
    graph store. Otherwise (e.g. inside a threaded web worker) a thread, which still overlaps the
    extraction with the time the writes wait on the servers.
    """
    global _forked_pipeline
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    if n_chunks > 1 and threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        _forked_pipeline = pipe
        executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        return executor, lambda products: executor.submit(_extract_forked, [product_text(p) for p in products])
    executor = ThreadPoolExecutor(max_workers=1)
    return executor, lambda products: executor.submit(extract_products, products, pipe)


def _ramped(ids: list[int], size: int) -> list[list[int]]:
    """Chunks of ``size``, with smaller ones first and last (size/8, /4, /2 ... /2, /4, /8): the first
    extraction and the last write are the only parts of an inline job that nothing overlaps with."""
    pos, head = 0, []
    for n in (size // 8, size // 4, size // 2):
        if pos < len(ids):
            head.append(ids[pos:pos + max(1, n)])
            pos += max(1, n)
    last = ids[max(pos, len(ids) - size):]
    body = [ids[i:min(i + size, len(ids) - len(last))] for i in range(pos, len(ids) - len(last), size)]
    tail = []
    if last:
        while len(last) > max(1, size // 8):
            half = (len(last) + 1) // 2
            tail.append(last[:half])
            last = last[half:]
        tail.append(last)
    return head + body + tail


EXTRACT_AHEAD = 4  # chunks the extraction may run ahead of the writer


def run_ingestion_job(job_id: int, chunk_size: int | None = None, progress=None) -> IngestionJob:
    """Run (or resume) a job inline, chunk by chunk (the workers run it as chunk tasks instead:
    ``kms.knowledge.tasks.run_ingestion`` plans it with ``plan_job`` and queues the chunks).

    Inline, three things overlap: extraction runs up to EXTRACT_AHEAD chunks ahead (in a forked
    process when it can), and while the graph store writes chunk n the next chunk's facts and
    graph rows are prepared (``ChunkWriter.write``'s ``overlap``)."""
    from collections import deque

    job, chunks = plan_job(job_id, chunk_size or INLINE_CHUNK_SIZE)
    if not chunks:
        return finish_if_complete(job_id)
    chunks = _ramped([pk for chunk in chunks for pk in chunk], chunk_size or INLINE_CHUNK_SIZE)
    pipe = get_pipeline()
    executor, extract = _extraction_executor(pipe, len(chunks))
    queue: deque = deque()  # (products, future of their extraction results), in chunk order
    submitted = 0

    def fill() -> None:
        nonlocal submitted
        while len(queue) < EXTRACT_AHEAD and submitted < len(chunks):
            products = _chunk_products(job_id, chunks[submitted])
            queue.append((products, extract(products)))
            submitted += 1

    try:
        with executor, ChunkWriter(job_id=job_id) as writer:
            fill()
            prepared = None
            for _ in chunks:
                products, extraction = queue.popleft()
                fill()
                overlap = None
                if queue and products:
                    following, their_results = queue[0]
                    overlap = lambda: writer.prepare(following, their_results.result()) if following else None  # noqa: E731
                out, prepared = _write_isolated(writer, job_id, products, results=extraction.result(),
                                                prepared=prepared, pipe=pipe, overlap=overlap)
                _count_failures(job_id, out)
                if progress:
                    progress(IngestionJob.objects.get(pk=job_id))
    except Exception as exc:
        IngestionJob.objects.filter(pk=job_id).update(state=IngestionJob.State.FAILED,
                                                      message=f"{type(exc).__name__}: {exc}"[:2000],
                                                      finished_at=timezone.now())
        raise
    return finish_if_complete(job_id)


def job_progress(job: IngestionJob) -> dict:
    return {"id": job.pk, "kind": job.kind, "state": job.state, "total": job.total, "done": job.done,
            "skipped": job.skipped, "failed": job.failed, "rate_per_s": round(job.rate, 2),
            "errors": job.errors[:50], "message": job.message,
            "started_at": job.started_at, "finished_at": job.finished_at}
