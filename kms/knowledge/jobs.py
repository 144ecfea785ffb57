"""Ingestion jobs: creating, planning and counting them, and the chunk step the workers run."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

import kms.lookups  # noqa: F401  (registers __any)
from kms.catalogue.models import Product

from .models import IngestionJob
from .rows import extract_products
from .writer import RETRYABLE_GRAPH_ERRORS, ChunkWriter, PreparedChunk, ingest_products

log = logging.getLogger(__name__)

CHUNK_SIZE = 64
MAX_ERRORS_KEPT = 1000


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



def job_progress(job: IngestionJob) -> dict:
    return {"id": job.pk, "kind": job.kind, "state": job.state, "total": job.total, "done": job.done,
            "skipped": job.skipped, "failed": job.failed, "rate_per_s": round(job.rate, 2),
            "errors": job.errors[:50], "message": job.message,
            "started_at": job.started_at, "finished_at": job.finished_at}
