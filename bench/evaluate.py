"""Amazon-Scientific under the standard protocol (shared/datasets/README.md).

    .venv/bin/python bench/evaluate.py            # every component + the fusion
    .venv/bin/python bench/evaluate.py --quick    # popularity, item-CF, LightGCN, fusion
    .venv/bin/python bench/evaluate.py --cold-start

Prints Recall@10/20 and NDCG@10/20 on the test targets of all 8,317 users, the training
seconds of each component, and writes bench/results/evaluate_scientific.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.data import load_scientific  # noqa: E402
from recommender.knowledge import catalogue_triples, with_entities  # noqa: E402
from recommender.training import TrainConfig, train  # noqa: E402

QUICK = dict(components=("popularity", "itemcf", "lightgcn"), fusion=("itemcf", "lightgcn"))
FULL = dict(
    components=("popularity", "itemcf", "itemcf_recent", "usercf", "bprmf", "lightgcn", "kgcn", "sasrec", "kgsasrec"),
    fusion=("itemcf_recent", "usercf", "lightgcn", "kgcn", "sasrec", "kgsasrec"),
    fusion_ablations=(
        ("itemcf_recent", "usercf", "lightgcn", "sasrec"),  # same fusion without the knowledge graph
        ("usercf", "kgsasrec"),
        ("kgcn", "kgsasrec"),
    ),
)


def table(metrics: dict[str, dict[str, float]], timings: dict[str, float]) -> str:
    lines = ["| model | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | train s |", "|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        t = timings.get(name)
        lines.append(f"| {name} | {m['recall@10']:.4f} | {m['recall@20']:.4f} | {m['ndcg@10']:.4f} | "
                     f"{m['ndcg@20']:.4f} | {'' if t is None else f'{t:.1f}'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Phase-1 set: popularity, item-CF, LightGCN, fusion")
    ap.add_argument("--cold-start", action="store_true", help="hold out 10%% of items, report cold vs warm")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared box)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-refit", action="store_true",
                    help="test the components trained on train only (default for the full set: refit on train + "
                         "valid for the epochs chosen on validation, as the datasets README allows)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "evaluate_scientific.json"))
    args = ap.parse_args()

    data, items = load_scientific()
    data = with_entities(data, catalogue_triples(items))
    preset = QUICK if args.quick else FULL
    refit = not args.quick and not args.cold_start and not args.no_refit
    cfg = TrainConfig(**preset, threads=args.threads, device=args.device, seed=args.seed, refit=refit)
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
    print(f"\nAmazon-Scientific, test (history = train + valid), {data.n_users} users, wall {wall:.0f}s")
    print(table(test, model.timings))
    print(f"fusion weights (chosen on validation): {model.weights.active()}")
    result = {
        "dataset": "amazon-scientific", "protocol": "leave-last-out, full ranking, history masked",
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
