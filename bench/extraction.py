"""Brand / category-leaf extraction benchmark on any catalogue with brand and category fields (one command).

    .venv/bin/python bench/extraction.py --dataset DIR | --jsonl FILE [--n-iter N]

Writes bench/results/extraction_<dataset>.json (dataset: the directory's name or the JSONL
file's stem).

80/20 split by a hash of the item id; the NER, category classifier and the rule KB see the
train part only. On the held-back part brand and categories are hidden and facts are
extracted from title + description alone.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp import KnowledgeBase, build_pipeline, extract  # noqa: E402
from bench.datasets import catalogue_products, dataset_name  # noqa: E402
from nlp import ProductText  # noqa: E402
from nlp.lexicons import NON_BRANDS  # noqa: E402
from nlp.normalize import entity_key, fold, split_category_path  # noqa: E402
from nlp.training import split_of, train_ner, weak_spans  # noqa: E402


def gold_brand(kb: KnowledgeBase, brand: str) -> str | None:
    if not brand or fold(brand) in NON_BRANDS:
        return None
    return kb.link("BRAND", brand) or entity_key("BRAND", brand)


def prf(pred: list, gold: list) -> tuple[float, float, float]:
    tp = sum(p is not None and p == g for p, g in zip(pred, gold))
    n_pred = sum(p is not None for p in pred)
    n_gold = sum(g is not None for g in gold)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def dictionary_baseline(train_brands: list[str], products) -> list[str | None]:
    """Exact (case-sensitive) string match of train brand names; earliest, then longest."""
    names = sorted({b for b in train_brands if b and fold(b) not in NON_BRANDS}, key=len,
                   reverse=True)
    rx = re.compile(r"(?<![\w])(" + "|".join(re.escape(n) for n in names) + r")(?![\w])")
    out = []
    for p in products:
        hit = rx.search(p.title) or rx.search(p.description or "")
        out.append(entity_key("BRAND", hit.group(1)) if hit else None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="DIR", help="an Amazon dump (<Name>.item.json + .inter.json)")
    source.add_argument("--jsonl", metavar="FILE", help="the generic JSONL (README)")
    parser.add_argument("--n-iter", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse-model", action="store_true",
                        help="evaluate the artefact already in bench/work (no training)")
    args = parser.parse_args()
    started = time.time()
    name = dataset_name(args.dataset, args.jsonl)
    products = [ProductText(uid=p["external_id"], title=p["title"], description=p["description"], brand=p["brand"],
                            categories=p["category_path"]) for p in catalogue_products(args.dataset, args.jsonl)]
    train = [p for p in products if split_of(p.uid, 0.2, salt="bench") == "train"]
    held = [p for p in products if split_of(p.uid, 0.2, salt="bench") == "dev"]
    model_dir = ROOT / "bench" / "work" / f"extraction-model-{name}"
    if args.reuse_model:
        ner_scores = json.loads((model_dir / "meta.json").read_text())["dev_scores"]
    else:
        ner_scores = train_ner(train, model_dir, n_iter=args.n_iter, seed=args.seed)
    train_seconds = time.time() - started

    kb = KnowledgeBase.from_products(train)  # train part only: no held-back gold in the rules
    gold_brands = [gold_brand(kb, p.brand) for p in held]
    gold_leaves = [entity_key("PRODUCT_TYPE", split_category_path(p.categories)[-1])
                   if split_category_path(p.categories) else None for p in held]
    hidden = [replace(p, brand="", categories=[]) for p in held]

    def run(pipe):
        brands, leaves = [], []
        t0 = time.time()
        for res in extract(pipe, hidden, batch_size=64, use_structured=False):
            brand = next((f.object_key for f in res.facts if f.relation == "HAS_BRAND"), None)
            cat = next((f for f in res.facts if f.relation == "IN_CATEGORY"), None)
            ptype = next((f for f in res.facts if f.relation == "IS_PRODUCT_TYPE"), None)
            leaf = (entity_key("PRODUCT_TYPE", cat.object_name) if cat
                    else ptype.object_key if ptype else None)
            brands.append(brand)
            leaves.append(leaf)
        return brands, leaves, time.time() - t0

    brands, leaves, seconds = run(build_pipeline(kb, model_dir))
    rule_brands, rule_leaves, _ = run(build_pipeline(kb))
    p, r, f = prf(brands, gold_brands)
    rp, rr, rf = prf(rule_brands, gold_brands)
    bp, br, bf = prf(dictionary_baseline([x.brand for x in train], held), gold_brands)
    with_leaf = [(pl, gl) for pl, gl in zip(leaves, gold_leaves) if gl is not None]
    rule_leaf = [(pl, gl) for pl, gl in zip(rule_leaves, gold_leaves) if gl is not None]
    in_text = sum(any(s[2] == "BRAND" for s in weak_spans(x, x.title + " " + x.description))
                  for x, g in zip(held, gold_brands) if g is not None)
    # What any extractor could reach here: a brand is findable only if the text writes it or the
    # training part has it (so a learned cue/classifier could name it); a leaf only if the
    # training part has it (the classifier picks among known paths).
    train_brands = {gold_brand(kb, x.brand) for x in train} - {None}
    written = [any(s[2] == "BRAND" for s in weak_spans(x, x.title + " " + x.description)) for x in held]
    findable = sum(w or g in train_brands for w, g in zip(written, gold_brands) if g is not None)
    # where the errors are: products by (brand written in the text?, brand seen in training?) and outcome
    outcomes: dict[str, dict[str, int]] = {}
    for w, g, pred in zip(written, gold_brands, brands):
        if g is None:
            continue
        group = ("written" if w else "not-written") + (", seen" if g in train_brands else ", unseen")
        outcome = "none" if pred is None else "right" if pred == g else "wrong"
        outcomes.setdefault(group, {"right": 0, "wrong": 0, "none": 0})[outcome] += 1
    n_gold = max(1, sum(g is not None for g in gold_brands))
    recall_ceiling = findable / n_gold
    train_leaves = {entity_key("PRODUCT_TYPE", split_category_path(x.categories)[-1])
                    for x in train if split_category_path(x.categories)}
    leaf_ceiling = sum(gl in train_leaves for _, gl in with_leaf) / max(1, len(with_leaf))
    results = {
        "dataset": name,
        "brand_precision": round(p, 4),
        "brand_recall": round(r, 4),
        "brand_f1": round(f, 4),
        "category_leaf_accuracy": round(sum(a == b for a, b in with_leaf) / len(with_leaf), 4),
        "baseline_brand_f1": round(bf, 4),
        "n_eval_products": len(held),
        "baseline_brand_precision": round(bp, 4),
        "baseline_brand_recall": round(br, 4),
        "rules_only_brand_precision": round(rp, 4),
        "rules_only_brand_recall": round(rr, 4),
        "rules_only_brand_f1": round(rf, 4),
        "rules_only_category_leaf_accuracy": round(
            sum(a == b for a, b in rule_leaf) / len(rule_leaf), 4),
        "n_eval_with_gold_brand": sum(g is not None for g in gold_brands),
        "n_eval_with_gold_leaf": len(with_leaf),
        "gold_brand_in_text_share": round(in_text / max(1, sum(g is not None for g in gold_brands)), 4),
        "brand_outcomes_by_evidence": outcomes,
        "brand_recall_ceiling": round(recall_ceiling, 4),
        "brand_f1_ceiling": round(2 * recall_ceiling / (1 + recall_ceiling), 4),
        "category_leaf_accuracy_ceiling": round(leaf_ceiling, 4),
        "n_train_products": len(train),
        "ner_dev_weak_label_f1": round(ner_scores["f1"], 4),
        "ner_version": ner_scores["version"],
        "brand_dev_f1": ner_scores.get("brand_dev_f1"),
        "brand_thresholds": ner_scores.get("brand_thresholds"),
        "brand_rules_dev_f1": ner_scores.get("brand_rules_dev_f1"),
        "brand_ranker_threshold": ner_scores.get("brand_ranker_threshold"),
        "category_dev_leaf_accuracy": ner_scores.get("category_accuracy"),
        "category_name_bonus": ner_scores.get("category_name_bonus"),
        "category_tree_weight": ner_scores.get("category_tree_weight"),
        "n_iter": args.n_iter,
        "train_seconds": None if args.reuse_model else round(train_seconds, 1),
        "extract_seconds": round(seconds, 2),
        "extract_products_per_second": round(len(held) / seconds, 1),
    }
    out = ROOT / "bench" / "results" / f"extraction_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for k, v in results.items():
        print(f"{k:40s} {v}")


if __name__ == "__main__":
    main()
