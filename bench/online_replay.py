"""Online evaluation with a known answer: simulated shoppers drive the running server.

    .venv/bin/python bench/online_replay.py [--dataset ../shared/datasets/amazon-scientific] [--preset best]
        [--params '{}'] [--ingest | --no-ingest] [--users N] [--aa-runs 100] [--baseline-checkout DIR] [--port 8200]
        [--keep DIR [--reuse [--latency-only]]]

The defaults are the product's: the default preset (``recommender.presets.DEFAULT_PRESET``, ``best``)
unmodified, after ingestion. The reduced run of 2026-12-01 was
``--preset fast --no-ingest --params '{"components": ["popularity", "itemcf_recent", "usercf", "ease"],
"fusion": ["itemcf_recent", "usercf", "ease"], "cold_blend": null, "threads": 1}'``.

1. A fresh ``KMS_DATA_DIR`` (SQLite, eager tasks, local graph server: the zero-setup defaults, as
   ``bench/product_path.py``): the dataset imported **without each user's last interaction** (the
   held-out test target), then ``manage.py train`` twice: the preset (``--preset``, default
   ``best``, with ``--params`` overrides, default none; it is activated) and a popularity-only version
   (``--no-activate``). Ingestion (extraction into the graph store, which entity-CF, the KG models
   and the cold-start blend read) runs first unless ``--no-ingest`` (then only the events are pushed
   into the graph store).
2. gunicorn on ``--port`` with 2 workers; an experiment ``POST /api/v1/experiments`` with control =
   the active version and the other as ``variant-1``, 50/50, primary metric CTR@10.
3. Each simulated user (seeded order; ``--users`` of them) asks ``GET /users/{id}/recommendations?k=10``
   (20% ask twice, a refresh, and act on the second list) and, under a position-based click model,
   clicks each shown item independently with

       P(click at position p) = examination(p) * relevance(item),  examination(p) = 1 / p ** ETA (p = 1..10)
       relevance = REL_TARGET for the user's held-out next item, REL_NOISE for any other item

   A clicked item is put in the cart with P_CART (target) or P_CART_NOISE (other), a carted one
   bought with P_BUY at a simulated price. Half the clicks and carts carry the list's
   ``recommendation_id`` (the rest and every purchase are attributed by the window rule), so both
   attribution paths are checked against the simulator's truth (the list, version and position the
   simulator acted on), event by event.
4. The experiment's results (``GET /experiments/{id}/results``): winner, always-valid p-value,
   lists served when the mSPRT decided, lift; the offline NDCG@20 of both versions (their training
   test stage) for the sign and order check.
5. 100 seeded A/A tests: the lists the control version served (real server responses) with users
   split in two by sha256(seed, user) and clicks redrawn from the click model per seed, through the
   same ``recommender.online.sequential_test`` the server uses, looked at every 100 lists.
6. Latency: a sequential single-client loop of ``GET recommendations`` against this branch's server
   (impressions recorded, no experiment; and with the experiment running) and, with
   ``--baseline-checkout DIR``, against a server started from that checkout on the same data
   (before the change). A simple loop, a quick check; the serving p99 bar (before/after with
   impressions recorded) is measured with ``bench/api_load.py`` (bench/RESULTS.md).

Writes bench/results/online_replay.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from product_path import PY, Shop, by_user, log, source_records, write_jsonl  # noqa: E402

from recommender.online import sequential_test  # noqa: E402
from recommender.presets import DEFAULT_PRESET  # noqa: E402

K = 10
ETA = 1.0
REL_TARGET, REL_NOISE = 0.9, 0.02
P_CART, P_CART_NOISE, P_BUY = 0.5, 0.1, 0.5
P_REFRESH, P_WITH_ID = 0.2, 0.5
LATENCY_HOW = ("sequential single client, GET /users/{id}/recommendations?k=10 of random simulated users, gunicorn "
               "2 workers each; before (--baseline-checkout) and after served side by side on the same data and "
               "measured in alternating rounds; not bench/api_load.py")
POPULARITY = {"components": ["popularity"], "fusion": ["popularity"], "cold_blend": None, "threads": 1}


def examination(p: int) -> float:
    return 1.0 / p ** ETA


def price(product: str) -> float:
    return round(5 + int(hashlib.sha256(product.encode()).hexdigest()[:6], 16) % 9500 / 100, 2)


class Client:
    def __init__(self, base: str, secret: str):
        self.base, self.headers = base, {"Authorization": f"Api-Key {secret}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body=None, timeout: float = 120):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=self.headers)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"null")


def start_server(checkout: Path, env: dict, port: int, log_path: Path, workers: int = 2) -> subprocess.Popen:
    server = subprocess.Popen([PY, "-m", "gunicorn", "kms.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}",
                               "--access-logfile", "/dev/null", "--timeout", "300"],
                              cwd=checkout, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited; see {log_path}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2).read()
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"gunicorn did not answer; see {log_path}")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()


def _summary(times: list[float]) -> dict:
    a = np.array(times)
    return {"requests": len(a), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "mean_ms": round(float(a.mean()), 2)}


def _timed(client: Client, users: list[str], n: int, rng: random.Random) -> list[float]:
    times = []
    for _ in range(n):
        u = rng.choice(users)
        t = time.perf_counter()
        client.call("GET", f"/api/v1/users/{u}/recommendations?k={K}")
        times.append((time.perf_counter() - t) * 1000)
    return times


def latency_loop(client: Client, users: list[str], n: int, seed: int) -> dict:
    for u in users[:20]:  # warm both workers
        client.call("GET", f"/api/v1/users/{u}/recommendations?k={K}")
    return _summary(_timed(client, users, n, random.Random(seed)))


def latency_compare(clients: dict[str, Client], users: list[str], n: int, rounds: int, seed: int) -> dict:
    """Servers running side by side, measured in alternating rounds (the machine's load varies
    minute to minute; alternation gives both the same share of it)."""
    for client in clients.values():
        for u in users[:40]:
            client.call("GET", f"/api/v1/users/{u}/recommendations?k={K}")
    times: dict[str, list[float]] = {name: [] for name in clients}
    for r in range(rounds):
        for name in (list(clients) if r % 2 == 0 else list(clients)[::-1]):
            times[name] += _timed(clients[name], users, n // rounds, random.Random(f"{seed}:{r}"))
    return {name: _summary(t) | {"rounds": rounds} for name, t in times.items()}


def simulate_user(client: Client, user: str, target: str, seed: int) -> dict:
    """One shopper: ask, maybe refresh, act on the last list. Returns what was shown and the truth."""
    rng = random.Random(f"{seed}:{user}")
    lists = [client.call("GET", f"/api/v1/users/{user}/recommendations?k={K}")]
    if rng.random() < P_REFRESH:
        lists.append(client.call("GET", f"/api/v1/users/{user}/recommendations?k={K}"))
    shown = lists[-1]
    events, truth = [], {}
    for item in shown["items"]:
        p, product = item["position"], item["product"]
        hit = product == target
        if rng.random() >= examination(p) * (REL_TARGET if hit else REL_NOISE):
            continue
        acts = [("click", 0.0)]
        if rng.random() < (P_CART if hit else P_CART_NOISE):
            acts.append(("cart", 0.0))
            if rng.random() < P_BUY:
                acts.append(("purchase", price(product)))
        for etype, value in acts:
            eid = f"sim-{seed}-{user}-{product}-{etype}"
            event = {"user": user, "product": product, "type": etype, "value": value or 1.0, "event_id": eid}
            if etype != "purchase" and rng.random() < P_WITH_ID:
                event["recommendation_id"] = shown["recommendation_id"]
            events.append(event)
            truth[eid] = {"recommendation_id": shown["recommendation_id"], "position": p,
                          "model_version": shown["model_version"], "arm": shown["experiment"]["arm"]}
    if events:
        client.call("POST", "/api/v1/events", events)
    return {"user": user, "target": target, "arm": shown["experiment"]["arm"], "version": shown["model_version"],
            "items": [i["product"] for i in shown["items"]], "lists": len(lists), "truth": truth}


def ndcg_at(items: list[str], target: str, k: int = K) -> float:
    return 1.0 / np.log2(items.index(target) + 2) if target in items[:k] else 0.0


def aa_tests(served: list[dict], runs: int, alpha: float, tau: float) -> dict:
    """A/A: the control version's real lists, users split by sha256(seed, user), clicks redrawn."""
    false_positives, decided_at = 0, []
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(served))
        arm, outcome = [], []
        for n in order:
            s = served[n]
            arm.append(int(hashlib.sha256(f"aa-{seed}:{s['user']}".encode()).digest()[0] & 1))
            clicks = 0
            for p, product in enumerate(s["items"][:K], 1):
                clicks += rng.random() < examination(p) * (REL_TARGET if product == s["target"] else REL_NOISE)
            outcome.append(clicks)
        res = sequential_test(np.array(arm), np.arange(len(order)), np.array(outcome, dtype=float), tau, alpha, 100)
        if res.decided_at is not None:
            false_positives += 1
            decided_at.append(res.decided_at)
    return {"runs": runs, "false_positives": false_positives, "rate": false_positives / runs, "alpha": alpha,
            "lists_per_run": len(served), "looks_every": 100, "decided_at": decided_at}


def django_json(shop: Shop, code: str) -> object:
    out = subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=shop.env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "amazon-scientific"))
    ap.add_argument("--preset", default=DEFAULT_PRESET, help="the trained version's preset (default: the product's)")
    ap.add_argument("--params", default="{}", help="TrainConfig overrides of the preset (default: none)")
    ap.add_argument("--ingest", action=argparse.BooleanOptionalAction, default=True,
                    help="run ingestion first (default; entitycf, the KG models and cold_blend read its facts)")
    ap.add_argument("--users", type=int, default=0, help="simulated users (0: every user with a held-out target)")
    ap.add_argument("--aa-runs", type=int, default=100)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--latency-requests", type=int, default=2000)
    ap.add_argument("--latency-rounds", type=int, default=10)
    ap.add_argument("--latency-only", action="store_true", help="with --keep --reuse: only the latency comparison")
    ap.add_argument("--baseline-checkout", default=None, help="a checkout to serve the 'before' latency loop")
    ap.add_argument("--port", type=int, default=8200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default=None)
    ap.add_argument("--reuse", action="store_true", help="with --keep: reuse its imported, trained shop "
                                                         "(the earlier run's simulated events stay in it)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "online_replay.json"))
    args = ap.parse_args()
    started = time.time()
    params = json.loads(args.params)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kms-online-replay-"))
    shop = Shop(tmp / "shop")
    shop.env.update({"KMS_PUBLIC_CUSTOMER_READ": "1", "OMP_NUM_THREADS": "1", "GUNICORN_THREADS": "4"})

    # 1. the shop without the held-out targets
    products, events = source_records({"dataset": str(Path(args.dataset).resolve())})
    targets, kept = {}, []
    for user, evs in by_user(events).items():
        if len(evs) >= 3:  # the model still sees >= 2 interactions of the user
            targets[user] = str(evs[-1]["product"])
            kept += evs[:-1]
        else:
            kept += evs
    log(f"{len(products)} products, {len(events)} events, {len(targets)} held-out targets")
    trained_file = shop.root / "trained.json"
    if args.reuse and trained_file.exists():  # a --keep directory of an earlier run: same data, same versions
        model, pop = json.loads(trained_file.read_text())
        shop.manage(None, "shell", "-c", "from kms.experiments.models import Experiment as E; "
                                         "E.objects.filter(state='running').update(state='stopped')")
        log(f"reusing {shop.root}")
    else:
        shop.setup()
        shop.manage("import_s", "import_catalogue", str(write_jsonl(shop.root / "source.jsonl", products, kept)))
        if args.ingest:
            shop.ingest()  # extraction into the graph store; the imported events go with it
        else:  # only the events into the graph store (what ingestion's flush does), no extraction
            shop.manage("import_s", "shell", "-c", "from kms.events.services import push_interactions_to_graph; "
                                                   "push_interactions_to_graph()")
        model = shop.json("train_s", "train", "--preset", args.preset, "--params", json.dumps(params), "--json")
        pop = shop.json("train_s", "train", "--preset", args.preset, "--params", json.dumps(POPULARITY), "--json",
                        "--no-activate")
        trained_file.write_text(json.dumps([model, pop]))
    offline = {name: {"version": t["version"], "state": t["state"],
                      "ndcg@20": t["metrics"]["test"]["served"]["ndcg@20"],
                      "recall@20": t["metrics"]["test"]["served"]["recall@20"]}
               for name, t in (("model", model), ("popularity", pop))}
    log(f"offline (training test stage): {offline}")
    secret = shop.manage(None, "create_api_key", "replay", "--scope", "write").strip().split()[-1]
    users = sorted(targets)
    random.Random(args.seed).shuffle(users)
    users = users[:args.users] if args.users else users

    result: dict = {"_meta": {"date": time.strftime("%Y-%m-%d"), "command": " ".join(["bench/online_replay.py", *sys.argv[1:]]),
                              "dataset": Path(args.dataset).name, "preset": args.preset, "params": params,
                              "popularity_params": POPULARITY, "users": len(users), "seed": args.seed,
                              "click_model": {"examination": f"1/p^{ETA} (p = 1..{K})", "relevance_target": REL_TARGET,
                                              "relevance_other": REL_NOISE, "p_cart": P_CART, "p_cart_other": P_CART_NOISE,
                                              "p_buy_after_cart": P_BUY, "p_refresh": P_REFRESH,
                                              "p_event_with_recommendation_id": P_WITH_ID},
                              "server": "gunicorn 2 workers x 4 threads, zero-setup (SQLite, eager)",
                              "load_before": os.getloadavg()}}
    client = Client(f"http://127.0.0.1:{args.port}", secret)
    latency = {}
    server = start_server(ROOT, shop.env, args.port, tmp / "gunicorn.log")
    try:
        if args.baseline_checkout:  # before (that checkout) and after (this one), side by side, alternating
            before = start_server(Path(args.baseline_checkout), shop.env, args.port + 1, tmp / "gunicorn-before.log")
            try:
                latency.update(latency_compare({"before": Client(f"http://127.0.0.1:{args.port + 1}", secret),
                                                "after_no_experiment": client}, users, args.latency_requests,
                                               args.latency_rounds, args.seed))
            finally:
                stop_server(before)
            log(f"latency before / after (impressions recorded): {latency}")
        if not latency:
            latency["after_no_experiment"] = latency_loop(client, users, args.latency_requests, args.seed)
        if args.latency_only:
            return _latency_only(args, result, latency, tmp)
        control = model if model["state"] == "active" else pop
        variant = pop if control is model else model
        exp = client.call("POST", "/api/v1/experiments", {
            "name": f"replay-{args.seed}-{int(time.time())}", "variants": [{"version": variant["version"]}], "metric": "ctr", "k": K,
            "baseline": 0.1, "relative_mde": 0.1, "reason": "bench/online_replay.py"})
        log(f"experiment {exp['id']}: control v{control['version']} vs variant-1 v{variant['version']}")
        time.sleep(6)  # every worker re-reads the running experiment within 5 s
        t = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            served = list(pool.map(lambda u: simulate_user(client, u, targets[u], args.seed), users))
        sim_s = time.perf_counter() - t
        log(f"simulated {len(served)} users in {sim_s:.0f}s")
        # every process flushes its lists and settles the window rule within settle_seconds()
        deadline = time.monotonic() + 120
        while True:
            time.sleep(5)
            pending = django_json(shop, "from kms.experiments.models import Attribution as A; "
                                        "print(A.objects.filter(state='pending').count())")
            if not pending or time.monotonic() > deadline:
                break
        res = client.call("GET", f"/api/v1/experiments/{exp['id']}/results")
        latency["after_with_experiment"] = latency_loop(client, users, args.latency_requests, args.seed + 1)
        client.call("POST", f"/api/v1/experiments/{exp['id']}/stop", {"reason": "replay finished"})
    finally:
        stop_server(server)
        shop.close()

    # attribution against the simulator's truth, event by event
    truth = {eid: t for s in served for eid, t in s["truth"].items()}
    got = django_json(shop, "import json; from kms.experiments.models import Attribution as A; print(json.dumps({"
                            "a.interaction.event_id: [a.state, a.impression.recommendation_id if a.impression else None, "
                            "a.position, a.model_version, a.arm, a.method] for a in A.objects.select_related("
                            "'interaction', 'impression') if a.interaction.event_id.startswith('sim-')}))")
    exact = [eid for eid, t in truth.items() if eid in got and got[eid][0] == "attributed"
             and got[eid][1:5] == [t["recommendation_id"], t["position"], t["model_version"], t["arm"]]]
    methods = {m: sum(1 for eid in exact if got[eid][5] == m) for m in ("id", "window")}
    result["attribution"] = {"expected": len(truth), "attributed": len(exact), "exact": len(exact) == len(truth) == len(got),
                             "by_method": methods, "stored": len(got)}
    cmp_ = res["comparisons"]["variant-1"]
    primary = cmp_["metrics"]["ctr"]
    names = {"control": "model" if control is model else "popularity", "variant-1": "popularity" if control is model else "model"}
    winner = res["winner"]
    lift_model = {}
    for m, c in cmp_["metrics"].items():  # relative lift of the trained model over popularity
        cv, vv = res["arms"]["control"]["metrics"][m]["value"], res["arms"]["variant-1"]["metrics"][m]["value"]
        mv, pv = (cv, vv) if control is model else (vv, cv)
        lift_model[m] = round(mv / pv - 1, 4) if pv else None
    replay_ndcg = {names[a]: round(float(np.mean([ndcg_at(s["items"], s["target"]) for s in served if s["arm"] == a])), 4)
                   for a in ("control", "variant-1")}
    offline_lift = offline["model"]["ndcg@20"] / offline["popularity"]["ndcg@20"] - 1
    result["ab"] = {
        "winner": names.get(winner) if winner else None, "winner_arm": winner,
        "winner_version": res["arms"][winner]["version"] if winner else None,
        "p_value": primary["always_valid_p"], "fixed_horizon_p_value": primary["z_p_value"],
        "significant": cmp_["significant"], "requests_to_decision": cmp_["decided_at_impressions"],
        "planned_users_per_arm": res["planned_users_per_arm"],
        "lift": {"ctr@10": lift_model["ctr"], "add_to_cart": lift_model["cart"], "conversion": lift_model["conversion"],
                 "revenue_per_list": lift_model["revenue"], "of": "trained model over popularity (relative)"},
        "arms": {names[a]: {"version": v["version"], "users": v["users"], "impressions": v["impressions"],
                            **{m: {"value": round(x["value"], 5), "ci95": [round(c, 5) for c in x["ci95"]]}
                               for m, x in v["metrics"].items()}} for a, v in res["arms"].items()},
        "offline": offline, "offline_ndcg20_lift": round(offline_lift, 4), "replay_ndcg10_of_served_lists": replay_ndcg,
        "agrees_with_offline": bool(winner) and names[winner] == ("model" if offline_lift > 0 else "popularity")
                               and (lift_model["ctr"] > 0) == (offline_lift > 0),
        "test": res["test"], "simulation_seconds": round(sim_s, 1)}
    control_lists = [s for s in served if s["arm"] == ("control" if control is model else "variant-1")]
    result["aa"] = aa_tests(control_lists, args.aa_runs, 0.05, exp["tau"])
    result["aa"]["source"] = ("lists served by the real server (the trained model's arm), users re-split by "
                              "sha256(seed, user), clicks redrawn per seed; same sequential_test as the server")
    result["latency"] = latency | {"how": LATENCY_HOW}
    if "before" in latency:
        result["latency"]["p99_change"] = round(latency["after_no_experiment"]["p99_ms"] / latency["before"]["p99_ms"] - 1, 4)
        result["latency"]["p50_change"] = round(latency["after_no_experiment"]["p50_ms"] / latency["before"]["p50_ms"] - 1, 4)
    result["_meta"]["load_after"] = os.getloadavg()
    result["_meta"]["wall_seconds"] = round(time.time() - started)
    result["_meta"]["stages"] = shop.stages
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "_meta"}, indent=1))
    log(f"wrote {args.out}")


def _latency_only(args, result: dict, latency: dict, tmp: Path) -> None:
    out = Path(args.out)
    kept = json.loads(out.read_text()) if out.exists() else {}
    kept["latency"] = latency | {"how": LATENCY_HOW, "rerun": result["_meta"]["date"] + " --latency-only"}
    if "before" in latency:
        kept["latency"]["p99_change"] = round(latency["after_no_experiment"]["p99_ms"] / latency["before"]["p99_ms"] - 1, 4)
        kept["latency"]["p50_change"] = round(latency["after_no_experiment"]["p50_ms"] / latency["before"]["p50_ms"] - 1, 4)
    kept.setdefault("_meta", {})["latency_load"] = [result["_meta"]["load_before"], os.getloadavg()]
    out.write_text(json.dumps(kept, indent=1) + "\n")
    print(json.dumps(kept["latency"], indent=1))


if __name__ == "__main__":
    main()
