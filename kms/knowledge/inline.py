"""The inline runner (``manage.py ingest``): a job chunk by chunk in this process, extraction
overlapping the writes."""
from __future__ import annotations

import logging
import threading

from django.utils import timezone

import nlp

from .extractor import get_pipeline, product_text
from .jobs import _chunk_products, _count_failures, _write_isolated, finish_if_complete, plan_job
from .models import IngestionJob
from .rows import extract_products
from .writer import ChunkWriter

log = logging.getLogger(__name__)

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
