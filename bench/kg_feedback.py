"""How the acceptor's precision/F1 moves with N curated facts (one command).

    .venv/bin/python bench/kg_feedback.py [--dataset DIR] [--gold DIR] [--seeds 5]

Uses the calibration labels only (never the gold products reported by bench/kg_precision.py). The
calibration products are split again by a hash of the product id: fold A plays the curators (their
labels become approvals and rejections, in random order: curators here do not pick which facts to
judge), fold B is held out. For N = 0, 25, 50, … curated facts from A, the acceptor starts from no
labels and learns from those N decisions (``Acceptor.fit``: the counts ``train_nlp`` adds with
``Acceptor.with_feedback`` for the portal's decisions, plus the cue switches); on B we report the precision of the facts it lets reach ``auto``
(partial = not correct), their recall (share of B's correct facts kept auto) and F1, micro-averaged
over relations, mean of ``--seeds`` orders. Writes bench/results/kg_feedback.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.kg_precision import DATASET, GOLD, load_catalogue, matched, read_rows  # noqa: E402
from nlp import KnowledgeBase, ProductText, build_pipeline, extract  # noqa: E402
from nlp.acceptance import Acceptor  # noqa: E402

OUT = ROOT / "bench" / "results" / "kg_feedback.json"


def fold(product: str) -> str:
    return "A" if int(hashlib.sha1(f"kg-feedback:{product}".encode()).hexdigest()[:8], 16) % 2 else "B"


def score(acceptor: Acceptor, held: list) -> dict:
    auto = correct = total_correct = 0
    for f, cues, ok in held:
        total_correct += ok
        p = acceptor.confidence(f, cues)
        if p is not None and p >= acceptor.threshold(f.relation):
            auto += 1
            correct += ok
    precision = correct / auto if auto else 0.0
    recall = correct / total_correct if total_correct else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"auto": auto, "precision": precision, "recall": recall, "f1": f1}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--gold", type=Path, default=GOLD)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    rows = read_rows(args.gold / "calibration.jsonl")
    kb = KnowledgeBase.from_products(load_catalogue(args.dataset))
    pipe = build_pipeline(kb)
    products = {r["product"]: ProductText(uid=r["product"], title=r["product_text"]["title"],
                                          description=r["product_text"]["description"], brand=r["product_text"]["brand"],
                                          categories=list(r["product_text"]["categories"])) for r in rows}
    extracted = {r.product_uid: r.facts for r in extract(pipe, list(products.values()), accept=False)}
    examples = {"A": [], "B": []}
    for row, f, cues in matched(rows, extracted):
        if f is not None:
            examples[fold(row["product"])].append((f, cues, row["label"] == "correct"))
    relations = sorted({f.relation for f, _, _ in examples["A"] + examples["B"]})
    # the cue switches are learned with the counts; start from none so N = 0 means "nothing learned"
    steps = [n for n in (0, 25, 50, 100, 150, 200, 250, 300, 400) if n <= len(examples["A"])]
    if steps[-1] != len(examples["A"]):
        steps.append(len(examples["A"]))
    curve = []
    for n in steps:
        runs = []
        for seed in range(args.seeds):
            pool = examples["A"][:]
            random.Random(seed).shuffle(pool)
            base = Acceptor.fit(pool[:n], thresholds={r: args.threshold for r in relations})
            runs.append(score(base, examples["B"]))
        curve.append({"curated": n, **{k: round(statistics.mean(r[k] for r in runs), 4) for k in runs[0]}})
    result = {"curve": curve, "fold_A": len(examples["A"]), "fold_B": len(examples["B"]), "seeds": args.seeds,
              "threshold": args.threshold,
              "notes": "calibration labels only; fold A simulates curator decisions in random order, fold B is "
                       "held out; precision counts partial as not correct; micro over relations"}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"fold A (simulated curators) {len(examples['A'])} facts, fold B (held out) {len(examples['B'])}")
    print(f"{'curated':>7s} {'auto':>6s} {'prec':>6s} {'recall':>6s} {'F1':>6s}")
    for c in curve:
        print(f"{c['curated']:7d} {c['auto']:6.1f} {c['precision']:6.3f} {c['recall']:6.3f} {c['f1']:6.3f}")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
