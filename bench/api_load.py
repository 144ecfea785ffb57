"""Load test of the public REST API under gunicorn, driven by wrk (one command).

    .venv/bin/python bench/api_load.py [--users 8317] [--duration 15] [--workers 2] [--rebuild]

Prepares (once; reused while an active model version exists) a PostgreSQL database
``kms_bench`` (or $BENCH_DATABASE_URL) and a data dir ``bench/work/api-data`` (local ArcadeDB,
models): imports Amazon-Scientific (all products, the first --users users' events), ingests the
catalogue through the NLP pipeline into the graph, trains a model version (small config). Then
starts gunicorn (gthread) on a free 127.0.0.1 port, warms every worker, and runs wrk with 32
connections for --duration seconds per endpoint, rotating user ids / product ids / queries with a
Lua script. Prints p50/p99/req/s/errors and writes bench/results/api_load.json.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
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


def lua_script(path_template: str, values: list[str], secret: str) -> str:
    items = ",".join(json.dumps(urllib.request.quote(v, safe="")) for v in values)
    return f"""
local values = {{{items}}}
local n = 0
wrk.headers["Authorization"] = "Api-Key {secret}"
request = function()
  n = n + 1
  local v = values[(n % #values) + 1]
  return wrk.format("GET", string.format("{path_template}", v))
end
"""


def parse_wrk(text: str) -> dict:
    def ms(label):
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not m:
            return None
        return round(float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)], 2)

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors += int(non2xx.group(1)) if non2xx else 0
    return {"p50_ms": ms("50"), "p99_ms": ms("99"), "rps": round(rps, 1), "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=8317)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
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


def run(args, env, data_dir: Path, prep: dict) -> None:

    sample = json.loads(django_eval(
        "import json\nfrom kms.events.models import ShopUser\nfrom kms.catalogue.models import Product\n"
        "from kms.api.models import ApiKey\n"
        "users = list(ShopUser.objects.order_by('?').values_list('external_id', flat=True)[:500])\n"
        "products = list(Product.objects.filter(interactions__isnull=False).distinct().order_by('?')"
        ".values_list('external_id', flat=True)[:500])\n"
        "key, secret = ApiKey.issue('bench', 'read')\n"
        "print(json.dumps({'users': users + ['cold-%d' % i for i in range(25)], 'products': products, 'secret': secret,"
        " 'n_products': Product.objects.count()}))", env))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(data_dir / "gunicorn.log", "w")
    server = subprocess.Popen(
        [PY, "-m", "gunicorn", "kms.wsgi", "-w", str(args.workers), "-k", "gthread", "--threads",
         str(args.threads), "-b", f"127.0.0.1:{port}", "--access-logfile", "-" if False else "/dev/null"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    endpoints = {
        "ping": ("/api/v1/ping?%s", ["x"]),
        "recommendations": ("/api/v1/users/%s/recommendations?k=20", sample["users"]),
        "similar": ("/api/v1/products/%s/similar?k=20", sample["products"]),
        "search": ("/api/v1/search?k=20&q=%s", QUERIES),
        "search_personal": ("/api/v1/search?k=20&user=" + sample["users"][0] + "&q=%s", QUERIES),
    }
    results = {}
    try:
        wait_until_live(base, server, data_dir / "gunicorn.log", timeout=60)
        # Warm every worker: the model index and the search index load on a worker's first request.
        for template, values in endpoints.values():
            for v in values[:40]:
                req = urllib.request.Request(base + template % urllib.request.quote(v, safe=""),
                                             headers={"Authorization": f"Api-Key {sample['secret']}"})
                urllib.request.urlopen(req, timeout=120).read()
        with tempfile.TemporaryDirectory() as tmp:
            for name, (template, values) in endpoints.items():
                script = Path(tmp) / f"{name}.lua"
                script.write_text(lua_script(template, values, sample["secret"]))
                out = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
                                      "-s", str(script), base], capture_output=True, text=True, check=True).stdout
                results[name] = parse_wrk(out)
                print(f"{name:16s} p50 {results[name]['p50_ms']:>7} ms  p99 {results[name]['p99_ms']:>7} ms  "
                      f"{results[name]['rps']:>8} req/s  errors {results[name]['errors']}", flush=True)
    finally:
        server.terminate()
        server.wait(20)
        log.close()
    ceiling = results["ping"]["rps"]
    summary = {
        "recommendations_vs_ping": round(results["recommendations"]["rps"] / ceiling, 2),
        "similar_vs_ping": round(results["similar"]["rps"] / ceiling, 2),
        "targets": {"recommendations_p99_le_20ms": results["recommendations"]["p99_ms"] <= 20,
                    "recommendations_ge_0.7x_ping": results["recommendations"]["rps"] >= 0.7 * ceiling,
                    "search_p99_le_50ms": results["search"]["p99_ms"] <= 50},
    }
    print(json.dumps(summary, indent=2))
    out = ROOT / "bench" / "results" / "api_load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results | {"_meta": {
        "date": "2026-11-22", "connections": args.connections, "duration_s": args.duration,
        "gunicorn": f"{args.workers} gthread workers x {args.threads} threads", "products": sample["n_products"],
        "users_with_events": args.users, "prepare": prep, "train_params": TRAIN_PARAMS} | summary}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
