"""Ingestion throughput: spaCy extraction alone vs the full ingestion path (one command).

    .venv/bin/python bench/ingest_throughput.py [--n N] [--cold-graph] [--chunk-size N] [--profile]

(a) ``nlp.extract`` over the products' texts with the ingestion's own pipeline (one process,
``nlp.pipe`` batches), after one untimed pass so both sides run warm; (b) the real ingestion
job (inline, as ``manage.py ingest`` runs it) (extract -> facts in PostgreSQL -> graph store) into an ArcadeDB Bolt server started here,
on a fresh PostgreSQL database ``kms_tput``. Same products (all of Amazon-Scientific by
default) and the same pipeline object (built from the database's knowledge base, no trained
artefact) in both. Before the trials the server's JIT is warmed by running the same ingestion
(scratch PostgreSQL database, graph wiped afterwards) until the JIT compiler goes quiet, as on a
server that has been up for a while; ``--cold-graph`` skips that and runs one trial on a fresh
JVM. ``--trials`` (default 3) interleaved (a)/(b) pairs, each (b) from an empty graph and fact
table and a quiet graph server; the medians and their ratio are reported. After each (b) the graph is checked against the
database: every product node and every fact's relationship must be there. Writes
bench/results/ingest_throughput.json (``--cold-graph``: ingest_throughput_cold.json).
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
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


def _stat_cpu(stat: Path) -> float:
    """User + system CPU seconds in a /proc stat file (a process's or a thread's); 0 once it is gone."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids) -> float:
    """CPU seconds of these processes so far (Linux /proc)."""
    return sum(_stat_cpu(Path(f"/proc/{pid}/stat")) for pid in pids)


def _postgres_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _jvm_thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of JVM ``pid``'s threads, by kind: JIT compiler, GC, Bolt sessions, other."""
    out = {"jit": 0.0, "gc": 0.0, "bolt": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text()
        except OSError:
            continue
        kind = ("jit" if "CompilerThre" in name else "gc" if name.startswith(("GC ", "G1 ")) else
                "bolt" if name.startswith("BOLT") else "other")
        out[kind] += _stat_cpu(task / "stat")
    return out


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


def warm_up_graph(server_pid: int, uri: str, password: str, n: int, tmp: Path, max_rounds: int = 12,
                  settled: float = 0.03) -> dict:
    """Bring the graph server to the state of one that has been up a while: run the very same
    ingestion (into the graph database and a scratch PostgreSQL database), in a child process,
    wiping both after each round, until the server's JIT compiler used under ``settled`` of two
    rounds' time in a row (a fresh JVM compiles for tens of seconds, taking a core from extraction)."""
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
    from kms.knowledge import services
    from kms.knowledge.models import IngestionJob

    _load_products(n)
    started, rounds, share = time.perf_counter(), [], 1.0
    for _ in range(max_rounds):
        before, t0 = _jvm_thread_cpu(server_pid)["jit"], time.perf_counter()
        job = services.run_ingestion_job(IngestionJob.objects.create(kind="ingest-all").pk)
        seconds = time.perf_counter() - t0
        share = (_jvm_thread_cpu(server_pid)["jit"] - before) / seconds
        rounds.append({"products_per_s": round(job.done / seconds, 1), "jit_compiler_share": round(share, 3)})
        print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
        _reset_ingestion()
        if len(rounds) >= 2 and max(r["jit_compiler_share"] for r in rounds[-2:]) < settled:
            break
    print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "rounds": rounds}))


def _reset_ingestion() -> None:
    """Back to 'products imported, nothing extracted': empty graph, no facts or entities."""
    from kms.catalogue.models import Product
    from kms.graphstore import get_graph_store
    from kms.knowledge.models import Entity, Fact

    get_graph_store().clear()
    Fact.objects.all().delete()
    Entity.objects.all().delete()
    Product.objects.update(extracted_hash="")


def _wait_until_quiet(pid: int, limit: float = 30.0) -> float:
    """Wait until process ``pid`` uses under 5% of a core (the graph server finishing what a wipe
    left it to do in the background); returns the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        before = _cpu_seconds([pid])
        time.sleep(0.5)
        if _cpu_seconds([pid]) - before < 0.025:
            break
    return round(time.perf_counter() - started, 1)


def _ingestion_trial(server_pid: int, chunk_size: int | None, profile: bool) -> dict:
    """One timed ingestion job over every product, with the CPU each process used and a check
    that the graph mirrors the database (nothing lost on the way)."""
    from kms.graphstore import get_graph_store
    from kms.knowledge import services
    from kms.knowledge.models import Fact, IngestionJob

    job = IngestionJob.objects.create(kind="ingest-all")
    jvm_before = _jvm_thread_cpu(server_pid)
    cpu_before = (time.process_time(), os.times().children_user + os.times().children_system,
                  _cpu_seconds([server_pid]), _cpu_seconds(_postgres_pids()))
    profiler = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    services.run_ingestion_job(job.pk, chunk_size=chunk_size)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - t0
    # the forked extraction process is a reaped child by now, so it counts in os.times()
    cpu_after = (time.process_time(), os.times().children_user + os.times().children_system,
                 _cpu_seconds([server_pid]), _cpu_seconds(_postgres_pids()))
    jvm_after = _jvm_thread_cpu(server_pid)
    if profiler:
        profiler.dump_stats(str(ROOT / "bench" / "work" / "ingest.prof"))  # for pstats / snakeviz
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    job.refresh_from_db()
    store = get_graph_store()
    graph_products = store.read("MATCH (p:Product) RETURN count(p) AS c")[0]["c"]
    graph_facts = store.read("MATCH (p:Product)-[e]->() WHERE type(e) <> 'SUBCATEGORY_OF' "
                             "RETURN count(e) AS c")[0]["c"]
    # candidates (under their relation's threshold) stay out of the graph store by design
    db_facts = Fact.objects.exclude(status="candidate").values("product", "relation", "entity").distinct().count()
    assert graph_products == job.done and graph_facts == db_facts, (graph_products, job.done, graph_facts, db_facts)
    return {
        "products_per_s": round(job.done / seconds, 1), "seconds": round(seconds, 2),
        "done": job.done, "failed": job.failed, "graph_relationships_checked": graph_facts,
        "cpu_seconds": dict(zip(("writer_process", "extraction_process", "graph_server", "postgres"),
                                (round(b - a, 2) for a, b in zip(cpu_before, cpu_after)))),
        "graph_server_cpu_by_thread": {k: round(jvm_after[k] - jvm_before[k], 2) for k in jvm_before},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=0, help="products (default: all 4,344)")
    parser.add_argument("--trials", type=int, default=3, help="timed (spaCy, ingestion) pairs; medians reported")
    parser.add_argument("--profile", action="store_true", help="cProfile the (first) ingestion job")
    parser.add_argument("--cold-graph", action="store_true",
                        help="no JIT warm-up of the graph server (one trial: later ones would be warm)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="products per inline chunk (default: the runner's own, INLINE_CHUNK_SIZE)")
    args = parser.parse_args()
    trials = 1 if args.cold_graph else max(1, args.trials)
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
        from kms.knowledge import extractor, services

        _load_products(args.n)
        products = list(Product.objects.order_by("id"))
        n = len(products)
        pipe = services.get_pipeline()  # cached: run_ingestion_job reuses this very object
        texts = [services.product_text(p) for p in products]
        # (a) is the spaCy pipeline and rule relations without the fact acceptor (nlp.acceptance), so its
        # cost counts against ingestion
        for _ in nlp.extract(pipe, texts, accept=False):  # untimed: the vocabulary and caches fill on a first pass
            pass

        spacy, ingest = [], []
        for trial in range(trials):  # interleaved, so drift on a shared machine hits both sides alike
            t0 = time.perf_counter()
            n_facts = sum(len(r.facts) for r in nlp.extract(pipe, texts, accept=False))
            spacy.append(round(n / (time.perf_counter() - t0), 1))
            if trial:
                _reset_ingestion()
            quiet = _wait_until_quiet(info.pid)
            ingest.append(_ingestion_trial(info.pid, args.chunk_size, args.profile and not trial) | {"waited_quiet_s": quiet})
            assert extractor._pipeline[1] is pipe, "ingestion rebuilt the pipeline"
            print(f"trial {trial + 1}: spaCy {spacy[-1]} products/s, ingestion {ingest[-1]['products_per_s']} "
                  f"products/s", flush=True)

        spacy_median = statistics.median(spacy)
        ingest_median = statistics.median(t["products_per_s"] for t in ingest)
        results = {
            "n_products": n,
            "spacy_products_per_s": spacy_median,
            "ingest_products_per_s": ingest_median,
            "ratio": round(ingest_median / spacy_median, 3),
            "trials": trials,
            "spacy_trials_products_per_s": spacy,
            "ingest_trials": ingest,
            "ratio_per_trial": [round(t["products_per_s"] / s, 3) for s, t in zip(spacy, ingest)],
            "facts_extracted": n_facts,
            "graph_store": "ArcadeDB Bolt (local server started by the benchmark)",
            "graph_jit_warmed": not args.cold_graph,
            "graph_warmup": warm,
            "chunk_size": args.chunk_size or services.INLINE_CHUNK_SIZE,
            "cpu_count": os.cpu_count(),
            "load_average_before": round(load_before, 2),
        }
        name = "ingest_throughput_cold.json" if args.cold_graph else "ingest_throughput.json"
        out = ROOT / "bench" / "results" / name
        out.write_text(json.dumps(results, indent=2) + "\n")
        for k, v in results.items():
            if k != "ingest_trials":
                print(f"{k:28s} {v}")
        print("cpu seconds per trial:", [t["cpu_seconds"] for t in ingest])
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()
        psql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
