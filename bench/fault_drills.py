#!/usr/bin/env python
"""Fault drills with real processes: Celery workers, a private Redis broker, an ArcadeDB Bolt server
and PostgreSQL. Prints the figures and merges them into bench/results/reliability.json.

  .venv/bin/python bench/fault_drills.py [--products 2400]

1. SIGKILL the ingestion worker in the middle of a job of >= 2,000 products, start a new one:
   the job completes with 0 facts lost and 0 duplicated (database and graph store, against the
   facts the same pipeline extracts in-process).
2. SIGKILL the graph store during an ingestion job, keep it down 30 s, restart it: the job
   completes, 0 lost / 0 duplicated; readiness answers 503 meanwhile and recommendations are
   still served from the in-memory index.
3. Stop the broker for 30 s while events and a new product arrive through the API: events are
   stored and reach the graph; the product's ingestion job waits (pending) and completes after
   the broker returns; readiness reports the broker.
4. SIGKILL the training worker during training: the task is redelivered to a new worker and the
   same model version completes (never silently lost).
5. SIGKILL the graph store, then erase a user (``DELETE /users/{id}``), delete a product
   (``DELETE /products/{id}``) and another user's events through the API; restart the store:
   the graph changes waited in the outbox and are delivered (the task beat runs), so neither
   the user nor the product is left in the graph, and every other event is there exactly once.

``--drills erasure`` (or any comma list of ingestion, training, graph, broker, erasure) runs a
subset; the summary merged into reliability.json then covers only the drills run.
Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and redis-server on PATH.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graph.server import ArcadeDBProcess, free_port  # noqa: E402

DB = "kms_drill"
DRILLS = ("ingestion", "training", "graph", "broker", "erasure")
TRAIN = {"components": ["popularity", "itemcf", "lightgcn"], "fusion": ["itemcf", "lightgcn"], "dim": 32,
         "layers": 2, "epochs": 40, "eval_every": 5, "patience": 2, "threads": 1}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Drill:
    def __init__(self, work: Path, n_products: int):
        self.work = work
        self.n_products = n_products
        self.redis_port = free_port()
        self.redis = None
        self.graph = ArcadeDBProcess(work / "arcadedb", heap="1g")
        self.workers: list[subprocess.Popen] = []
        self.results: dict = {}

    # -- infrastructure ---------------------------------------------------------------------
    def start_redis(self):
        self.redis = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop_redis(self):
        self.redis.terminate()
        self.redis.wait()

    def env(self) -> dict:
        return os.environ | {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "NEO4J_URI": f"bolt://127.0.0.1:{self.graph.bolt_port}", "NEO4J_USER": "root",
            "NEO4J_PASSWORD": self.graph.password, "NEO4J_DATABASE": "kms",
            "KMS_DATA_DIR": str(self.work / "data"), "KMS_VISIBILITY_TIMEOUT": "20",
        }

    def start_worker(self, queue: str = "celery", name: str = "w") -> subprocess.Popen:
        pool = ["--pool", "solo"] if queue == "training" else ["--pool", "prefork", "-c", "1"]
        logf = open(self.work / f"worker-{name}-{len(self.workers)}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "kms", "worker", "-Q", queue, *pool,
                                 "--loglevel", "INFO", "-n", f"{name}{len(self.workers)}@%h",
                                 "--without-gossip", "--without-mingle"],
                                cwd=ROOT, env=self.env(), stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.workers.append(proc)
        return proc

    @staticmethod
    def kill_worker(proc: subprocess.Popen):
        os.killpg(proc.pid, signal.SIGKILL)  # the main process and its pool children
        proc.wait()

    def setup(self):
        self.start_redis()
        self.graph.start(timeout=120)
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", f"DROP DATABASE IF EXISTS {DB}"], check=True)
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", f"CREATE DATABASE {DB}"], check=True)
        os.environ.update(self.env())
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kms.settings")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)

    def teardown(self):
        for w in self.workers:
            if w.poll() is None:
                self.kill_worker(w)
        self.graph.stop()
        if self.redis and self.redis.poll() is None:
            self.stop_redis()

    # -- checks -------------------------------------------------------------------------------
    def expected_facts(self, product_ids):
        """What the same pipeline extracts in-process: the set the stores must hold, exactly. Each fact
        with its status: the database holds every fact, the graph store only the trusted ones
        (``candidate`` facts wait for curators and are never written there)."""
        import nlp
        from kms.catalogue.models import Product
        from kms.knowledge.services import MAX_UID, get_pipeline, product_text

        products = list(Product.objects.filter(pk__in=product_ids))
        by_pk = {p.pk: p for p in products}
        rows = Counter()
        for r in nlp.extract(get_pipeline(), [product_text(p) for p in products]):
            for f in r.facts:
                if len(f.object_uid) > MAX_UID:
                    continue  # ingestion drops run-away keys by design (see ingest_products)
                rows[(by_pk[r.product_uid].external_id, f.relation, f.object_uid, f.field, f.start, f.end,
                      f.status)] += 1
        return rows

    def audit(self, expected: Counter, store) -> dict:
        from kgschema import product_uid
        from kms.knowledge.models import TRUSTED, Fact

        actual = Counter(Fact.objects.values_list("product__external_id", "relation", "entity__uid", "field",
                                                   "start", "end", "status").iterator())
        db_lost = sum((expected - actual).values())
        db_dup = sum((actual - expected).values())
        want_edges = {(product_uid(p), rel, e) for p, rel, e, *_, status in expected if status in TRUSTED}
        got = Counter()
        for r in store.read("MATCH (p:Product)-[e]->(x) WHERE type(e) <> 'INTERACTED' "
                            "RETURN p.uid AS p, type(e) AS t, x.uid AS x"):
            got[(r["p"], r["t"], r["x"])] += 1
        graph_lost = len(want_edges - set(got))
        graph_dup = sum(n - 1 for n in got.values()) + len(set(got) - want_edges)
        return {"expected_facts": sum(expected.values()),
                "expected_candidates": sum(n for key, n in expected.items() if key[-1] not in TRUSTED),
                "db_facts": sum(actual.values()), "db_lost": db_lost,
                "db_duplicated": db_dup, "expected_edges": len(want_edges), "graph_edges": sum(got.values()),
                "graph_lost": graph_lost, "graph_duplicated": graph_dup}

    def wait_in_flight(self, worker, timeout=120):
        """Until the worker's log shows a chunk task received and not yet finished."""
        path = self.work / f"worker-w-{self.workers.index(worker)}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [ln for ln in path.read_text(errors="replace").splitlines() if "ingest_chunk[" in ln]
            if lines and lines[-1].rstrip().endswith("received"):
                return
            time.sleep(0.05)

    def wait_job(self, job, timeout=900, until=None):
        from kms.knowledge.models import IngestionJob

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if until is not None and until(job):
                return job
            if until is None and job.state in (IngestionJob.State.DONE, IngestionJob.State.FAILED):
                return job
            time.sleep(0.5)
        raise TimeoutError(f"job {job.pk} stuck: {job.state} {job.done}/{job.total}")

    # -- drills --------------------------------------------------------------------------------
    def run(self, drills: set[str]):
        from django.conf import settings
        from django.test import Client

        from kms.catalogue.services import scientific_products, upsert_products
        from kms.graphstore import get_graph_store, reset_graph_store
        from kms.knowledge.tasks import start_ingestion

        products = scientific_products(settings.DATASETS_DIR / "amazon-scientific")[: self.n_products]
        ids = upsert_products(products).created
        log(f"{len(ids)} products in the catalogue")
        store = get_graph_store()

        if drills == {"erasure"}:
            self.start_worker()
            self.wait_job(start_ingestion(ids))
            self.record_dataset_events(products)
            self.erasure_during_outage(store)
            return

        # 1. worker killed mid-job
        worker = self.start_worker()
        started = time.monotonic()
        job = start_ingestion(ids)
        job = self.wait_job(job, until=lambda j: j.done >= 0.3 * len(ids))
        self.wait_in_flight(worker)  # kill while a chunk is being processed, not between chunks
        job.refresh_from_db()
        killed_at = job.done
        log(f"drill 1: SIGKILL worker at {job.done}/{job.total}")
        self.kill_worker(worker)
        time.sleep(2)
        self.start_worker()
        job = self.wait_job(job)
        log(f"drill 1: job {job.state} done={job.done} skipped={job.skipped} failed={job.failed} "
            f"in {time.monotonic() - started:.0f}s")
        expected = self.expected_facts(ids)
        self.results["worker_kill_ingestion"] = {"products": len(ids), "job_state": job.state,
                                                 "killed_at_done": killed_at, **self.audit(expected, store)}
        log(f"drill 1: {self.results['worker_kill_ingestion']}")

        # events and a trained model, for the later drills
        events = self.record_dataset_events(products)
        from kms.recs.services import index_cache, recommend_for_user
        from kms.recs.tasks import queue_training
        from kms.recs.models import ModelVersion

        # 4. training worker killed mid-training
        trainer = self.start_worker("training", "t")
        version, _, _ = queue_training(TRAIN)
        deadline = time.monotonic() + 300
        while ModelVersion.objects.get(pk=version.pk).state != ModelVersion.State.TRAINING:
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.2)
        time.sleep(2)
        log("drill 4: SIGKILL training worker during training")
        self.kill_worker(trainer)
        self.start_worker("training", "t")
        deadline = time.monotonic() + 600
        while ModelVersion.objects.get(pk=version.pk).state in (ModelVersion.State.TRAINING, ModelVersion.State.QUEUED):
            assert time.monotonic() < deadline, "training was lost"
            time.sleep(1)
        version.refresh_from_db()
        self.results["worker_kill_training"] = {"version": version.pk, "final_state": version.state,
                                                "orphaned_versions": ModelVersion.objects.exclude(pk=version.pk).count()}
        log(f"drill 4: {self.results['worker_kill_training']}")

        # 2. graph store down for 30 s during ingestion
        client = Client()
        user = events[0]["user"]
        assert recommend_for_user(user, 10)["source"] == "model"
        job = start_ingestion(ids, force=True)
        job = self.wait_job(job, until=lambda j: j.done >= 0.2 * len(ids))
        log(f"drill 2: SIGKILL graph store at {job.done}/{job.total}, down for 30 s")
        self.graph.kill()
        t0 = time.monotonic()
        ready_codes, recs_ok, recs_total = Counter(), 0, 0
        while time.monotonic() - t0 < 30:
            ready_codes[client.get("/health/ready").status_code] += 1
            recs_total += 1
            index_cache.clear()  # force the index reload path too: it reads files, not the graph
            body = recommend_for_user(user, 10)
            recs_ok += int(len(body["items"]) == 10 and body["source"] == "model")
            time.sleep(1)
        restarted = ArcadeDBProcess(self.graph.root, bolt_port=self.graph.bolt_port,
                                    http_port=self.graph.http_port, password=self.graph.password, heap="1g")
        restarted.start(timeout=120)
        self.graph = restarted
        reset_graph_store()
        store = get_graph_store()
        job = self.wait_job(job)
        audit = self.audit(self.expected_facts(ids), store)
        self.results["graph_outage_ingestion"] = {"job_state": job.state, "ready_status_during_outage": dict(ready_codes),
                                                  "recommendations_served_during_outage": f"{recs_ok}/{recs_total}",
                                                  **audit}
        log(f"drill 2: {self.results['graph_outage_ingestion']}")

        # 3. broker down for 30 s while events and a new product arrive through the API
        from kms.api.models import ApiKey
        from kms.events.models import Interaction

        _, secret = ApiKey.issue("drill", "write")
        headers = {"HTTP_AUTHORIZATION": f"Api-Key {secret}"}
        self.stop_redis()
        log("drill 3: broker stopped for 30 s")
        t0 = time.monotonic()
        sent, statuses = 0, Counter()
        new_product = {"external_id": "drill-new-1", "title": "Stanley heavy duty staple gun, steel, 1/2 inch",
                       "brand": "Stanley", "categories": "Industrial & Scientific,Fasteners,Staple Guns"}
        statuses[client.post("/api/v1/products", data=json.dumps(new_product), content_type="application/json",
                             **headers).status_code] += 1
        broker_ready = client.get("/health/ready").json()["checks"]["broker"]["ok"]
        while time.monotonic() - t0 < 30:
            batch = [{"event_id": f"b-{sent + n}", "user": f"drill-user-{(sent + n) % 50}", "product": products[(sent + n) % len(products)]["external_id"],
                      "type": "view"} for n in range(20)]
            statuses[client.post("/api/v1/events", data=json.dumps(batch), content_type="application/json",
                                 **headers).status_code] += 1
            sent += len(batch)
            time.sleep(0.5)
        self.start_redis()
        log("drill 3: broker back")
        from kms.knowledge.models import IngestionJob
        from kms.events.services import push_interactions_to_graph
        from kms.knowledge.tasks import dispatch_pending_jobs

        deadline = time.monotonic() + 300
        job = IngestionJob.objects.order_by("-id").first()
        while job.state != IngestionJob.State.DONE and time.monotonic() < deadline:
            dispatch_pending_jobs(older_than_seconds=0)  # what beat runs every 30 s
            push_interactions_to_graph()  # likewise (flush_graph_outbox): events whose push task could not be queued
            time.sleep(2)
            job.refresh_from_db()
        stored = Interaction.objects.filter(event_id__startswith="b-").count()
        in_graph = store.read("MATCH (u:User)-[e:INTERACTED]->() WHERE u.uid STARTS WITH 'user:drill-user-' "
                              "RETURN sum(e.count) AS n")[0]["n"]
        self.results["broker_outage_events"] = {"events_sent": sent, "events_stored": stored, "events_in_graph": in_graph,
                                                "http_statuses": dict(statuses), "broker_ready_during_outage": broker_ready,
                                                "new_product_job_state": job.state}
        log(f"drill 3: {self.results['broker_outage_events']}")

        if "erasure" in drills:
            self.erasure_during_outage(store)

    def record_dataset_events(self, products) -> list[dict]:
        from datetime import timedelta

        from django.conf import settings

        from kms.catalogue.importers import SCIENTIFIC_EPOCH
        from kms.events.services import record_events
        from kms.events.tasks import deliver_to_graph

        inter = json.loads((settings.DATASETS_DIR / "amazon-scientific" / "Scientific.inter.json").read_text())
        have = {p["external_id"] for p in products}
        events = [{"event_id": f"d-{u}-{n}", "user": u, "product": str(i), "type": "purchase",
                   "timestamp": (SCIENTIFIC_EPOCH + timedelta(seconds=n)).isoformat()}
                  for u, seq in inter.items() for n, i in enumerate(seq) if str(i) in have]
        deliver_to_graph(record_events(events).interaction_ids)  # as POST /events does
        return events

    def restart_graph(self):
        from kms.graphstore import get_graph_store, reset_graph_store

        restarted = ArcadeDBProcess(self.graph.root, bolt_port=self.graph.bolt_port,
                                    http_port=self.graph.http_port, password=self.graph.password, heap="1g")
        restarted.start(timeout=120)
        self.graph = restarted
        reset_graph_store()
        return get_graph_store()

    def erasure_during_outage(self, store):
        """5. Erase a user, delete a product and another user's events while the graph store is down."""
        from django.db.models import Count
        from django.test import Client

        from kms.api.models import ApiKey
        from kms.curation.models import OutboxEntry
        from kms.curation.tasks import deliver_graph_outbox
        from kms.events.models import Interaction
        from kms.events.tasks import push_pending_interactions

        deadline = time.monotonic() + 300
        while Interaction.objects.filter(in_graph=False).exists():  # events still on their way to the graph
            assert time.monotonic() < deadline, "events never reached the graph"
            push_pending_interactions.delay()  # on the worker, not here: concurrent MERGEs of one user collide
            time.sleep(3)
        busiest = list(Interaction.objects.values("user__external_id").annotate(n=Count("id")).order_by("-n", "user__external_id")[:2])
        victim, other = busiest[0]["user__external_id"], busiest[1]["user__external_id"]
        # a product the victim did not touch, so the two erasures are independent checks
        product = (Interaction.objects.exclude(user__external_id=victim).values("product__external_id")
                   .annotate(n=Count("id")).order_by("-n", "product__external_id").first()["product__external_id"])
        before = {"user": store.node(f"user:{victim}") is not None, "product": store.node(f"product:{product}") is not None,
                  "product_edges": len(store.relationships_of(f"product:{product}"))}
        _, secret = ApiKey.issue("drill-erasure", "write")
        client, headers = Client(), {"HTTP_AUTHORIZATION": f"Api-Key {secret}"}
        log(f"drill 5: SIGKILL graph store; erase user {victim}, delete product {product}, "
            f"delete user {other}'s events")
        self.graph.kill()
        t0 = time.monotonic()
        statuses = Counter()
        statuses[client.delete(f"/api/v1/users/{victim}", **headers).status_code] += 1
        statuses[client.delete(f"/api/v1/products/{product}", **headers).status_code] += 1
        statuses[client.delete(f"/api/v1/users/{other}/events", **headers).status_code] += 1
        answer_seconds = time.monotonic() - t0
        time.sleep(10)  # the delivery tasks the requests sent find the store down
        pending_during = OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING).count()
        store = self.restart_graph()
        log("drill 5: graph store back")
        t1 = time.monotonic()
        while OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING).exists() and time.monotonic() - t1 < 300:
            deliver_graph_outbox.delay()  # what beat runs every 15 s
            time.sleep(2)
        delivered_after = time.monotonic() - t1
        # every event left in the database is in the graph exactly once, and nothing else is
        want = Counter((f"user:{u}", f"product:{p}") for u, p in
                       Interaction.objects.values_list("user__external_id", "product__external_id").iterator())
        got = Counter()
        for r in store.read("MATCH (u:User)-[e:INTERACTED]->(p:Product) RETURN u.uid AS u, p.uid AS p, e.count AS n"):
            got[(r["u"], r["p"])] += r["n"] or 0
        self.results["graph_outage_erasure"] = {
            "api_statuses": dict(statuses), "api_seconds": round(answer_seconds, 2),
            "graph_had_before": before, "outbox_pending_during_outage": pending_during,
            "outbox_pending_after": OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING).count(),
            "seconds_to_deliver_after_restart": round(delivered_after, 1),
            "erased_user_left_in_graph": int(store.node(f"user:{victim}") is not None),
            "deleted_product_left_in_graph": int(store.node(f"product:{product}") is not None),
            "erased_events_left_in_graph": sum(n for (u, _), n in got.items() if u in (f"user:{victim}", f"user:{other}")),
            "events_lost": sum((want - got).values()), "events_duplicated": sum((got - want).values()),
            "events_in_database": sum(want.values()),
        }
        log(f"drill 5: {self.results['graph_outage_erasure']}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=2400)
    parser.add_argument("--drills", default="all", help="all, or a comma list of: " + ", ".join(DRILLS))
    args = parser.parse_args()
    drills = set(DRILLS) if args.drills == "all" else set(args.drills.split(","))
    if drills - set(DRILLS) or (drills != set(DRILLS) and drills != {"erasure"}):
        parser.error("--drills: all, or erasure alone (drills 1-4 run in sequence on each other's data)")
    work = Path(tempfile.mkdtemp(prefix="kms-drill-"))
    drill = Drill(work, args.products)
    try:
        drill.setup()
        drill.run(drills)
    finally:
        drill.teardown()
    r = drill.results
    command = "bench/fault_drills.py" + ("" if args.drills == "all" else f" --drills {args.drills}") \
        + ("" if args.products == 2400 else f" --products {args.products}")
    summary = {"drills": r, "date": time.strftime("%Y-%m-%d"), "command": command}
    if "worker_kill_ingestion" in r:
        summary |= {
            "facts_lost": r["worker_kill_ingestion"]["db_lost"] + r["worker_kill_ingestion"]["graph_lost"]
            + r["graph_outage_ingestion"]["db_lost"] + r["graph_outage_ingestion"]["graph_lost"],
            "facts_duplicated": r["worker_kill_ingestion"]["db_duplicated"] + r["worker_kill_ingestion"]["graph_duplicated"]
            + r["graph_outage_ingestion"]["db_duplicated"] + r["graph_outage_ingestion"]["graph_duplicated"],
            "events_lost": r["broker_outage_events"]["events_sent"] - r["broker_outage_events"]["events_stored"],
        }
    if "graph_outage_erasure" in r:
        e = r["graph_outage_erasure"]
        summary |= {"erasures_lost": e["erased_user_left_in_graph"] + e["deleted_product_left_in_graph"]
                    + int(e["erased_events_left_in_graph"] > 0),
                    "erasure_events_lost": e["events_lost"], "erasure_events_duplicated": e["events_duplicated"]}
    out = ROOT / "bench" / "results" / "reliability.json"
    merged = json.loads(out.read_text()) if out.exists() else {}
    summary["drills"] = {**merged.get("drills", {}), **r}  # a subset run keeps the other drills' last figures
    if "worker_kill_ingestion" not in r:
        summary.pop("date")
        summary["erasure_drill"] = {"date": time.strftime("%Y-%m-%d"), "command": command}
        summary.pop("command")
    merged.update(summary)
    out.write_text(json.dumps(merged, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
