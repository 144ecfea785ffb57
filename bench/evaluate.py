"""A product preset under the standard protocol (shared/datasets/README.md), from the dataset files.

    .venv/bin/python bench/evaluate.py                    # the `best` preset, what a shop trains by default
    .venv/bin/python bench/evaluate.py --preset fast      # what the demo trains
    .venv/bin/python bench/evaluate.py --ablations        # + fusions over subsets of the components
    .venv/bin/python bench/evaluate.py --cold-start
    .venv/bin/python bench/evaluate.py --dataset DIR | --jsonl FILE [--preset P]   # any catalogue

The configurations are the product's (recommender/presets.py), so this benchmark and
`manage.py train` cannot drift; the knowledge is the catalogue's brand and category fields,
keyed as the product keys them. What the product itself reaches (graph built by ingestion,
management commands) is bench/product_path.py. Prints Recall@10/20 and NDCG@10/20 on the test
targets of every user and the training seconds of each component; writes
bench/results/evaluate_<dataset>[_<preset>].json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.datasets import dataset_name, load_catalogue  # noqa: E402
from recommender.knowledge import catalogue_triples, with_entities  # noqa: E402
from recommender.presets import DEFAULT_PRESET, config_from_params, preset_names  # noqa: E402
from recommender.training import train  # noqa: E402

ABLATIONS = (
    ("itemcf_recent", "usercf", "lightgcn", "sasrec"),  # the fusion without the knowledge graph
    ("usercf", "kgsasrec"),
    ("kgcn", "kgsasrec"),
)


def bench_config(preset: str, threads: int = 1, device: str = "auto", seed: int = 0, ablations: bool = False,
                 refit: bool | None = None):
    """The preset exactly as the product trains it, plus only what a benchmark run chooses (threads,
    device, seed, reported ablations); tests/recommender/test_presets.py checks they agree."""
    params = {"preset": preset, "threads": threads, "device": device, "seed": seed}
    if refit is not None:
        params["refit"] = refit
    cfg = config_from_params(params)
    if ablations:
        from dataclasses import replace

        cfg = replace(cfg, fusion_ablations=tuple(a for a in ABLATIONS if set(a) <= set(cfg.fusion)))
    return cfg


def table(metrics: dict[str, dict[str, float]], timings: dict[str, float]) -> str:
    lines = ["| model | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | train s |", "|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        t = timings.get(name)
        lines.append(f"| {name} | {m['recall@10']:.4f} | {m['recall@20']:.4f} | {m['ndcg@10']:.4f} | "
                     f"{m['ndcg@20']:.4f} | {'' if t is None else f'{t:.1f}'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, help="a directory with <Name>.item.json + <Name>.inter.json "
                     "(or ml-100k's atomic files); default ../shared/datasets/amazon-scientific")
    src.add_argument("--jsonl", default=None, help="a generic JSONL file (products and events)")
    ap.add_argument("--preset", choices=preset_names(), default=DEFAULT_PRESET)
    ap.add_argument("--ablations", action="store_true", help="also report fusions over subsets of the components")
    ap.add_argument("--cold-start", action="store_true", help="hold out 10%% of items, report cold vs warm")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared box)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-refit", action="store_true", help="test the components trained on train only")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    if not (args.dataset or args.jsonl):
        args.dataset = str(ROOT.parent / "shared" / "datasets" / "amazon-scientific")
    data, items = load_catalogue(args.dataset, args.jsonl)
    data = with_entities(data, catalogue_triples(items))
    dataset = dataset_name(args.dataset, args.jsonl)
    suffix = "" if args.preset == DEFAULT_PRESET else f"_{args.preset}"
    args.out = args.out or str(ROOT / "bench" / "results" / f"evaluate_{dataset}{suffix}.json")
    cfg = bench_config(args.preset, args.threads, args.device, args.seed, args.ablations,
                       refit=False if (args.no_refit or args.cold_start) else None)
    if args.cold_start:
        from recommender.coldstart import cold_start_experiment

        result = cold_start_experiment(data, cfg)
        print(json.dumps(result, indent=1))
        # Stored beside the main figures, under "cold_start", leaving them untouched.
        out = Path(args.out)
        merged = json.loads(out.read_text()) if out.exists() else {"models": {}}
        merged["cold_start"] = result
        out.write_text(json.dumps(merged, indent=1))
        print(f"wrote {out} (cold_start)")
        return

    start = time.perf_counter()
    model = train(data, cfg)
    wall = time.perf_counter() - start
    test = model.metrics["test"]
    print(f"\n{dataset}, test (history = train + valid), {data.n_users} users, wall {wall:.0f}s")
    print(table(test, model.timings))
    print(f"fusion weights (chosen on validation): {model.weights.active()}")
    result = {
        "dataset": dataset, "preset": args.preset, "protocol": "leave-last-out, full ranking, history masked",
        "models": {n: {k: round(v, 6) for k, v in m.items()} for n, m in test.items()},
        "valid": {n: {k: (round(v, 6) if isinstance(v, float) else v) for k, v in m.items()}
                  for n, m in model.metrics["valid"].items()},
        "train_seconds": {k: round(v, 2) for k, v in model.timings.items()},
        "fusion_weights": model.weights.weights,
        "fit_info": {n: getattr(c, "fit_info", {}) for n, c in model.components.items() if getattr(c, "fit_info", None)},
        "wall_seconds": round(wall, 1),
        "config": model.params,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and "cold_start" in (previous := json.loads(out.read_text())):
        result["cold_start"] = previous["cold_start"]  # written by --cold-start runs; keep it
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
