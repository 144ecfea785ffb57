"""Ingestion throughput: spaCy extraction alone vs the full ingestion path (one command).

    .venv/bin/python bench/ingest_throughput.py [--n 2000]

(a) ``nlp.extract`` over the products' texts with the ingestion's own pipeline; (b) the real
ingestion job (extract -> facts in PostgreSQL -> graph store) into an ArcadeDB Bolt server
started here, on a fresh PostgreSQL database ``kms_tput``. Same N products and the same
pipeline object (built from the database's knowledge base, no trained artefact) in both.
Writes bench/results/ingest_throughput.json.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATASET = ROOT.parent / "shared" / "datasets" / "amazon-scientific"
DB_NAME = "kms_tput"


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
                   check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="cProfile the ingestion job")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="products per inline chunk (default: the runner's own, INLINE_CHUNK_SIZE)")
    args = parser.parse_args()

    from graph.server import ArcadeDBProcess

    tmp = Path(tempfile.mkdtemp(prefix="kms-tput-"))
    server = ArcadeDBProcess(tmp / "arcadedb")
    info = server.start()
    psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    psql(f"CREATE DATABASE {DB_NAME}")
    try:
        os.environ.update({
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
            "NEO4J_URI": info.uri, "NEO4J_USER": "root", "NEO4J_PASSWORD": info.password,
            "NEO4J_DATABASE": "kms", "KMS_DATA_DIR": str(tmp / "data"),
            "DJANGO_SETTINGS_MODULE": "kms.settings",
        })
        os.environ.pop("CELERY_BROKER_URL", None)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        import nlp
        from kms.catalogue.models import Product
        from kms.catalogue.services import scientific_products, upsert_products
        from kms.knowledge import services
        from kms.knowledge.models import IngestionJob

        upsert_products(scientific_products(DATASET)[: args.n])
        products = list(Product.objects.order_by("id"))
        n = len(products)
        pipe = services.get_pipeline()  # cached: run_ingestion_job reuses this very object

        texts = [services.product_text(p) for p in products]
        t0 = time.perf_counter()
        n_facts = sum(len(r.facts) for r in nlp.extract(pipe, texts))
        spacy_s = time.perf_counter() - t0

        job = IngestionJob.objects.create(kind="ingest-all")
        profiler = cProfile.Profile() if args.profile else None
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        services.run_ingestion_job(job.pk, chunk_size=args.chunk_size)
        if profiler:
            profiler.disable()
        ingest_s = time.perf_counter() - t0
        assert services._pipeline[1] is pipe, "ingestion rebuilt the pipeline"
        job.refresh_from_db()
        if profiler:
            profiler.dump_stats(str(ROOT / "bench" / "work" / "ingest.prof"))  # for pstats / snakeviz
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)

        results = {
            "n_products": n,
            "spacy_products_per_s": round(n / spacy_s, 1),
            "ingest_products_per_s": round(job.done / ingest_s, 1),
            "ratio": round((job.done / ingest_s) / (n / spacy_s), 3),
            "spacy_seconds": round(spacy_s, 2),
            "ingest_seconds": round(ingest_s, 2),
            "facts_extracted": n_facts,
            "ingest_done": job.done,
            "ingest_failed": job.failed,
            "graph_store": f"ArcadeDB Bolt ({info.uri})",
            "chunk_size": args.chunk_size or services.INLINE_CHUNK_SIZE,
        }
        out = ROOT / "bench" / "results" / "ingest_throughput.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        for k, v in results.items():
            print(f"{k:28s} {v}")
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()
        psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
