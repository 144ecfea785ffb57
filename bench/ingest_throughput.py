"""Ingestion throughput: spaCy extraction alone vs the full ingestion path (one command).

    .venv/bin/python bench/ingest_throughput.py [--n N] [--cold-graph] [--chunk-size N] [--profile]

(a) ``nlp.extract`` over the products' texts with the ingestion's own pipeline (one process,
``nlp.pipe`` batches), after one untimed pass so both sides run warm; (b) the real ingestion
job (extract -> facts in PostgreSQL -> graph store) into an ArcadeDB Bolt server started here,
on a fresh PostgreSQL database ``kms_tput``. Same products (all of Amazon-Scientific by
default) and the same pipeline object (built from the database's knowledge base, no trained
artefact) in both. Before (b) the server's JIT is warmed with the same write statements on
synthetic products in a scratch database (as a server that has been up for a while);
``--cold-graph`` skips that. After (b) the graph is checked against the database: every
product node and every fact's relationship must be there. Writes bench/results/ingest_throughput.json
(``--cold-graph``: ingest_throughput_cold.json).
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


def _cpu_seconds(pids) -> float:
    """User + system CPU seconds of these processes so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _postgres_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _jvm_thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of JVM ``pid``'s threads, by kind: JIT compiler, GC, Bolt sessions, other."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"jit": 0.0, "gc": 0.0, "bolt": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = ("jit" if "CompilerThre" in name else "gc" if name.startswith(("GC ", "G1 ")) else
                "bolt" if name.startswith("BOLT") else "other")
        out[kind] += (int(fields[11]) + int(fields[12])) / tick
    return out


def _compiler_cpu_seconds(pid: int) -> float:
    return _jvm_thread_cpu(pid)["jit"]


def _setup_django(db_name: str, graph_database: str, uri: str, password: str, data_dir: Path) -> None:
    from graph.server import USER

    os.environ.update({
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
        "NEO4J_URI": uri, "NEO4J_USER": USER, "NEO4J_PASSWORD": password,
        "NEO4J_DATABASE": graph_database, "KMS_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "kms.settings",
    })
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _load_products(n: int) -> None:
    from kms.catalogue.services import scientific_products, upsert_products

    items = scientific_products(DATASET)
    upsert_products(items[:n] if n else items)


def warm_up_graph(server_pid: int, uri: str, password: str, n: int, tmp: Path, max_rounds: int = 8,
                  settled: float = 0.05) -> dict:
    """Bring the graph server to the state of one that has been up a while: run the very same
    ingestion (into the graph database and a scratch PostgreSQL database), in a child process,
    wiping both after each round, until the server's JIT compiler used under ``settled`` of a round's
    time (a fresh JVM compiles for tens of seconds, taking a core from extraction)."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.ingest_throughput import _warm_up_rounds; "
            f"_warm_up_rounds({server_pid}, {uri!r}, {password!r}, {n}, {str(tmp)!r}, {max_rounds}, {settled})")
    psql(f"DROP DATABASE IF EXISTS {DB_NAME}_warm WITH (FORCE)")
    psql(f"CREATE DATABASE {DB_NAME}_warm")
    try:
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    finally:
        psql(f"DROP DATABASE IF EXISTS {DB_NAME}_warm WITH (FORCE)")
    return json.loads(out.strip().splitlines()[-1])


def _warm_up_rounds(server_pid, uri, password, n, tmp, max_rounds, settled) -> None:
    # the measured run's own graph database, wiped afterwards: JIT-compiled code the server
    # specialised to one database instance would be recompiled for another
    _setup_django(f"{DB_NAME}_warm", "kms", uri, password, Path(tmp) / "warm-data")
    from kms.catalogue.models import Product
    from kms.graphstore import get_graph_store
    from kms.knowledge import services
    from kms.knowledge.models import Entity, Fact, IngestionJob

    _load_products(n)
    started, rounds, share = time.perf_counter(), [], 1.0
    for _ in range(max_rounds):
        before, t0 = _compiler_cpu_seconds(server_pid), time.perf_counter()
        job = services.run_ingestion_job(IngestionJob.objects.create(kind="ingest-all").pk)
        seconds = time.perf_counter() - t0
        share = (_compiler_cpu_seconds(server_pid) - before) / seconds
        rounds.append({"products_per_s": round(job.done / seconds, 1), "jit_compiler_share": round(share, 3)})
        print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
        get_graph_store().clear()
        if share < settled:
            break
        Fact.objects.all().delete()
        Entity.objects.all().delete()
        Product.objects.update(extracted_hash="")
    print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "rounds": rounds}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=0, help="products (default: all 4,344)")
    parser.add_argument("--profile", action="store_true", help="cProfile the ingestion job")
    parser.add_argument("--cold-graph", action="store_true", help="no JIT warm-up of the graph server")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="products per inline chunk (default: the runner's own, INLINE_CHUNK_SIZE)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    from graph.server import ArcadeDBProcess

    tmp = Path(tempfile.mkdtemp(prefix="kms-tput-"))
    server = ArcadeDBProcess(tmp / "arcadedb")
    info = server.start()
    psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    psql(f"CREATE DATABASE {DB_NAME}")
    try:
        warm = None if args.cold_graph else warm_up_graph(info.pid, info.uri, info.password, args.n, tmp)
        _setup_django(DB_NAME, "kms", info.uri, info.password, tmp / "data")
        import nlp
        from kms.catalogue.models import Product
        from kms.graphstore import get_graph_store
        from kms.knowledge import services
        from kms.knowledge.models import Fact, IngestionJob

        _load_products(args.n)
        products = list(Product.objects.order_by("id"))
        n = len(products)
        pipe = services.get_pipeline()  # cached: run_ingestion_job reuses this very object

        texts = [services.product_text(p) for p in products]
        for _ in nlp.extract(pipe, texts):  # untimed: the vocabulary and caches fill on a first pass
            pass
        t0 = time.perf_counter()
        n_facts = sum(len(r.facts) for r in nlp.extract(pipe, texts))
        spacy_s = time.perf_counter() - t0

        job = IngestionJob.objects.create(kind="ingest-all")
        jvm_before = _jvm_thread_cpu(info.pid)
        cpu_before = (time.process_time(), os.times().children_user + os.times().children_system,
                      _cpu_seconds([info.pid]), _cpu_seconds(_postgres_pids()))
        profiler = cProfile.Profile() if args.profile else None
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        services.run_ingestion_job(job.pk, chunk_size=args.chunk_size)
        if profiler:
            profiler.disable()
        ingest_s = time.perf_counter() - t0
        # where the CPU went (the forked extraction process is a reaped child by now)
        cpu_after = (time.process_time(), os.times().children_user + os.times().children_system,
                     _cpu_seconds([info.pid]), _cpu_seconds(_postgres_pids()))
        jvm_after = _jvm_thread_cpu(info.pid)
        cpu = dict(zip(("writer_process", "extraction_process", "graph_server", "postgres"),
                       (round(b - a, 2) for a, b in zip(cpu_before, cpu_after))))
        assert services._pipeline[1] is pipe, "ingestion rebuilt the pipeline"
        job.refresh_from_db()
        if profiler:
            profiler.dump_stats(str(ROOT / "bench" / "work" / "ingest.prof"))  # for pstats / snakeviz
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)

        # nothing may go missing on the way: the graph mirrors the database
        store = get_graph_store()
        graph_products = store.read("MATCH (p:Product) RETURN count(p) AS c")[0]["c"]
        graph_facts = store.read("MATCH (p:Product)-[e]->() WHERE type(e) <> 'SUBCATEGORY_OF' "
                                 "RETURN count(e) AS c")[0]["c"]
        db_facts = Fact.objects.values("product", "relation", "entity").distinct().count()
        assert graph_products == job.done and graph_facts == db_facts, (graph_products, job.done, graph_facts, db_facts)

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
            "graph_relationships_checked": graph_facts,
            "graph_store": f"ArcadeDB Bolt ({info.uri})",
            "graph_jit_warmed": not args.cold_graph,
            "graph_warmup": warm,
            "chunk_size": args.chunk_size or services.INLINE_CHUNK_SIZE,
            "cpu_seconds_during_ingest": cpu,
            "graph_server_cpu_by_thread": {k: round(jvm_after[k] - jvm_before[k], 2) for k in jvm_before},
            "cpu_count": os.cpu_count(),
            "load_average_before": round(load_before, 2),
        }
        name = "ingest_throughput_cold.json" if args.cold_graph else "ingest_throughput.json"
        out = ROOT / "bench" / "results" / name
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
