"""Load test of the public REST API under gunicorn (one command; installs nothing, needs no wrk).

    .venv/bin/python bench/api_load.py [--users 8317] [--rates 100,200,400] [--duration 10]
        [--closed-duration 10] [--connections 32] [--workers 2] [--threads 4] [--rebuild]

Prepares (once; reused while an active model version exists) a PostgreSQL database
``kms_bench`` (or $BENCH_DATABASE_URL) and a data dir ``bench/work/api-data`` (or
$BENCH_DATA_DIR: local ArcadeDB, models): imports Amazon-Scientific (all products, the first
--users users' events), ingests the catalogue through the NLP pipeline into the graph, trains a
model version (TRAIN_PARAMS). Then starts gunicorn (the repository's gunicorn.conf.py: queue-stamping
gthread workers) on a free 127.0.0.1 port with the serving cache on Redis db 4 (or
$BENCH_REDIS_URL), warms every worker, and drives each endpoint with ``bench/http_load.py``:

* closed loop: --connections keep-alive clients for --closed-duration seconds per endpoint: req/s,
  CPU ms per request of each process group (gunicorn, postgres, redis, load generator, other),
  p50, p99; the ratio recommendations / trivial (``/ping``: auth, throttle, JSON) in the same run;
* open loop: fixed offered rates (--rates req/s, a schedule fixed in advance, latency from each
  request's due time, so queueing delay counts) for --duration seconds each: p50, p99, errors.

Then reads each gunicorn worker's memory (RSS, PSS, USS from /proc/PID/smaps_rollup). User ids,
product ids and queries rotate. Writes bench/results/api_load.json: {"closed_loop": {endpoint:
{"rps", "p50_ms", "p99_ms"}}, "ratio_recommendations_to_trivial", "open_loop": {endpoint: {rate:
{"p50_ms", "p99_ms", "errors"}}}, "_meta": {...}}.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
QUERIES = ["Stanley staples 1/2 inch", "nitrile gloves", "safety glasses", "stainless steel screws 1/4 inch",
           "3M tape", "digital caliper", "rivets", "hand file", "TRA708T", "lab beaker 250 ml",
           "cable ties", "wet dry vacuum", "respirator mask", "drill bits", "pipette tips", "zip lock bags"]
TRAIN_PARAMS = {"preset": "fast", "seq_epochs": 20, "dim": 32, "threads": 1, "seed": 0, "eval_every": 5}


def sh(args, env, **kw):
    print("$", " ".join(map(str, args)), flush=True)
    return subprocess.run(args, cwd=ROOT, env=env, check=True, **kw)


def django_eval(code: str, env) -> str:
    out = subprocess.run([PY, "-c", "import django; django.setup()\n" + code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def prepare(env, users: int, rebuild: bool) -> dict:
    sh([PY, "manage.py", "migrate", "-v", "0"], env)
    ready = django_eval("from kms.recs.services import active_version; print(bool(active_version()))", env)
    if ready == "True" and not rebuild:
        print("reusing the prepared database (pass --rebuild to redo import, ingestion and training)")
        return {"reused": True}
    timings, problems = {}, []
    for step, args in [
        ("import", [PY, "manage.py", "import_catalogue", "--scientific", "--limit-users", str(users)]),
        ("ingest", [PY, "manage.py", "ingest"]),
        ("push_events", [PY, "-c", "import django; django.setup()\nfrom kms.events.services import "
                                   "push_interactions_to_graph; print(push_interactions_to_graph())"]),
        ("train", [PY, "manage.py", "train", "--params", json.dumps(TRAIN_PARAMS)]),
    ]:
        started = time.perf_counter()
        try:
            sh(args, env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        except subprocess.CalledProcessError as exc:
            if step != "ingest":
                print(exc.stderr[-3000:])
                raise
            # A failed chunk leaves the rest of the catalogue without facts; serving still works.
            problems.append(f"ingest failed: {exc.stderr.strip().splitlines()[-1][:300]}")
            print("WARNING:", problems[-1])
        timings[step] = round(time.perf_counter() - started, 1)
    facts = django_eval("from kms.knowledge.models import Fact; print(Fact.objects.count())", env)
    return {"reused": False, "seconds": timings, "facts": int(facts), "problems": problems}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=8317)
    parser.add_argument("--rates", default="100,200,400", help="open-loop offered rates, req/s")
    parser.add_argument("--duration", type=float, default=10, help="seconds per open-loop rate and endpoint")
    parser.add_argument("--closed-duration", type=float, default=10, help="seconds per closed-loop endpoint")
    parser.add_argument("--closed-rounds", type=int, default=5, help="interleaved slices of the closed loop")
    parser.add_argument("--connections", type=int, default=32, help="closed-loop clients")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "api_load.json"))
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    with bench_environment(args.users, args.rebuild) as (env, data_dir, prep):
        run(args, env, data_dir, prep)


@contextlib.contextmanager
def bench_environment(users: int, rebuild: bool):
    """(env, data dir, preparation) of the API benchmarks: PostgreSQL ``kms_bench`` (or
    $BENCH_DATABASE_URL) and bench/work/api-data (or $BENCH_DATA_DIR), prepared once and reused;
    the ArcadeDB server is stopped afterwards if this run started it."""
    db_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kms_bench")
    data_dir = Path(os.environ.get("BENCH_DATA_DIR", ROOT / "bench" / "work" / "api-data"))
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "NEO4J_URI")}
    env |= {"DATABASE_URL": db_url, "KMS_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "kms.settings",
            "PYTHONPATH": str(ROOT), "KMS_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"}
    ensure_database(db_url)
    graph_was_running = _graph_pid(data_dir) is not None
    try:
        yield env, data_dir, prepare(env, users, rebuild)
    finally:
        pid = _graph_pid(data_dir)
        if pid is not None and not graph_was_running:  # stop the ArcadeDB server this run started
            os.kill(pid, 15)


def wait_until_live(base: str, server: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Until gunicorn answers /health/live; fail if it exits or does not answer in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(base + "/health/live", timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"gunicorn did not start; see {log_path}")
            time.sleep(0.5)


def _graph_pid(data_dir: Path) -> int | None:
    info = data_dir / "arcadedb" / "server.json"
    try:
        pid = json.loads(info.read_text())["pid"]
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, KeyError):
        return None


ENDPOINTS = ("trivial", "recommendations", "similar", "popular", "search")


def sample_ids(env) -> dict:
    return json.loads(django_eval(
        "import json\nfrom kms.events.models import ShopUser\nfrom kms.catalogue.models import Product\n"
        "from kms.api.models import ApiKey\n"
        "users = list(ShopUser.objects.filter(interactions__isnull=False).distinct().order_by('?')"
        ".values_list('external_id', flat=True)[:500])\n"
        "products = list(Product.objects.filter(interactions__isnull=False).distinct().order_by('?')"
        ".values_list('external_id', flat=True)[:500])\n"
        "key, secret = ApiKey.issue('bench', 'read')\n"
        "print(json.dumps({'users': users + ['cold-%d' % i for i in range(25)], 'products': products, 'secret': secret,"
        " 'n_products': Product.objects.count(), 'n_users': ShopUser.objects.count()}))", env))


def endpoint_paths(sample: dict) -> dict[str, list[str]]:
    q = urllib.request.quote
    return {
        "trivial": ["/api/v1/ping"],
        "recommendations": [f"/api/v1/users/{q(u, safe='')}/recommendations?k=20" for u in sample["users"]],
        "similar": [f"/api/v1/products/{q(p, safe='')}/similar?k=20" for p in sample["products"]],
        "popular": ["/api/v1/popular?k=20"],
        "search": [f"/api/v1/search?k=20&q={q(text, safe='')}" for text in QUERIES],
    }


def start_gunicorn(args, env, data_dir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log = open(data_dir / "gunicorn.log", "w")
    server = subprocess.Popen(
        [PY, "-m", "gunicorn", "kms.wsgi", "-w", str(args.workers), "--threads", str(args.threads),
         "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_until_live(f"http://127.0.0.1:{port}", server, data_dir / "gunicorn.log", timeout=120)
    return server, port


def start_writer(env: dict, data_dir: Path) -> subprocess.Popen | None:
    """The impression queue's writer, as a deployment runs it (beat's write-impressions task there,
    the same step as ``manage.py write_impressions`` here), when the queue is on: the lists the web
    workers push are written to the database in the run, on the same cores, and its CPU is counted."""
    if env.get("KMS_RECORD_IMPRESSIONS", "1") == "0":
        return None
    queue = env.get("KMS_IMPRESSIONS_QUEUE_URL", env.get("KMS_SERVING_REDIS_URL", ""))
    if not queue:
        return None
    log = open(data_dir / "writer.log", "w")
    return subprocess.Popen([PY, "manage.py", "write_impressions"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def warm(port: int, paths: dict[str, list[str]], secret: str, per_endpoint: int = 60) -> None:
    """Every worker's caches warm: the model and search indexes load at worker start (post_worker_init),
    product rows, histories (Redis) and the popularity ranking on first use."""
    for values in paths.values():
        for path in values[:per_endpoint] * 2:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Api-Key {secret}"})
            urllib.request.urlopen(req, timeout=120).read()
    for path in paths["recommendations"]:  # every sampled user's history into the serving cache
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Api-Key {secret}"})
        urllib.request.urlopen(req, timeout=120).read()


def worker_memory(server: subprocess.Popen) -> list[dict]:
    """RSS / PSS / USS (MB) of each gunicorn worker: /proc/PID/smaps_rollup (USS = private clean + dirty)."""
    out = []
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    for pid in map(int, children):
        fields = {}
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
                name, value = line.split(":", 1)
                fields[name.strip()] = int(value.split()[0])  # kB
        except OSError:
            continue
        mb = lambda kb: round(kb / 1024, 1)  # noqa: E731
        out.append({"pid": pid, "rss_mb": mb(fields.get("Rss", 0)), "pss_mb": mb(fields.get("Pss", 0)),
                    "uss_mb": mb(fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)),
                    "shared_file_mb": mb(fields.get("Shared_Clean", 0))})
    return out


def process_cpu(pid: int | str) -> tuple[str, float] | None:
    """(command name, CPU seconds so far: user + system) of a process from /proc/PID/stat; None if gone."""
    try:
        head, rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
    except OSError:
        return None
    fields = rest.split()
    return head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_group(server: subprocess.Popen, writer: subprocess.Popen | None = None) -> dict[str, float]:
    """CPU seconds so far of every process on the machine, grouped: the gunicorn workers, the
    impression writer, PostgreSQL, Redis, this load generator, and everything else (``process_cpu``;
    processes that ended in between are not counted, so compare groups of long-lived processes)."""
    workers = {server.pid, *map(int, Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split())}
    groups = {"gunicorn": 0.0, "writer": 0.0, "postgres": 0.0, "redis": 0.0, "load_generator": 0.0, "other": 0.0}
    for entry in Path("/proc").glob("[0-9]*"):
        found = process_cpu(entry.name)
        if found is None:
            continue
        (comm, seconds), pid = found, int(entry.name)
        group = ("gunicorn" if pid in workers else "writer" if writer is not None and pid == writer.pid
                 else "load_generator" if pid == os.getpid()
                 else "postgres" if comm.startswith("postgres") else "redis" if comm.startswith("redis") else "other")
        groups[group] += seconds
    return groups


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def run(args, env, data_dir: Path, prep: dict) -> None:
    from http_load import merge, run_closed_loop, run_open_loop

    env = env | {"KMS_SERVING_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")}
    sample = sample_ids(env)
    paths = endpoint_paths(sample)
    names = [n for n in args.endpoints.split(",") if n]
    headers = {"Authorization": f"Api-Key {sample['secret']}"}
    rates = [int(r) for r in args.rates.split(",") if r]
    closed, open_, loads = {}, {}, {"before": uptime()}
    server, port = start_gunicorn(args, env, data_dir)
    writer = start_writer(env, data_dir)
    try:
        warm(port, paths, sample["secret"])
        memory = {"after_warm_up": worker_memory(server)}
        # Interleaved rounds: on a machine shared with other jobs the load drifts, and a ratio of
        # two figures taken a minute apart would measure the drift; each endpoint gets
        # --closed-duration seconds in total, in --closed-rounds slices taken in turn.
        parts: dict[str, list] = {name: [] for name in names}
        cpu: dict[str, dict[str, float]] = {name: {} for name in names}
        for _ in range(args.closed_rounds):
            for name in names:
                before = cpu_by_group(server, writer)
                parts[name].append(run_closed_loop("127.0.0.1", port, paths[name], args.connections,
                                                   args.closed_duration / args.closed_rounds, headers))
                for group, seconds in cpu_by_group(server, writer).items():
                    cpu[name][group] = cpu[name].get(group, 0.0) + seconds - before[group]
        for name in names:
            closed[name] = merge(parts[name]).summary()
            requests = max(1, sum(len(p.latencies_ms) for p in parts[name]))
            closed[name]["cpu_ms_per_request"] = {g: round(s * 1e3 / requests, 3) for g, s in cpu[name].items()}
            print(f"closed {name:16s} {closed[name]['rps']:>8} req/s  p50 {closed[name]['p50_ms']:>7} ms  "
                  f"p99 {closed[name]['p99_ms']:>7} ms  errors {closed[name]['errors']}  CPU ms/request "
                  + " ".join(f"{g} {v}" for g, v in closed[name]["cpu_ms_per_request"].items()), flush=True)
        loads["after_closed_loop"] = uptime()
        for name in names:
            open_[name] = {}
            for rate in rates:
                r = run_open_loop("127.0.0.1", port, paths[name], rate, args.duration, headers)
                open_[name][str(rate)] = {k: v for k, v in r.summary().items() if k != "rps"} | {"achieved_rps": r.summary()["rps"]}
                s = open_[name][str(rate)]
                print(f"open {name:16s} @{rate:>4}/s  p50 {s['p50_ms']:>7} ms  p99 {s['p99_ms']:>7} ms  "
                      f"errors {s['errors']}", flush=True)
        loads["after_open_loop"] = uptime()
        memory["after_load"] = worker_memory(server)
    finally:
        server.terminate()
        server.wait(30)
        if writer is not None:
            writer.terminate()
            writer.wait(60)
    ratio = (round(closed["recommendations"]["rps"] / closed["trivial"]["rps"], 3)
             if "recommendations" in closed and "trivial" in closed and closed["trivial"]["rps"] else None)
    bars = {}
    if ratio is not None:
        bars["closed_loop_recommendations_ge_0.7x_trivial"] = ratio >= 0.7
    rec200 = open_.get("recommendations", {}).get("200")
    if rec200:
        bars["recommendations_p99_le_20ms_0_errors_at_200"] = rec200["p99_ms"] <= 20 and rec200["errors"] == 0
    search100 = open_.get("search", {}).get("100")
    if search100:
        bars["search_p99_le_50ms_at_100"] = search100["p99_ms"] <= 50
    result = {
        "closed_loop": {n: {k: closed[n][k] for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")} for n in closed},
        "ratio_recommendations_to_trivial": ratio,
        "open_loop": {n: {rate: {k: v[k] for k in ("p50_ms", "p99_ms", "errors")} for rate, v in by_rate.items()}
                      for n, by_rate in open_.items()},
        "_meta": {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": git_commit(),
            "machine": f"{os.cpu_count()} CPUs, {platform.platform()}", "load_average": loads,
            "command": "bench/api_load.py " + " ".join(sys.argv[1:]),
            "gunicorn": f"{args.workers} workers x {args.threads} threads (gunicorn.conf.py worker class)",
            "closed_loop_connections": args.connections, "closed_duration_s": args.closed_duration,
            "closed_rounds": args.closed_rounds,
            "open_duration_s": args.duration, "products": sample["n_products"], "users": sample["n_users"],
            "closed_loop_detail": closed, "open_loop_detail": open_, "worker_memory": memory, "bars": bars,
            "prepare": prep, "train_params": TRAIN_PARAMS,
        },
    }
    print(json.dumps({"ratio_recommendations_to_trivial": ratio, "bars": bars, "worker_memory": memory}, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
