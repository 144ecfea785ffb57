"""Knowledge ingestion: products → spaCy extraction → facts with provenance → graph store.

The interface the rest of kms calls; the work is in the modules along its seams:

- ``extractor``: the knowledge base and the spaCy pipeline built from it (rebuilt when it changes)
- ``rows``: extraction results as fact rows / entity references, and the graph rows mirroring them
- ``writer``: ``ChunkWriter``, one chunk into the database and the graph store, with retries
- ``jobs``: creating, planning and counting jobs; ``process_chunk``, the step a worker runs
- ``inline``: ``run_ingestion_job``, the runner of ``manage.py ingest``
- ``reads``: what the API shows (recent and single jobs, entities by name)

One code path: the management command, the Celery tasks and the API all run a job made by
``create_ingestion_job``, inline (``run_ingestion_job``) or as chunk tasks (``plan_job`` +
``process_chunk``); queueing it is ``kms.knowledge.tasks``'s (``start_ingestion``).
"""
from __future__ import annotations

from .extractor import (
    build_knowledge_base, get_pipeline, product_text, knowledge_version, nlp_dir, current_ner_dir,
    attribute_model_dir, train_nlp_models, curated_examples, acceptor_from_curation
)
from .rows import (
    MAX_UID, EntityRef, FactRow, extract_products, _graph_rows, _insert_facts, _ensure_entities
)
from .writer import (
    RETRYABLE_GRAPH_ERRORS, GRAPH_ATTEMPTS, PreparedChunk, ChunkWriter, ingest_products
)
from .jobs import (
    CHUNK_SIZE, MAX_ERRORS_KEPT, STALE, mark_stale, create_ingestion_job, pending_job_ids,
    note_dispatch_failed, plan_job, process_chunk, fail_chunk, finish_if_complete, job_progress
)
from .inline import (
    INLINE_CHUNK_SIZE, EXTRACT_AHEAD, run_ingestion_job, _extraction_executor
)
from .reads import recent_jobs, find_job, entities_named, entity_dict

__all__ = [
    "build_knowledge_base", "get_pipeline", "product_text", "knowledge_version", "nlp_dir",
    "current_ner_dir", "attribute_model_dir", "train_nlp_models", "curated_examples",
    "acceptor_from_curation", "MAX_UID", "EntityRef", "FactRow", "extract_products", "_graph_rows",
    "_insert_facts", "_ensure_entities", "RETRYABLE_GRAPH_ERRORS", "GRAPH_ATTEMPTS", "PreparedChunk",
    "ChunkWriter", "ingest_products", "CHUNK_SIZE", "MAX_ERRORS_KEPT", "STALE", "mark_stale",
    "create_ingestion_job", "pending_job_ids", "note_dispatch_failed", "plan_job", "process_chunk",
    "fail_chunk", "finish_if_complete", "job_progress", "INLINE_CHUNK_SIZE", "EXTRACT_AHEAD",
    "run_ingestion_job", "_extraction_executor", "recent_jobs", "find_job", "entities_named", "entity_dict",
]
