#!/usr/bin/env python
"""Put our recommender's figures next to the peers' and check the issue's bars (one command).

    .venv/bin/python bench/recommender_report.py

Reads what the committed benchmarks wrote on this machine — bench/evaluate.py
(bench/results/evaluate_scientific.json, incl. its --cold-start part) and bench/peers.py
(bench/results/peers_scientific.json), same split, same metrics module — prints the table and
writes bench/results/recommender_scientific.json in the issue's shape.
"""
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
OURS = "fusion"


def first_time_reaching(curve, level):
    """Seconds at which a [(epoch, seconds, ndcg)] or [(seconds, ndcg)] curve first reaches ``level``."""
    for point in curve:
        seconds, ndcg = (point[1], point[2]) if len(point) == 3 else (point[0], point[1])
        if ndcg >= level:
            return seconds
    return None


def main():
    ours = json.loads((RESULTS / "evaluate_scientific.json").read_text())
    # every peer run on this machine: the main run plus reruns with longer budgets
    peer_files = sorted(RESULTS.glob("peers_scientific*.json"))
    models = {}
    for name, m in ours["models"].items():
        if "[" in name:  # ablations
            continue
        models[name] = {"recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"],
                        "train_seconds": ours["train_seconds"].get(name), "peer": False}
    components = [n for n in ours.get("fusion_weights", {})]
    models[OURS]["train_seconds"] = round(sum(ours["train_seconds"].get(n, 0.0) for n in components)
                                          + ours["train_seconds"].get("fusion_search", 0.0), 1)
    for path in peer_files:
        suffix = path.stem.removeprefix("peers_scientific").strip("_")
        for name, m in json.loads(path.read_text())["models"].items():
            models[f"peer:{name}" + (f" ({suffix})" if suffix else "")] = {
                "recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"], "train_seconds": m.get("train_seconds"),
                "peer": True, "valid_ndcg@20": m.get("valid_ndcg@20"),
                "seconds_to_best_valid": m.get("seconds_to_best_valid")}
    best_peer = max((n for n in models if models[n]["peer"]), key=lambda n: models[n]["ndcg@20"])
    best_valid_peer = max((n for n in models if models[n]["peer"]), key=lambda n: models[n].get("valid_ndcg@20") or 0)
    ratio = models[OURS]["ndcg@20"] / models[best_peer]["ndcg@20"]

    # speed: when does our best single component reach the best peer's validation NDCG@20?
    target = models[best_valid_peer]["valid_ndcg@20"]
    peer_seconds = models[best_valid_peer]["seconds_to_best_valid"]
    reach = {n: first_time_reaching(info.get("curve", []), target) for n, info in ours.get("fit_info", {}).items()}
    reach = {n: s for n, s in reach.items() if s is not None}
    fastest = min(reach, key=reach.get) if reach else None

    cold = ours.get("cold_start", {}).get("models", {})
    served_name = "fusion_calibrated" if "fusion_calibrated" in cold else "fusion"  # what TrainedModel.score serves
    served_cold = cold.get(served_name) or {}
    best_cold = max(cold, key=lambda n: cold[n].get("cold_over_warm", 0.0)) if cold else None
    report = {
        "ours": OURS, "models": models,
        "best_peer": best_peer, "ndcg@20_over_best_peer": round(ratio, 3),
        "speed": {"best_valid_peer": best_valid_peer, "peer_valid_ndcg@20": target,
                  "peer_seconds_to_best_valid": peer_seconds, "ours_component": fastest,
                  "ours_seconds_to_reach": reach.get(fastest),
                  "ratio": round(reach[fastest] / peer_seconds, 3) if fastest and peer_seconds else None},
        "cold_start": {"recall@20_cold": (served_cold.get("cold") or {}).get("recall@20"),
                       "recall@20_warm": (served_cold.get("warm") or {}).get("recall@20"),
                       "served_model": served_name,
                       "best_component": best_cold,
                       "best_component_recall@20_cold": cold[best_cold]["cold"]["recall@20"] if best_cold else None,
                       "best_component_recall@20_warm": cold[best_cold]["warm"]["recall@20"] if best_cold else None},
        "sources": ["bench/results/evaluate_scientific.json"] + [f"bench/results/{p.name}" for p in peer_files],
    }
    (RESULTS / "recommender_scientific.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'model':36s} {'Recall@20':>9s} {'NDCG@20':>8s} {'train s':>8s}")
    for name, m in sorted(models.items(), key=lambda kv: -kv[1]["ndcg@20"]):
        ts = m["train_seconds"]
        print(f"{name:36s} {m['recall@20']:9.4f} {m['ndcg@20']:8.4f} {(f'{ts:.0f}' if ts is not None else ''):>8}")
    print(f"\nours ({OURS}) / best peer ({best_peer}) NDCG@20 = {ratio:.3f} (bar: >= 1.15)")
    s = report["speed"]
    print(f"best peer on validation: {best_valid_peer} {target:.4f} after {peer_seconds:.0f}s; "
          f"ours ({fastest}) reaches it after {s['ours_seconds_to_reach']}s -> ratio {s['ratio']} (bar: <= 0.5)")
    c = report["cold_start"]
    print(f"cold start, served {c['served_model']}: Recall@20 cold {c['recall@20_cold']} vs warm {c['recall@20_warm']}; "
          f"best component {best_cold}: {c['best_component_recall@20_cold']} vs {c['best_component_recall@20_warm']}")


if __name__ == "__main__":
    main()
