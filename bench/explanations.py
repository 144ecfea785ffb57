"""Explanations a shopper would accept: draw a seeded random sample of served explanations, and
score the committed human labels of it (one command).

    .venv/bin/python bench/explanations.py [--dataset DIR | --jsonl FILE] [--data-dir DIR]
        [--n 75] [--seed 0] [--k 3] [--coverage-users 300] [--score-only]

The model comes through the product path: a data dir (SQLite, local ArcadeDB, models; default
bench/work/explanations-<dataset>, reused while it has an active model) gets
``manage.py import_catalogue`` (``--scientific DIR`` for a Scientific-format dir, or the JSONL
file), ``manage.py ingest``, the events pushed to the graph, and ``manage.py train`` with a small
configuration (TRAIN_PARAMS). Then random users (seeded) are asked for their top-k through the
API's own read path (``kms.api.serving.recommend(..., explain=True)``: product rows from its
cache, the explainer the API serves) until at least --n items carry an explanation. Each
explained item is written with what a judge needs (the user's history titles, the recommended
product's and the named history product's title, brand, categories and text excerpt, the
sentence and its graph path) to bench/gold/explanations/sample_<dataset>[_seed<N>].jsonl, and
coverage (explained / recommended over all drawn users' top-k) beside it in a .meta.json, with
the same share over --coverage-users users of the same seeded order (a tighter estimate).

If labels_<dataset>[_seed<N>].jsonl exists there (one line per sample key: true, informative,
readable; judged against the text), the figures are printed and written to
bench/results/explanations.json (seed 0) as {"n", "true", "informative", "readable", "good",
"coverage"}; a label whose judged sentence differs from the sample's is not counted.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
GOLD = ROOT / "bench" / "gold" / "explanations"
TRAIN_PARAMS = {"components": ["popularity", "itemcf", "entitycf"], "fusion": ["itemcf"], "seed": 0}
EXCERPT = 400


def sh(args, env) -> None:
    print("$", " ".join(map(str, args)), flush=True)
    subprocess.run(args, cwd=ROOT, env=env, check=True)


def bench_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "NEO4J_URI")}
    return env | {"KMS_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "kms.settings", "PYTHONPATH": str(ROOT),
                  "KMS_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"}


def has_active_model(env) -> bool:
    out = subprocess.run([PY, "-c", "import django; django.setup()\nfrom kms.recs.services import active_version\n"
                          "print(bool(active_version()))"], cwd=ROOT, env=env, capture_output=True, text=True)
    return out.returncode == 0 and out.stdout.strip().endswith("True")


def graph_server_running(data_dir: Path) -> bool:
    try:
        os.kill(json.loads((data_dir / "arcadedb" / "server.json").read_text())["pid"], 0)
        return True
    except (OSError, ValueError, KeyError):
        return False


def prepare(env, dataset: Path | None, jsonl: Path | None) -> None:
    sh([PY, "manage.py", "migrate", "-v", "0"], env)
    if has_active_model(env):
        print("reusing the data dir's active model")
        return
    source = ["--scientific", str(dataset)] if jsonl is None else [str(jsonl)]
    sh([PY, "manage.py", "import_catalogue", *source], env)
    sh([PY, "manage.py", "ingest"], env)
    sh([PY, "-c", "import django; django.setup()\nfrom kms.events.services import push_interactions_to_graph\n"
                  "print('events pushed:', push_interactions_to_graph())"], env)
    sh([PY, "manage.py", "train", "--params", json.dumps(TRAIN_PARAMS)], env)


def _excerpt(text: str) -> str:
    text = " ".join(html.unescape(text or "").split())
    return text if len(text) <= EXCERPT else text[:EXCERPT].rsplit(" ", 1)[0] + " …"


def draw(n: int, seed: int, k: int, coverage_users: int = 0) -> tuple[list[dict], dict]:
    """Explained (user, item) records and the coverage counts, through the API's read path."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from kms.api import serving
    from kms.catalogue.models import Product
    from kms.recs import services as recs

    index = recs.index_cache.get()
    if index is None:
        raise SystemExit("no active model version in this data dir")
    users = sorted(uid.split(":", 1)[1] for uid in index.model.user_ids)
    random.Random(seed).shuffle(users)

    def product(ext: str) -> dict:
        p = Product.objects.get(external_id=ext)
        return {"product": ext, "title": p.title, "brand": p.brand, "categories": p.category_path,
                "text": _excerpt(p.description)}

    records, recommended, drawn = [], 0, 0
    for user in users:
        if len(records) >= n:
            break
        drawn += 1
        result = serving.recommend(user, k=k, category=None, exclude_seen=True, explain=True)
        history = recs.user_history(user)
        titles = dict(Product.objects.filter(external_id__in=[h.split(":", 1)[1] for h in history])
                      .values_list("external_id", "title"))
        for rank, item in enumerate(result["items"], 1):
            recommended += 1
            why = item.get("explanation")
            if not why or not why.get("text"):
                continue
            via = next((node["id"].split(":", 2)[-1] for node in why["nodes"][1:-1] if node["kind"] == "item"), None)
            records.append({
                "key": f"{user}|{item['product']}", "user": user, "rank": rank,
                "history": [titles.get(h.split(":", 1)[1], "") for h in history][-10:],
                "item": product(item["product"]),
                "via": product(via) if via else None,
                "explanation": why["text"], "kind": why["kind"], "path": {"nodes": why["nodes"], "edges": why["edges"]},
            })
    # the same share over more users of the same seeded order: a tighter estimate, not judged
    wide_recommended, wide_explained = recommended, len(records)
    for user in users[drawn:max(drawn, coverage_users)]:
        for item in serving.recommend(user, k=k, category=None, exclude_seen=True, explain=True)["items"]:
            wide_recommended += 1
            wide_explained += bool((item.get("explanation") or {}).get("text"))
    meta = {"seed": seed, "k": k, "users": drawn, "recommended": recommended, "explained": len(records),
            "coverage": round(len(records) / recommended, 4) if recommended else 0.0,
            "coverage_wide": {"users": max(drawn, coverage_users), "recommended": wide_recommended,
                              "coverage": round(wide_explained / wide_recommended, 4) if wide_recommended else 0.0},
            "model_version": recs.index_cache.version_id, "train_params": TRAIN_PARAMS}
    return records, meta


def score(sample: list[dict], labels: list[dict], coverage: float) -> dict:
    judged = {lab["key"]: lab for lab in labels}
    rows = [(rec, judged.get(rec["key"])) for rec in sample]
    counted = [lab for rec, lab in rows if lab is not None and lab.get("explanation") == rec["explanation"]]
    n = len(counted)
    share = lambda f: round(sum(1 for lab in counted if f(lab)) / n, 4) if n else 0.0
    return {"n": n, "true": share(lambda x: x["true"]), "informative": share(lambda x: x["informative"]),
            "readable": share(lambda x: x["readable"]),
            "good": share(lambda x: x["true"] and x["informative"] and x["readable"]),
            "coverage": coverage, "unlabelled": len(sample) - n}


def main() -> None:
    parser = argparse.ArgumentParser()
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", type=Path, default=None, help="Scientific-format dir (item.json + inter.json)")
    source.add_argument("--jsonl", type=Path, default=None, help="generic JSONL of products and events")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--n", type=int, default=75)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--coverage-users", type=int, default=300,
                        help="also measure coverage over this many users of the same order (not judged)")
    parser.add_argument("--score-only", action="store_true", help="score the committed sample and labels")
    args = parser.parse_args()
    if args.jsonl is None and args.dataset is None:
        args.dataset = ROOT.parent / "shared" / "datasets" / "amazon-scientific"
    name = (args.jsonl.stem if args.jsonl else args.dataset.resolve().name) + ("" if args.seed == 0 else f"_seed{args.seed}")
    sample_path, meta_path = GOLD / f"sample_{name}.jsonl", GOLD / f"sample_{name}.meta.json"

    if not args.score_only:
        data_dir = args.data_dir or ROOT / "bench" / "work" / f"explanations-{name.split('_seed')[0]}"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = bench_env(data_dir)
        graph_was_running = graph_server_running(data_dir)
        try:
            prepare(env, args.dataset, args.jsonl)
            os.environ.update(env)
            records, meta = draw(args.n, args.seed, args.k, args.coverage_users)
        finally:
            if not graph_was_running and graph_server_running(data_dir):  # the one ingestion started
                subprocess.run([PY, "manage.py", "graphserver", "stop"], cwd=ROOT, env=env, check=False)
        GOLD.mkdir(parents=True, exist_ok=True)
        sample_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        print(f"{len(records)} explanations from {meta['users']} users -> {sample_path.relative_to(ROOT)}; "
              f"coverage {meta['coverage']:.3f} ({meta['explained']}/{meta['recommended']}); over "
              f"{meta['coverage_wide']['users']} users {meta['coverage_wide']['coverage']:.3f}")

    sample = [json.loads(line) for line in sample_path.read_text().splitlines() if line.strip()]
    meta = json.loads(meta_path.read_text())
    labels_path = GOLD / f"labels_{name}.jsonl"
    if not labels_path.exists():
        print(f"no labels yet ({labels_path.relative_to(ROOT)}): judge the sample, then run with --score-only")
        return
    labels = [json.loads(line) for line in labels_path.read_text().splitlines() if line.strip()]
    result = score(sample, labels, meta["coverage"])
    result["coverage_wide"] = meta.get("coverage_wide")
    print(json.dumps(result, indent=2))
    if result["unlabelled"]:
        print(f"WARNING: {result['unlabelled']} sampled explanations have no label for their current sentence")
    if args.seed == 0:
        out = ROOT / "bench" / "results" / "explanations.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print("->", out.relative_to(ROOT))


if __name__ == "__main__":
    main()
