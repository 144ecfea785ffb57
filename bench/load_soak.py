#!/usr/bin/env python
"""Soak test: sustained open-loop mixed traffic against gunicorn for minutes (one command).

    .venv/bin/python bench/load_soak.py [--seconds 300] [--rate 200] [--workers 2] [--threads 4]

Reuses bench/api_load.py's preparation (PostgreSQL ``kms_bench`` or $BENCH_DATABASE_URL, data dir
bench/work/api-data: imported + ingested Amazon-Scientific, a trained model; built once, reused),
starts gunicorn (gthread) on a free 127.0.0.1 port, warms it, then sends --rate requests/s for
--seconds: 60% GET /users/{id}/recommendations (rotating users, some cold), 20% POST /events
(write key, one new event each), 20% GET /search (rotating queries). Open loop: request n is
due at start + n/rate whatever the server does, and its latency runs from that due time, so a
slow server shows up as latency instead of as fewer requests (no coordinated omission). At most
--max-in-flight requests are outstanding; late ones wait for a slot and that wait counts.
The server runs as deployed: gunicorn with kms.shedding.QueueStampingWorker (requests that
waited past KMS_QUEUE_DEADLINE_MS are answered 503 at once instead of collapsing the server) and
a Celery worker on --broker that pushes the posted events into the graph store; after the load
the script waits until every event is in the graph store and reports how long that took.
Records per-minute p50/p99 and achieved rate, errors (non-2xx or no answer within 10 s) and the
resident memory of gunicorn (master + workers) at start and end. Prints the figures and merges
them into bench/results/reliability.json (``load_*``, ``rss_*`` and ``load_soak_runs[<rate>rps]``).
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import api_load  # noqa: E402  (preparation and helpers are shared with the throughput benchmark)
from fuzz_api import merge_results  # noqa: E402

MIX = (("recommendations", 6), ("events", 2), ("search", 2))  # out of 10
TIMEOUT_S = 10.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def gunicorn_rss_mb(master: psutil.Process) -> float:
    procs = [master] + master.children(recursive=True)
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return round(total / 2**20, 1)


class Soak:
    def __init__(self, base: str, sample: dict, rate: float, seconds: int, max_in_flight: int, rss_probe=None):
        self.base, self.rate, self.seconds = base, rate, seconds
        self.users, self.products = sample["users"], sample["products"]
        self.read = {"Authorization": f"Api-Key {sample['read_secret']}"}
        self.write = {"Authorization": f"Api-Key {sample['write_secret']}", "Content-Type": "application/json"}
        self.slots = asyncio.Semaphore(max_in_flight)
        self.run_id = f"{int(time.time())}"
        self.kinds = [k for k, n in MIX for _ in range(n)]
        self.results: list[tuple[float, str, float, bool]] = []  # (due offset s, kind, latency ms, ok)
        self.statuses: dict[str, int] = {}
        self.rss_probe, self.rss_by_minute = rss_probe, []  # resident memory at the end of each minute

    def request_for(self, n: int):
        kind = self.kinds[(n * 7) % len(self.kinds)]  # interleaved, not in runs of 6/2/2
        if kind == "recommendations":
            user = urllib.parse.quote(self.users[n % len(self.users)], safe="")
            return kind, "GET", f"/api/v1/users/{user}/recommendations?k=20", None, self.read
        if kind == "search":
            q = urllib.parse.quote(api_load.QUERIES[n % len(api_load.QUERIES)])
            return kind, "GET", f"/api/v1/search?k=20&q={q}", None, self.read
        event = {"user": self.users[(n * 13) % len(self.users)], "product": self.products[(n * 31) % len(self.products)],
                 "type": "view", "event_id": f"soak-{self.run_id}-{n}"}
        return kind, "POST", "/api/v1/events", json.dumps(event), self.write

    async def one(self, session, n: int, due: float, start: float):
        """Answered within TIMEOUT_S of its due time (waiting for a slot included), or an error."""
        kind, method, path, body, headers = self.request_for(n)
        ok, status = False, "error"
        try:
            async with asyncio.timeout_at(asyncio.get_running_loop().time() + due + TIMEOUT_S - time.perf_counter()):
                async with self.slots:
                    async with session.request(method, self.base + path, data=body, headers=headers) as response:
                        await response.read()
                        status = str(response.status)
                        ok = 200 <= response.status < 300
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = type(exc).__name__
        latency = (time.perf_counter() - due) * 1000
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.results.append((due - start, kind, latency, ok))

    async def run(self):
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            start = time.perf_counter()
            tasks = []
            for n in itertools.count():
                due = start + n / self.rate
                if due - start >= self.seconds:
                    break
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self.one(session, n, due, start)))
                if len(tasks) > 5000:
                    tasks = [t for t in tasks if not t.done()]
                if n and n % int(self.rate * 60) == 0:
                    done = [r for r in self.results if r[0] >= (n / self.rate) - 60]
                    rss = self.rss_probe() if self.rss_probe else None
                    self.rss_by_minute.append(rss)
                    print(f"  {n / self.rate:4.0f} s: {sum(r[3] for r in done) / 60:.1f} ok req/s over the last "
                          f"minute, {sum(not r[3] for r in done)} errors, RSS {rss} MB", flush=True)
            await asyncio.gather(*tasks)
            self.elapsed = time.perf_counter() - start

    def per_minute(self) -> list[dict]:
        out = []
        for minute in range(max(1, (self.seconds + 59) // 60)):
            rows = [r for r in self.results if minute * 60 <= r[0] < (minute + 1) * 60]
            span = min(60, self.seconds - minute * 60)
            lat = [r[2] for r in rows if r[3]]
            out.append({"minute": minute + 1, "sent": len(rows), "achieved_rps": round(sum(r[3] for r in rows) / span, 1),
                        "errors": sum(not r[3] for r in rows), "p50_ms": percentile(lat, 0.50),
                        "p99_ms": percentile(lat, 0.99),
                        "p99_by_kind_ms": {k: percentile([r[2] for r in rows if r[1] == k and r[3]], 0.99)
                                           for k, _ in MIX}})
        return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second, open loop")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-in-flight", type=int, default=256)
    parser.add_argument("--users", type=int, default=2000, help="only used when the database is prepared anew")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--worker-class", default="kms.shedding.QueueStampingWorker",
                        help="gunicorn worker; 'gthread' runs without load shedding's queue stamps")
    parser.add_argument("--broker", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13"),
                        help="Redis for the Celery worker that pushes events to the graph store (flushed first)")
    parser.add_argument("--secondary", action="store_true",
                        help="record only under load_soak_runs, leaving the headline load_* keys alone")
    args = parser.parse_args()

    with api_load.bench_environment(args.users, args.rebuild) as (env, data_dir, prep):
        soak(args, env, data_dir, prep)


def soak(args, env, data_dir: Path, prep: dict) -> None:
    # Every run starts from the prepared state: earlier soaks' events (and cold users) would make
    # each run's histories longer than the last. Only the database is reset (the request path
    # reads histories there); then fresh planner statistics, as autovacuum would keep them.
    print(api_load.django_eval(
        "from django.db import connection\nfrom kms.events.models import Interaction, ShopUser\n"
        "n = Interaction.objects.filter(event_id__startswith='soak-').delete()[0]\n"
        "ShopUser.objects.filter(external_id__startswith='soak-cold-').delete()\n"
        "connection.cursor().execute('ANALYZE')\nprint(f'removed {n} events of earlier soaks; ANALYZE done')", env))
    sample = json.loads(api_load.django_eval(
        "import json\nfrom kms.events.models import ShopUser\nfrom kms.catalogue.models import Product\n"
        "from kms.api.models import ApiKey\n"
        "users = list(ShopUser.objects.exclude(external_id__startswith='soak').order_by('?')"
        ".values_list('external_id', flat=True)[:500])\n"
        "products = list(Product.objects.order_by('?').values_list('external_id', flat=True)[:500])\n"
        "_, read = ApiKey.issue('soak-read', 'read')\n_, write = ApiKey.issue('soak-write', 'write')\n"
        "print(json.dumps({'users': users + ['soak-cold-%d' % i for i in range(25)], 'products': products,"
        " 'read_secret': read, 'write_secret': write}))", env))
    port = api_load.free_port()
    base = f"http://127.0.0.1:{port}"
    # As deployed: events reach the graph store through a Celery worker (coalesced pushes), and
    # gunicorn runs the queue-stamping worker so requests past KMS_QUEUE_DEADLINE_MS are shed.
    env = env | {"CELERY_BROKER_URL": args.broker}
    subprocess.run([api_load.PY, "-c", "import redis, sys; redis.Redis.from_url(sys.argv[1]).flushdb()", args.broker],
                   check=True)
    worker_log = open(data_dir / "celery-soak.log", "w")
    worker = subprocess.Popen(
        [api_load.PY, "-m", "celery", "-A", "kms", "worker", "-Q", "celery", "-c", "1", "--pool", "solo",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT)
    log = open(data_dir / "gunicorn-soak.log", "w")
    server = subprocess.Popen(
        [api_load.PY, "-m", "gunicorn", "kms.wsgi", "-w", str(args.workers), "-k", args.worker_class, "--threads",
         str(args.threads), "-b", f"127.0.0.1:{port}", "--timeout", "60"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    master = psutil.Process(server.pid)
    try:
        api_load.wait_until_live(base, server, data_dir / "gunicorn-soak.log", timeout=90)
        warm = Soak(base, sample, rate=1, seconds=1, max_in_flight=8)
        for n in range(60):  # each worker loads the model and search index on its first requests
            kind, method, path, body, headers = warm.request_for(n)
            if method == "GET":
                urllib.request.urlopen(urllib.request.Request(base + path, headers=headers), timeout=120).read()
        rss_start = gunicorn_rss_mb(master)
        print(f"gunicorn {args.workers} {args.worker_class} workers x {args.threads} threads on {base}; RSS {rss_start} MB; "
              f"sending {args.rate:g} req/s for {args.seconds} s", flush=True)
        load = Soak(base, sample, args.rate, args.seconds, args.max_in_flight, rss_probe=lambda: gunicorn_rss_mb(master))
        asyncio.run(load.run())
        rss_end = gunicorn_rss_mb(master)
        load.rss_by_minute.append(rss_end)
        t_drain = time.perf_counter()
        pending_code = ("from kms.events.models import Interaction\n"
                        "print(Interaction.objects.filter(in_graph=False).count())")
        pending = int(api_load.django_eval(pending_code, env))
        while pending and time.perf_counter() - t_drain < 120:
            time.sleep(2)
            pending = int(api_load.django_eval(pending_code, env))
        drain_s = round(time.perf_counter() - t_drain, 1)
        print(f"events not yet in the graph store: {pending} ({drain_s} s after the load ended)", flush=True)
    finally:
        for proc in (server, worker):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        worker_log.close()

    minutes = load.per_minute()
    ok = [r[2] for r in load.results if r[3]]
    errors = sum(not r[3] for r in load.results)
    achieved = round(len(ok) / max(args.seconds, load.elapsed), 1)  # late answers stretch the window
    print(f"{'minute':>6} {'sent':>6} {'ok req/s':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>8}   "
          "p99 by kind (ms)")
    for m in minutes:
        m["rss_mb"] = load.rss_by_minute[m["minute"] - 1] if m["minute"] <= len(load.rss_by_minute) else None
        print(f"{m['minute']:>6} {m['sent']:>6} {m['achieved_rps']:>8} {m['errors']:>6} {m['p50_ms']!s:>8} "
              f"{m['p99_ms']!s:>8} {m['rss_mb']!s:>8}   {m['p99_by_kind_ms']}")
    p99 = percentile(ok, 0.99)
    print(f"total: {len(load.results)} requests, {errors} errors, achieved {achieved} ok req/s of {args.rate:g} "
          f"asked, p50 {percentile(ok, 0.5)} ms, p99 {p99} ms; statuses {load.statuses}")
    print(f"gunicorn RSS (master + workers): start {rss_start} MB, end {rss_end} MB")
    run = {"date": time.strftime("%Y-%m-%d"), "command": f"bench/load_soak.py --seconds {args.seconds} --rate {args.rate:g}",
           "machine": "shared 2-core CPU", "gunicorn": f"{args.workers} {args.worker_class} workers x {args.threads} threads",
           "target_rps": args.rate, "achieved_rps": achieved, "seconds": args.seconds,
           "mix": {k: n / 10 for k, n in MIX}, "requests": len(load.results), "errors": errors,
           "statuses": load.statuses, "p50_ms": percentile(ok, 0.5), "p99_ms": p99,
           "rss_start_mb": rss_start, "rss_end_mb": rss_end, "per_minute": minutes, "prepare": prep,
           "worker_class": args.worker_class, "queue_deadline_ms": float(env.get("KMS_QUEUE_DEADLINE_MS", 2000)),
           "events_pending_in_graph_after_load": pending, "events_drain_seconds": drain_s}
    results = ROOT / "bench" / "results" / "reliability.json"
    data = json.loads(results.read_text()) if results.exists() else {}
    runs = data.get("load_soak_runs", {}) | {f"{args.rate:g}rps": run}
    update = {"load_soak_runs": runs}
    if not args.secondary:
        update |= {"load_p99_ms": p99, "load_errors": errors, "rss_start_mb": rss_start, "rss_end_mb": rss_end,
                   "load_achieved_rps": achieved, "load_target_rps": args.rate,
                   "load_p99_per_minute_ms": [m["p99_ms"] for m in minutes],
                   "load_rps_per_minute": [m["achieved_rps"] for m in minutes],
                   "rss_per_minute_mb": [m["rss_mb"] for m in minutes],
                   "load_events_pending_in_graph": pending}
    merge_results(update)
    print("merged into bench/results/reliability.json")


if __name__ == "__main__":
    main()
