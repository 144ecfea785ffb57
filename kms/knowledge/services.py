"""Knowledge ingestion: products → spaCy extraction → facts with provenance → graph store.

One code path: the management command, the Celery task and the API all call
``start_ingestion`` / ``run_ingestion_job``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max
from django.utils import timezone

import nlp
from kms.catalogue.models import Product
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from .models import Entity, Fact, IngestionJob, Status

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
    return (p["n"], str(p["t"]), e["n"], str(e["t"]), str(current_ner_dir()))


def nlp_dir() -> Path:
    return Path(getattr(settings, "KMS_NLP_DIR", settings.DATA_DIR / "nlp"))


def current_ner_dir() -> Path | None:
    pointer = nlp_dir() / "CURRENT"
    if pointer.exists():
        path = nlp_dir() / pointer.read_text().strip()
        if path.exists():
            return path
    return None


def train_nlp_models(n_iter: int = 6, seed: int = 0, log=print) -> dict:
    """Train the NER, brand and category models on the catalogue (weak supervision from its
    structured fields), save a versioned artefact and make ingestion use it from now on."""
    from nlp.training import train_ner

    version = timezone.now().strftime("ner-%Y%m%d-%H%M%S")
    out = nlp_dir() / version
    products = [product_text(p) for p in Product.objects.all().iterator()]
    scores = train_ner(products, out, n_iter=n_iter, seed=seed, log=log)
    (nlp_dir() / "CURRENT").write_text(version)
    return scores | {"artefact": version}


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
            pipe = nlp.build_pipeline(build_knowledge_base(), ner_model_dir=current_ner_dir())
            _pipeline = (version, pipe)
            log.info("built NLP pipeline in %.1fs", time.perf_counter() - started)
        return _pipeline[1]


# --- facts -------------------------------------------------------------------------------------
def _entity_type(object_type: str) -> str:
    return object_type.upper()


def _category_chain(key: str, name_parts: list[str]) -> list[tuple[str, str]]:
    """(uid, display name) for every level of a category key 'a/b/c'."""
    parts = key.split("/")
    names = name_parts if len(name_parts) == len(parts) else parts
    return [(f"category:{'/'.join(parts[:n])}", names[n - 1]) for n in range(1, len(parts) + 1)]


def _graph_rows(products: Sequence[Product], facts_by_product: dict[int, list[Fact]],
                written: set | None = None):
    """Nodes and relationships for a chunk. ``written`` (per job) holds entity nodes and category
    links already merged by earlier chunks of the same job: they are not sent again."""
    nodes: dict[str, dict] = {}
    rels: dict[tuple, dict] = {}
    for p in products:
        nodes[p.graph_uid] = {"uid": p.graph_uid, "props": {
            "external_id": p.external_id, "title": p.title[:500], "name": p.title[:200], "brand": p.brand[:200]}}
        for f in facts_by_product.get(p.pk, []):
            e = f.entity
            if e.type == "CATEGORY":
                chain = _category_chain(e.uid.split(":", 1)[1], list(p.category_path))
                for child, parent in zip(chain[1:], chain[:-1]):
                    rels[(child[0], "SUBCATEGORY_OF", parent[0])] = {
                        "src": child[0], "dst": parent[0], "type": "SUBCATEGORY_OF", "props": {}}
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
    if written is not None:
        fresh_nodes = [n for uid, n in nodes.items() if uid.startswith("product:") or uid not in written]
        fresh_rels = [r for k, r in rels.items() if r["type"] != "SUBCATEGORY_OF" or k not in written]
        return fresh_nodes, fresh_rels
    return list(nodes.values()), list(rels.values())


def _remember_written(written: set | None, nodes: list[dict], rels: list[dict]) -> None:
    if written is None:
        return
    written.update(n["uid"] for n in nodes if not n["uid"].startswith("product:"))
    written.update((r["src"], r["type"], r["dst"]) for r in rels if r["type"] == "SUBCATEGORY_OF")


MAX_UID = 512
_FACT_COLUMNS = ("product_id", "relation", "entity_id", "value", "unit", "field", "start", "end", "text",
                 "extractor", "extractor_version", "confidence", "status", "created_at", "updated_at")


def _insert_facts(facts: list[Fact]) -> None:
    """Insert new facts: one COPY on PostgreSQL (no per-row SQL to build; ~10x Django's
    bulk_create for a chunk's thousands of rows), bulk_create elsewhere."""
    if connection.vendor != "postgresql" or not facts:
        Fact.objects.bulk_create(facts, batch_size=1000)
        return
    now = timezone.now()
    quote = connection.ops.quote_name
    sql = f"COPY {quote(Fact._meta.db_table)} ({', '.join(quote(c) for c in _FACT_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for f in facts:
            copy.write_row((f.product_id, f.relation, f.entity_id, f.value, f.unit, f.field, f.start, f.end, f.text,
                            f.extractor, f.extractor_version, f.confidence, f.status, now, now))


def _ensure_entities(extracted: list["nlp.Fact"]) -> dict[str, Entity]:
    wanted = {}
    for f in extracted:
        wanted.setdefault(f.object_uid, (f.object_type, f.object_name))
    have = {e.uid: e for e in Entity.objects.filter(uid__in=list(wanted))}
    missing = [Entity(uid=uid, type=_entity_type(t), name=(name or uid)[:255])
               for uid, (t, name) in wanted.items() if uid not in have]
    if missing:
        Entity.objects.bulk_create(missing, ignore_conflicts=True)
        have = {e.uid: e for e in Entity.objects.filter(uid__in=list(wanted))}
    # A merged entity's facts go to the entity it was merged into.
    return {uid: (e.merged_into if e.merged_into_id else e) for uid, e in have.items()}


def extract_products(products: Sequence[Product], pipe=None) -> dict:
    """The NLP step alone (no I/O): product pk -> ExtractionResult."""
    pipe = pipe or get_pipeline()
    return {r.product_uid: r for r in nlp.extract(pipe, [product_text(p) for p in products])}


def ingest_products(products: Sequence[Product], pipe=None, store=None, job_id: int | None = None,
                    results: dict | None = None, written: set | None = None) -> dict:
    """Extract (unless ``results`` are given), store facts and project one chunk into the graph.

    Returns {"ok": [product ids], "failed": [{"product": external id, "error": text}]}.
    Curated facts (approved/rejected) are never replaced; a rejected fact is not re-added.
    """
    from kms.graphstore import get_graph_store

    store = store or get_graph_store()
    if results is None:
        results = extract_products(products, pipe)
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
    entities = _ensure_entities(extracted_all)
    curated = {}
    for pid, rel, eid, status in Fact.objects.filter(product__in=ok).exclude(status=Status.AUTO) \
            .values_list("product_id", "relation", "entity__uid", "status"):
        curated[(pid, rel, eid)] = status
    new_facts: dict[int, list[Fact]] = {p.pk: [] for p in ok}
    for p in ok:
        for f in results[p.pk].facts:
            entity = entities[f.object_uid]
            if (p.pk, f.relation, entity.uid) in curated:
                continue  # the curator's decision wins over re-extraction
            new_facts[p.pk].append(Fact(
                product=p, relation=f.relation, entity=entity,
                value="" if f.value is None else str(f.value)[:64], unit=(f.unit or "")[:32],
                field=f.field, start=f.start, end=f.end, text=(f.text or "")[:1000],
                extractor=f.extractor[:64], extractor_version=str(f.extractor_version)[:32],
                confidence=float(f.confidence), status=Status.AUTO))
    nodes, rels = _graph_rows(ok, new_facts, written)
    # products never ingested before have no automatic facts in the graph to replace
    previously = [p.graph_uid for p in ok if p.extracted_hash]
    for attempt in range(GRAPH_ATTEMPTS):
        try:
            with transaction.atomic():
                Fact.objects.filter(product__in=ok, status=Status.AUTO).delete()
                _insert_facts([f for fs in new_facts.values() for f in fs])
                Product.objects.filter(pk__in=[p.pk for p in ok]).update(extracted_hash=F("content_hash"),
                                                                          ingest_error="")
                if job_id is not None and ok:
                    # counted in the same transaction as the facts: a redelivered chunk never counts twice
                    IngestionJob.objects.filter(pk=job_id).update(done=F("done") + len(ok))
                # Inside the transaction: if the graph write fails, the database rolls back too
                # and the chunk is retried as a whole.
                store.replace_product_facts(previously, nodes, rels)
            _remember_written(written, nodes, rels)
            break
        except RETRYABLE_GRAPH_ERRORS as exc:
            if attempt == GRAPH_ATTEMPTS - 1:
                raise
            delay = 2 ** attempt
            log.warning("ingestion chunk failed (%s); retrying in %ss", exc, delay)
            time.sleep(delay)
    for item in failed:
        Product.objects.filter(external_id=item["product"]).update(ingest_error=item["error"][:2000])
    return {"ok": [p.pk for p in ok], "failed": failed}


# --- jobs ----------------------------------------------------------------------------------------
# A job is split into chunk tasks: each is small, idempotent (content hashes) and acknowledged
# late, so a worker killed mid-job loses only its in-flight chunk, which the broker redelivers.


def start_ingestion(product_ids: Sequence[int] | None = None, force: bool = False) -> IngestionJob:
    """Create an ingestion job and hand it to the workers (or run it now without a broker)."""
    if force:
        qs = Product.objects.all() if product_ids is None else Product.objects.filter(pk__in=product_ids)
        qs.update(extracted_hash="")
    job = IngestionJob.objects.create(product_ids=list(product_ids) if product_ids is not None else [],
                                      kind="ingest" if product_ids is not None else "ingest-all")
    transaction.on_commit(lambda: dispatch_job(job.pk))
    return job


def dispatch_job(job_id: int) -> bool:
    """Queue the job's planning task; with the broker down the job stays pending for the sweep."""
    from .tasks import run_ingestion

    try:
        run_ingestion.apply_async((job_id,), retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2})
        return True
    except Exception as exc:  # broker unreachable: dispatch_pending_jobs retries later
        log.warning("could not queue ingestion job %s: %s", job_id, exc)
        IngestionJob.objects.filter(pk=job_id).update(message=f"queued later: broker unavailable ({exc})"[:2000])
        return False


def dispatch_pending_jobs(older_than_seconds: float = 30.0) -> int:
    """Periodic sweep: re-queue jobs whose dispatch failed (state still pending)."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    ids = list(IngestionJob.objects.filter(state=IngestionJob.State.PENDING, created_at__lt=cutoff)
               .values_list("id", flat=True))
    return sum(dispatch_job(pk) for pk in ids)


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
    return [p for p in Product.objects.filter(pk__in=product_ids).exclude(extracted_hash=F("content_hash"))
            .order_by("id") if p.external_id not in failed_before]


def process_chunk(job_id: int, product_ids: Sequence[int], pipe=None, prepared=None, written=None) -> dict:
    """Ingest the chunk's products that still need it and count them into the job.

    ``prepared`` = (products, extraction results) computed ahead by the inline runner."""
    chunk, results = prepared if prepared is not None else (_chunk_products(job_id, product_ids), None)
    try:
        out = ingest_products(chunk, pipe=pipe, job_id=job_id, results=results, written=written) \
            if chunk else {"ok": [], "failed": []}
    except RETRYABLE_GRAPH_ERRORS:
        raise  # the task retries the chunk with backoff
    except Exception as exc:
        # Something in one product broke the chunk's transaction: isolate it, keep the others.
        log.warning("chunk of job %s failed (%s); ingesting its products one by one", job_id, exc)
        out = {"ok": [], "failed": []}
        for product in chunk:
            try:
                part = ingest_products([product], pipe=pipe, job_id=job_id)
            except RETRYABLE_GRAPH_ERRORS:
                raise
            except Exception as one:
                part = {"ok": [], "failed": [{"product": product.external_id, "error": f"{type(one).__name__}: {one}"[:500]}]}
            out["ok"] += part["ok"]
            out["failed"] += part["failed"]
    if out["failed"]:
        with transaction.atomic():
            job = IngestionJob.objects.select_for_update().get(pk=job_id)
            new = [f for f in out["failed"] if f["product"] not in {e["product"] for e in job.errors}]
            job.failed += len(new)
            job.errors = (job.errors + new)[:MAX_ERRORS_KEPT]
            job.save(update_fields=["failed", "errors"])
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


INLINE_CHUNK_SIZE = 256
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


def run_ingestion_job(job_id: int, chunk_size: int | None = None, progress=None, dispatch: bool = False) -> IngestionJob:
    """Run (or resume) a job: inline chunk by chunk, or as chunk tasks for the workers."""
    job, chunks = plan_job(job_id, chunk_size or (CHUNK_SIZE if dispatch else INLINE_CHUNK_SIZE))
    if dispatch:
        from .tasks import ingest_chunk

        for chunk in chunks:
            ingest_chunk.delay(job_id, chunk)
        return finish_if_complete(job_id)
    pipe = get_pipeline() if chunks else None
    written: set = set()
    executor, extract = _extraction_executor(pipe, len(chunks))

    def ahead_of(n):
        if n >= len(chunks):
            return None
        products = _chunk_products(job_id, chunks[n])
        return products, extract(products)

    try:
        with executor:
            upcoming = ahead_of(0)
            for n, chunk in enumerate(chunks):
                products, extraction = upcoming
                results = extraction.result()
                upcoming = ahead_of(n + 1)
                process_chunk(job_id, chunk, pipe=pipe, prepared=(products, results), written=written)
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
