"""How every stage's cost grows with the shop: synthetic shops at 1×, 3×, 10× … a real one.

    OMP_NUM_THREADS=1 .venv/bin/python bench/scale.py --sizes 1,3,10 [--dataset DIR] [--seed 0]
        [--params JSON] [--rate 50] [--duration 10] [--workers 1] [--port 8300] [--keep DIR]

For each size ``S`` a shop from ``bench/shopgen.py`` (S× the products and users of ``--dataset``,
the real text, category tree, brands and sequences resampled) goes through the product in a
fresh ``KMS_DATA_DIR`` with the zero-setup defaults (``bench/product_path.py``'s ``Shop``:
SQLite, eager tasks, the local ArcadeDB server), every stage a ``manage.py`` command timed from
outside:

- ``import``: ``import_catalogue FILE.jsonl``; ``ingest``: ``ingest`` (extraction into the graph);
- ``graph_export``: ``export_training_graph()`` + ``training_data()`` in a fresh process (timed
  inside it, without Django's start-up);
- ``train``: ``train`` with one FIXED cheap configuration (``--params``; default below), its
  total and SASRec's seconds per epoch (its fit time over its epochs, one validation included);
- ``index_load``: the active version's serving index (``kms.recs.services.index_cache.get()``)
  loaded in a fresh process;
- ``serve_p99``: gunicorn (``--workers``) answering ``GET /api/v1/users/{id}/recommendations`` at a
  fixed open-loop rate (``--rate`` req/s for ``--duration`` s, random users, after a warm-up);
  the p99 in seconds, p50 and errors beside it;
- memory: resident set of each web worker after the load (``/proc``), the training process's
  maximum RSS (``wait4``'s rusage of that command alone).

Each stage's growth exponent is the least-squares slope of log(seconds) on log(size): 1 is
linear, 2 quadratic. Writes ``bench/results/scale.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from product_path import PY, Shop, log  # noqa: E402
from shopgen import DEFAULT_DATASET, generate_shop  # noqa: E402

FIXED_TRAINING = {"preset": "fast", "components": ["popularity", "itemcf_recent", "usercf", "sasrec"],
                  "fusion": ["itemcf_recent", "usercf", "sasrec"], "seq_epochs": 3, "threads": 1}
STAGES = ("import", "ingest", "graph_export", "train", "train_sasrec_per_epoch", "index_load", "serve_p99")

EXPORT_CODE = """
import json, time
from kms.graphstore import get_graph_store
from kms.recs.services import training_data
import recommender.data
t = time.perf_counter()
graph = get_graph_store().export_training_graph()
exported = time.perf_counter() - t
data = training_data(graph)
print(json.dumps({"seconds": time.perf_counter() - t, "export_seconds": exported,
                  "users": data.n_users, "items": data.n_items, "interactions": data.n_interactions}))
"""
INDEX_CODE = """
import json, time
from kms.recs import services
from recommender.serving import RecommendationIndex  # imported before the clock starts
from recommender.training import TrainedModel
t = time.perf_counter()
index = services.index_cache.get()
print(json.dumps({"seconds": time.perf_counter() - t, "loaded": index is not None}))
"""
SAMPLE_CODE = """
import json
from kms.events.models import ShopUser
from kms.api.models import ApiKey
users = list(ShopUser.objects.order_by('?').values_list('external_id', flat=True)[:1000])
key, secret = ApiKey.issue('scale-bench', 'read')
print(json.dumps({'users': users, 'secret': secret}))
"""


def growth_exponent(sizes: list[float], costs: list[float | None]) -> float | None:
    """Least-squares slope of log(cost) on log(size) over the sizes that have a positive cost."""
    pts = [(s, c) for s, c in zip(sizes, costs) if c is not None and c > 0]
    if len(pts) < 2 or len({s for s, _ in pts}) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return round(float(np.polyfit(x, y, 1)[0]), 3)


def run_measured(shop: Shop, *args: str) -> tuple[str, float, float]:
    """``manage.py ARGS`` in the shop: (stdout, wall seconds, this process's max RSS in MB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen([PY, "manage.py", *args], cwd=ROOT, env=shop.env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)[:200]} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return stdout, wall, usage.ru_maxrss / 1024.0  # Linux: kilobytes


def last_json(stdout: str) -> dict:
    start = stdout.rfind("\n{")
    return json.loads(stdout[start + 1 if start >= 0 else stdout.index("{"):])


# -- serving ------------------------------------------------------------------------------------
async def _get(host: str, port: int, path: str, headers: str, timeout: float) -> int:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    finally:
        writer.close()


async def open_loop(port: int, paths: list[str], secret: str, rate: float, duration: float,
                    timeout: float = 10.0) -> dict:
    """Requests started at a fixed rate whatever the answers' times (an open loop): the latency
    includes any queueing at the server, as a shop's clients see it."""
    headers = f"Authorization: Api-Key {secret}\r\n"
    latencies: list[float] = []
    errors = 0

    async def one(path: str) -> None:
        nonlocal errors
        t = time.perf_counter()
        try:
            status = await _get("127.0.0.1", port, path, headers, timeout)
        except (OSError, asyncio.TimeoutError):
            status = 0
        latencies.append(time.perf_counter() - t)
        errors += status != 200

    tasks, start = [], time.perf_counter()
    for n in range(int(rate * duration)):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(paths[n % len(paths)])))
    await asyncio.gather(*tasks)
    lat = np.asarray(latencies)
    return {"requests": len(lat), "errors": errors, "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 2),
            "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 2),
            "achieved_rps": round(len(lat) / max(time.perf_counter() - start, 1e-9), 1)}


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def serve(shop: Shop, port: int, workers: int, rate: float, duration: float, seed: int) -> dict:
    sample = last_json(run_measured(shop, "shell", "-c", SAMPLE_CODE)[0])
    rng = random.Random(seed)
    users = sample["users"]
    paths = [f"/api/v1/users/{urllib.request.quote(rng.choice(users), safe='')}/recommendations?k=20"
             for _ in range(int(rate * duration))]
    with open(shop.root / "gunicorn.log", "w") as glog:
        server = subprocess.Popen([PY, "-m", "gunicorn", "kms.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}",
                                   "--access-logfile", "/dev/null"], cwd=ROOT, env=shop.env, stdout=glog,
                                  stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError(f"gunicorn did not start; see {shop.root / 'gunicorn.log'}")
                    time.sleep(0.5)
            # warm-up: every worker has loaded its index in post_worker_init; a few requests more
            asyncio.run(open_loop(port, paths[:max(workers * 20, 20)], sample["secret"], rate, 1.0))
            result = asyncio.run(open_loop(port, paths, sample["secret"], rate, duration))
            result["worker_rss_mb"] = [round(m, 1) for m in (_rss_mb(c) for c in _children(server.pid)) if m]
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    return result


# -- one size -----------------------------------------------------------------------------------
def measure_size(size: int, args, tmp: Path) -> dict:
    shop_file = tmp / f"shop_{size}.jsonl"
    t = time.perf_counter()
    counts = generate_shop(shop_file, size, dataset=args.dataset, seed=args.seed)
    log(f"size {size}: generated {counts} in {time.perf_counter() - t:.1f}s")
    shop = Shop(tmp / f"size_{size}")
    rec: dict = {"size": size, "shop": counts, "seconds": {}, "memory_mb": {}}
    sec = rec["seconds"]
    try:
        shop.setup()
        _, sec["import"], rec["memory_mb"]["import"] = run_measured(shop, "import_catalogue", str(shop_file))
        log(f"size {size}: import {sec['import']:.1f}s")
        _, sec["ingest"], rec["memory_mb"]["ingest"] = run_measured(shop, "ingest")
        log(f"size {size}: ingest {sec['ingest']:.1f}s")
        out, wall, rec["memory_mb"]["graph_export"] = run_measured(shop, "shell", "-c", EXPORT_CODE)
        export = last_json(out)
        sec["graph_export"] = export["seconds"]
        rec["graph"] = {k: export[k] for k in ("users", "items", "interactions", "export_seconds")}
        log(f"size {size}: graph export {sec['graph_export']:.1f}s ({rec['graph']})")
        out, sec["train"], rec["memory_mb"]["training"] = run_measured(
            shop, "train", "--params", json.dumps(args.training), "--json")
        trained = last_json(out)
        timings = trained.get("timings") or {}
        epochs = int(args.training.get("seq_epochs") or 0)
        if "sasrec" in timings and epochs:
            sec["train_sasrec_per_epoch"] = timings["sasrec"] / epochs
        rec["train_timings"] = {k: round(v, 2) for k, v in timings.items()}
        rec["train_seconds_inside"] = trained.get("train_seconds")
        log(f"size {size}: train {sec['train']:.1f}s, max RSS {rec['memory_mb']['training']:.0f} MB, {rec['train_timings']}")
        out, _, rec["memory_mb"]["index_process"] = run_measured(shop, "shell", "-c", INDEX_CODE)
        sec["index_load"] = last_json(out)["seconds"]
        log(f"size {size}: index load {sec['index_load']:.2f}s")
        served = serve(shop, args.port, args.workers, args.rate, args.duration, args.seed)
        rec["serving"] = served
        sec["serve_p99"] = served["p99_ms"] / 1e3
        rec["memory_mb"]["web_worker"] = max(served["worker_rss_mb"]) if served["worker_rss_mb"] else None
        log(f"size {size}: serving {served}")
    finally:
        shop.close()
    return rec


def assemble(records: list[dict], meta: dict) -> dict:
    sizes = [r["size"] for r in records]
    stages = {}
    for stage in STAGES:
        seconds = [r["seconds"].get(stage) for r in records]
        stages[stage] = {"seconds": [None if s is None else round(s, 4) for s in seconds],
                         "exponent": growth_exponent(sizes, seconds)}
    memory = {k: [r["memory_mb"].get(k) and round(r["memory_mb"][k], 1) for r in records]
              for k in ("web_worker", "training")}
    return {"sizes": sizes, "stages": stages, "memory_mb": memory,
            "memory_exponent": {k: growth_exponent(sizes, v) for k, v in memory.items()},
            "per_size": records, "_meta": meta}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,3,10,30")
    ap.add_argument("--dataset", default=str(DEFAULT_DATASET))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params", default=None, help=f"the fixed training configuration (default {json.dumps(FIXED_TRAINING)})")
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--port", type=int, default=8300)
    ap.add_argument("--keep", default=None, help="keep the data directories under this path")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    args = ap.parse_args(argv)
    args.training = json.loads(args.params) if args.params else dict(FIXED_TRAINING)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kms-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "dataset": Path(args.dataset).name,
            "seed": args.seed, "training": args.training, "rate_rps": args.rate, "duration_s": args.duration,
            "gunicorn_workers": args.workers, "command": " ".join(["bench/scale.py", *sys.argv[1:]]),
            "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = []
    try:
        for size in sizes:
            records.append(measure_size(size, args, tmp))
            meta["load_after"] = os.getloadavg()
            out.write_text(json.dumps(assemble(records, meta), indent=1))  # each size as soon as it is done
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result = assemble(records, meta)
    print(f"{'stage':24s} " + " ".join(f"{s:>9d}x" for s in result["sizes"]) + "  exponent")
    for stage, v in result["stages"].items():
        cells = " ".join(f"{'-' if s is None else f'{s:.3f}':>10s}" for s in v["seconds"])
        print(f"{stage:24s} {cells}  {v['exponent']}")
    for k, v in result["memory_mb"].items():
        print(f"{'memory ' + k + ' MB':24s} " + " ".join(f"{'-' if m is None else f'{m:.0f}':>10s}" for m in v)
              + f"  {result['memory_exponent'][k]}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
