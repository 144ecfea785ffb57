"""What a shop gets: fresh data directory -> import -> ingest -> train -> evaluate, through the
management commands with the zero-setup defaults, beside the peers on the same split.

    .venv/bin/python bench/product_path.py --dataset ../shared/datasets/amazon-scientific [--preset best]
    .venv/bin/python bench/product_path.py --jsonl shop.jsonl --preset fast
        [--kg-ablation] [--ablation-preset fast] [--cold-start] [--peers-json FILE] [--keep DIR]

``--dataset DIR`` takes any ``<Name>.item.json`` + ``<Name>.inter.json`` pair (imported with
``import_catalogue --amazon``), ``--jsonl FILE`` the generic JSONL format. Every stage is a
``manage.py`` command in a fresh ``KMS_DATA_DIR`` (SQLite, eager tasks, the local ArcadeDB server:
what ``scripts/demo.sh`` runs), timed from outside. The served figures are ``manage.py evaluate``'s
(leave-last-out on the shop's events, full ranking, history masked); the peers come from
``bench/peers.py`` on the same split (``--peers-json``, default ``bench/results/peers_<dataset>.json``;
its split sizes must equal the product's or the ratio is not reported).

``--kg-ablation`` trains the ablation preset four times: no knowledge (``kg_relations: []``),
structured fields only (brand and category relations of the full ingestion), text only (a second
import with every product's brand and category hidden, then ingestion: all it knows came from
title and description) and everything. ``--cold-start`` holds out 10% of the items (seeded)
from the events and every user's last event, imports the products (all) and the remaining
events, ingests, trains the preset, and ranks each user's held-out last item with the served
model (cold items reachable only through the knowledge the product extracted from their text).

Writes bench/results/product_path_<dataset>_<preset>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
OVERRIDES: dict = {}  # --params: TrainConfig fields over the preset (quick checks; the figures use none)
NOT_COMPONENTS = ("fusion", "served")  # fused figures in the training metrics, not single components


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


class Shop:
    """A fresh data directory and the management commands run in it, as a shop runs them."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "NEO4J_URI", "DJANGO_SETTINGS_MODULE")}
        self.env["KMS_DATA_DIR"] = str(root)
        self.stages: dict[str, float] = {}  # wall seconds
        self.cpu: dict[str, float] = {}  # CPU seconds of the command itself (the graph server not included)

    def manage(self, stage: str | None, *args: str) -> str:
        t, cpu = time.perf_counter(), children_cpu()
        proc = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        if stage:
            wall, used = time.perf_counter() - t, children_cpu() - cpu
            self.stages[stage] = self.stages.get(stage, 0.0) + wall
            self.cpu[stage] = self.cpu.get(stage, 0.0) + used
            log(f"{stage}: {' '.join(args)[:80]} in {wall:.1f}s (command CPU {used:.1f}s)")
        return proc.stdout

    def json(self, stage: str | None, *args: str) -> dict:
        out = self.manage(stage, *args)
        return json.loads(out[out.index("\n{") + 1 if not out.startswith("{") else 0:])

    def setup(self) -> None:
        self.manage(None, "migrate", "-v0")

    def import_source(self, source: dict) -> None:
        if source.get("dataset") and any(Path(source["dataset"]).glob("*.item.json")):
            self.manage("import_s", "import_catalogue", "--amazon", source["dataset"])
        elif source.get("dataset"):  # another dataset format (RecBole atomic files): as generic JSONL
            products, events = source_records(source)
            self.manage("import_s", "import_catalogue", str(write_jsonl(self.root / "source.jsonl", products, events)))
        else:
            self.manage("import_s", "import_catalogue", source["jsonl"])
        if source.get("kg"):
            self.manage("import_s", "import_kg", source["kg"])

    def ingest(self) -> None:
        self.manage("ingest_s", "ingest")

    def train(self, preset: str, extra: dict | None = None) -> dict:
        return self.json("train_s", "train", "--preset", preset, "--params", json.dumps({**OVERRIDES, **(extra or {})}),
                         "--json")

    def evaluate(self, version: int) -> dict:
        return self.json("evaluate_s", "evaluate", "--version", str(version), "--json")

    def close(self) -> None:
        subprocess.run([PY, "manage.py", "graphserver", "stop"], cwd=ROOT, env=self.env, capture_output=True)


# -- the source as generic JSONL records (for the variants that change what is imported) -------
def source_records(source: dict) -> tuple[list[dict], list[dict]]:
    """Products and events of the source, as ``bench/datasets.py`` reads them (the import's records)."""
    from datasets import dataset_records

    products, events = [], []
    for rec in dataset_records(dataset=source.get("dataset"), jsonl=source.get("jsonl")):
        (events if rec.get("kind") == "event" else products).append(rec)
    return products, events


def by_user(events: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in sorted(events, key=lambda e: (str(e["user"]), e.get("timestamp") or "")):
        out.setdefault(str(e["user"]), []).append(e)
    return out


def write_jsonl(path: Path, products: list[dict], events: list[dict]) -> Path:
    from datasets import export_jsonl

    export_jsonl([*products, *({**e, "kind": "event"} for e in events)], path)
    return path


# -- figures ------------------------------------------------------------------------------------
def rounded(m: dict) -> dict:
    return {k: round(float(m[k]), 6) for k in METRICS if k in m}


def figures(trained: dict, evaluated: dict | None) -> dict:
    """Served model, its components, the best component: from ``manage.py evaluate`` when it ran,
    else from the test stage training recorded (the same protocol on the same split)."""
    if evaluated:
        served = evaluated["served"]
        components = {**evaluated.get("components", {}), **evaluated.get("baselines", {})}
    else:
        test = trained["metrics"]["test"]
        served = test["served"]
        components = {n: m for n, m in test.items() if n not in NOT_COMPONENTS and not n.startswith("fusion")}
    components = {n: rounded(m) for n, m in components.items()}
    best = max(components, key=lambda n: components[n]["ndcg@20"])
    return {"served": rounded(served), "components": components, "best_component": best,
            "served_over_best_component": round(served["ndcg@20"] / max(components[best]["ndcg@20"], 1e-12), 4)}


def peers_figures(paths: list[Path], trained: dict) -> dict:
    """The peers of every file, each model's best figure across files (a longer rerun of one peer
    is a file of its own); files whose split differs from the product's are listed, not used."""
    mine = {"users": trained["n_users"], "items": trained["n_items"], "interactions": trained["n_interactions"]}
    peers: dict[str, dict] = {}
    sources, mismatched = [], []
    for path in paths:
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        split = data.get("split", {})
        name = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        if not all(split.get(k) == v for k, v in mine.items()):
            mismatched.append({"file": name, "split": {k: split.get(k) for k in mine}})
            continue
        sources.append(name)
        for model, m in data.get("models", {}).items():
            if "ndcg@20" in m and (model not in peers or m["ndcg@20"] > peers[model]["ndcg@20"]):
                peers[model] = rounded(m)
    best = max(peers, key=lambda n: peers[n]["ndcg@20"]) if peers else None
    return {"peers": peers, "best_peer": best, "peers_sources": sources, "peers_mismatched": mismatched,
            "product_split": mine}


def cold_split_records(source: dict, seed: int) -> tuple[list, list, dict, set]:
    """(products, kept events, each user's held-out last item, cold item ids): 10% of the items
    (seeded) held out of the events together with every user's last event."""
    import numpy as np

    products, events = source_records(source)
    rng = np.random.default_rng(seed)
    item_ids = sorted({str(p["external_id"]) for p in products})
    cold = set(rng.choice(item_ids, size=int(round(0.1 * len(item_ids))), replace=False).tolist())
    kept, held = [], {}
    for user, seq in by_user(events).items():
        if len(seq) < 2:
            continue
        held[user] = str(seq[-1]["product"])
        kept += [e for e in seq[:-1] if str(e["product"]) not in cold]
    return products, kept, held, cold


def cold_start_figures(model, held: dict, cold: set) -> dict:
    """Served Recall/NDCG of the held-out items, cold and warm targets apart (``model.score``: what
    serving ranks), with the model's exposure floor and, for comparison, without it."""
    import numpy as np
    import torch

    from recommender.metrics import evaluate

    user_index = {u: n for n, u in enumerate(model.user_ids)}
    item_index = {i: n for n, i in enumerate(model.item_ids)}
    users = [u for u in held if f"user:{u}" in user_index and f"product:{held[u]}" in item_index]
    rows = np.asarray([user_index[f"user:{u}"] for u in users])
    targets = np.full(len(model.user_ids), -1, dtype=np.int64)
    targets[rows] = [item_index[f"product:{held[u]}"] for u in users]
    history = model.history
    groups = {"cold": np.asarray([r for r, u in zip(rows, users) if held[u] in cold], dtype=np.int64),
              "warm": np.asarray([r for r, u in zip(rows, users) if held[u] not in cold], dtype=np.int64)}
    score = lambda u: model.score(u, [history[i] for i in u.tolist()])  # noqa: E731 - what serving ranks
    out = {"cold_targets": int(len(groups["cold"])), "warm_targets": int(len(groups["warm"]))}
    every = model.params.get("cold_every") or 0
    for name, value in (("served", every), ("without_floor", 0)):
        if name == "without_floor" and not every:
            continue
        model.params["cold_every"] = value
        with torch.no_grad():
            result = {g: rounded(evaluate(score, history, targets, users=idx)) for g, idx in groups.items()}
        out[name] = result
        out[f"{name}_cold_over_warm"] = round(result["cold"]["recall@20"] / max(result["warm"]["recall@20"], 1e-12), 4)
    model.params["cold_every"] = every
    return out


def cold_start(args, source: dict, tmp: Path) -> dict:
    """Hold out 10% of the items and every user's last event; rank the held-out events."""
    from recommender.training import TrainedModel

    products, kept, held, cold = cold_split_records(source, args.seed)
    shop = Shop(tmp / "cold")
    try:
        shop.setup()
        shop.import_source({"kg": source.get("kg"), "jsonl": str(write_jsonl(tmp / "cold.jsonl", products, kept))})
        shop.ingest()
        trained = shop.train(args.preset)
    finally:
        shop.close()
    figures_ = cold_start_figures(TrainedModel.load(trained["path"]), held, cold)
    result, ratio = figures_["served"], figures_["served_cold_over_warm"]
    log(f"cold start: cold recall@20 {result['cold']['recall@20']:.4f} warm {result['warm']['recall@20']:.4f} "
        f"ratio {ratio:.2f} ({figures_['cold_targets']} cold / {figures_['warm_targets']} warm targets)"
        + (f"; without the exposure floor {figures_['without_floor_cold_over_warm']:.2f}" if "without_floor" in figures_
           else ""))
    return {"preset": args.preset, "cold_items": len(cold), **figures_, "cold_over_warm": ratio}


def kg_ablation(args, source: dict, tmp: Path) -> dict:
    products, events = source_records(source)
    variants: dict[str, dict] = {}
    shop = Shop(tmp / "ablation")
    try:
        shop.setup()
        shop.import_source({"kg": source.get("kg"), "jsonl": str(write_jsonl(tmp / "all.jsonl", products, events))})
        shop.ingest()
        for name, extra in (("none", {"kg_relations": []}),
                            ("structured_only", {"kg_relations": ["HAS_BRAND", "IN_CATEGORY"]}),
                            ("everything", {})):
            trained = shop.train(args.ablation_preset, extra)
            variants[name] = figures(trained, None)["served"]
            log(f"kg ablation {name}: served ndcg@20 {variants[name]['ndcg@20']:.4f}")
    finally:
        shop.close()
    hidden = [{**p, "brand": "", "category_path": []} for p in products]
    shop = Shop(tmp / "ablation_text")
    try:
        shop.setup()
        shop.import_source({"kg": source.get("kg"), "jsonl": str(write_jsonl(tmp / "text.jsonl", hidden, events))})
        shop.ingest()
        variants["text_only"] = figures(shop.train(args.ablation_preset), None)["served"]
        log(f"kg ablation text_only: served ndcg@20 {variants['text_only']['ndcg@20']:.4f}")
    finally:
        shop.close()
    return {"preset": args.ablation_preset,
            **{k: variants[k] for k in ("none", "structured_only", "text_only", "everything")}}


def variants(args, source: dict, tmp: Path, result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.kg_ablation:
        result["kg_ablation"] = kg_ablation(args, source, tmp)
        out.write_text(json.dumps(result, indent=1))
    if args.cold_start:
        result["cold_start"] = cold_start(args, source, tmp)
        out.write_text(json.dumps(result, indent=1))
    for key in ("kg_ablation", "cold_start"):
        if key in result:
            print(f"{key}: {json.dumps(result[key])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="a directory with <Name>.item.json + <Name>.inter.json")
    src.add_argument("--jsonl", help="a generic JSONL file (products and events)")
    ap.add_argument("--preset", default=None, help="recommender preset (default: the product's default)")
    ap.add_argument("--peers-json", action="append", default=None,
                    help="bench/peers.py output on the same split (repeatable; default bench/results/peers_<dataset>*.json)")
    ap.add_argument("--kg", default=None, help="external knowledge to import with the catalogue (manage.py import_kg DIR)")
    ap.add_argument("--kg-ablation", action="store_true")
    ap.add_argument("--ablation-preset", default="fast")
    ap.add_argument("--cold-start", action="store_true")
    ap.add_argument("--variants-only", action="store_true",
                    help="run only --kg-ablation / --cold-start (written to ..._variants.json)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params", default="{}", help="TrainConfig overrides for every training (quick checks only)")
    ap.add_argument("--keep", default=None, help="keep the data directories under this path")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from recommender.presets import DEFAULT_PRESET

    args.preset = args.preset or DEFAULT_PRESET
    OVERRIDES.update(json.loads(args.params))
    source = {"dataset": str(Path(args.dataset).resolve())} if args.dataset else {"jsonl": str(Path(args.jsonl).resolve())}
    if args.kg:
        source["kg"] = str(Path(args.kg).resolve())
    name = Path(args.dataset).resolve().name if args.dataset else Path(args.jsonl).stem
    suffix = "_variants" if args.variants_only else ""
    out = Path(args.out or ROOT / "bench" / "results" / f"product_path_{name}_{args.preset}{suffix}.json")
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kms-product-path-"))
    result: dict = {"dataset": name, "preset": args.preset, "overrides": OVERRIDES, "date": time.strftime("%Y-%m-%d"),
                    "command": " ".join(["bench/product_path.py", *sys.argv[1:]])}
    try:
        if args.variants_only:
            variants(args, source, tmp, result, out)
            return
        shop = Shop(tmp / "shop")
        try:
            shop.setup()
            shop.import_source(source)
            shop.ingest()
            trained = shop.train(args.preset)
            try:
                evaluated = shop.evaluate(trained["version"])
            except RuntimeError as exc:  # an older checkout without `manage.py evaluate`
                log(f"evaluate unavailable, using the training run's test stage: {str(exc)[:200]}")
                evaluated = None
        finally:
            shop.close()
        result["stages"] = {k: round(shop.stages.get(k, 0.0), 1) for k in ("import_s", "ingest_s", "train_s", "evaluate_s")}
        result["stages_cpu"] = {k: round(shop.cpu.get(k, 0.0), 1) for k in result["stages"]}
        result.update(figures(trained, evaluated))
        result["fusion_choice"] = trained["metrics"]["valid"].get("fusion_choice")
        result["train_timings"] = trained.get("timings") or {}
        peer_files = ([Path(p) for p in args.peers_json] if args.peers_json
                      else sorted((ROOT / "bench" / "results").glob(f"peers_{name}*.json")))
        result.update(peers_figures(peer_files, trained))
        if result.get("best_peer"):
            result["ratio_to_best_peer"] = round(result["served"]["ndcg@20"] / result["peers"][result["best_peer"]]["ndcg@20"], 4)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))  # the main figures, before the longer variants
        variants(args, source, tmp, result, out)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{name}, preset {args.preset}: stages {result['stages']}")
    print(f"{'model':24s} {'R@10':>7s} {'R@20':>7s} {'N@10':>7s} {'N@20':>7s}")
    rows = {"served": result["served"], **result["components"],
            **{f"peer {n}": m for n, m in result.get("peers", {}).items()}}
    for n, m in rows.items():
        print(f"{n:24s} " + " ".join(f"{m.get(k, float('nan')):7.4f}" for k in METRICS))
    print(f"best component {result['best_component']}: served/best = {result['served_over_best_component']}")
    if "ratio_to_best_peer" in result:
        print(f"best peer {result['best_peer']}: served/best peer = {result['ratio_to_best_peer']}")
    for bad in result.get("peers_mismatched", []):
        print(f"not used (split {bad['split']} != product's {result['product_split']}): {bad['file']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
