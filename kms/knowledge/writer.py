"""The chunk writer: one chunk's facts into the database and its rows into the graph store, in
one database transaction, with retries on the graph store's transient errors."""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, Max

from kgschema import SUBCATEGORY_OF
import kms.lookups  # noqa: F401  (registers __any)
from kms.catalogue.models import Product
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

from .models import CURATED, EXTRACTED, Entity, Fact, IngestionJob, Status
from .rows import MAX_UID, EntityRef, FactRow, _ensure_entities, _graph_rows, _insert_facts, extract_products

log = logging.getLogger(__name__)

RETRYABLE_GRAPH_ERRORS = (TransientError, ServiceUnavailable, SessionExpired)
GRAPH_ATTEMPTS = 4


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
                from kms.recs.serving_cache import serving_cache

                serving_cache.changed("catalogue")  # new facts: web processes refresh their new items
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
