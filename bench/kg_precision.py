"""Precision of the knowledge graph's automatic facts, per relation, on the labelled gold set (one command).

    .venv/bin/python bench/kg_precision.py [--dataset DIR] [--gold DIR] [--no-save-acceptor]

``--dataset``: a catalogue directory with one ``*.item.json`` (``{"<id>": {title, description, brand,
categories}}``); its structured fields build the knowledge base, as ingestion does. ``--gold``:
``calibration.jsonl`` and ``gold.jsonl`` (``bench/gold/precision``, README there). The products of
both files are extracted with the product's pipeline; the acceptor (``nlp.acceptance``) is fitted on
the calibration products' labels only and saved as the pipeline's default (``nlp/data/acceptor.json``);
then on the gold products (another half of the catalogue by a hash of the product id) each labelled
fact gets its calibrated confidence and status. Only facts that reach ``auto`` count for precision;
``partial`` counts as not correct. ``recall`` is the share of the gold facts judged correct that stay
``auto`` (recall relative to what the rule extractors propose) unless ``recall.jsonl`` is there: 100
gold products with every brand, product type, material, colour and model number a curator would
record (each fact a list of acceptable names); then ``recall`` is the share of those facts that an
``auto`` fact of the same relation matches (``recall_relative`` keeps the other figure, and
``recall_any_status`` counts candidates too). Writes bench/results/kg_precision.json.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp import KnowledgeBase, ProductText, build_pipeline, extract  # noqa: E402
from nlp.acceptance import DEFAULT_PATH, Acceptor, product_cues  # noqa: E402
from nlp.normalize import entity_key, fold, singular, slug  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "amazon-scientific"
GOLD = ROOT / "bench" / "gold" / "precision"
OUT = ROOT / "bench" / "results" / "kg_precision.json"


def wilson_low(k: int, n: int, z: float = 1.96) -> float | None:
    if n == 0:
        return None
    p = k / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return round((centre - margin) / (1 + z * z / n), 4)


def load_catalogue(directory: Path) -> list[ProductText]:
    files = sorted(directory.glob("*.item.json"))
    if not files:
        raise SystemExit(f"no *.item.json in {directory}")
    items = json.loads(files[0].read_text())
    return [ProductText(uid=str(k), title=(v.get("title") or "").strip(), brand=(v.get("brand") or "").strip(),
                        categories=[c.strip() for c in (v.get("categories") or "").split(",") if c.strip()])
            for k, v in items.items()]


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def matched(rows: list[dict], extracted: dict) -> list[tuple[dict, object, list]]:
    """(row, the pipeline's fact for it or None, its cues) for every labelled row."""
    out = []
    for row in rows:
        facts = extracted.get(row["product"], [])
        cues = product_cues(facts, row["product_text"]) if facts else []
        hit = None
        for f, c in zip(facts, cues):
            if f.relation == row["relation"] and f.object_uid == row["object_uid"]:
                hit = (f, c)
                break
        if hit is None:  # the rule extractors no longer propose it
            out.append((row, None, []))
        else:
            out.append((row, hit[0], hit[1]))
    return out


def _head(name: str) -> str:
    words = fold(singular(name or "")).split()
    return words[-1] if words else ""


def fact_matches(kb: KnowledgeBase, relation: str, names: list[str], f) -> bool:
    """Does extracted fact ``f`` state the recall-set fact with acceptable ``names``?"""
    for name in names:
        if relation == "IS_PRODUCT_TYPE":
            if _head(name) and _head(name) == _head(f.object_name):
                return True
            continue
        kind = {"HAS_BRAND": "BRAND", "MADE_OF": "MATERIAL", "HAS_COLOR": "COLOR",
                "HAS_MODEL_NUMBER": "MODEL_NUMBER"}[relation]
        keys = {k for k in (kb.link(kind, name) if kind != "MODEL_NUMBER" else None,
                            entity_key(kind, name), slug(name)) if k}
        if f.object_key in keys or fold(f.object_name) == fold(name):
            return True
    return False


def recall_report(kb: KnowledgeBase, pipe, rows: list[dict]) -> dict:
    products = [ProductText(uid=r["product"], title=r["product_text"]["title"], description=r["product_text"]["description"],
                            brand=r["product_text"]["brand"], categories=list(r["product_text"]["categories"]))
                for r in rows]
    extracted = {r.product_uid: r.facts for r in extract(pipe, products)}
    out: dict[str, dict] = {}
    for row in rows:
        facts = extracted.get(row["product"], [])
        for relation, wanted in row["facts"].items():
            stats = out.setdefault(relation, {"n": 0, "auto": 0, "any": 0})
            for names in wanted:
                stats["n"] += 1
                same = [f for f in facts if f.relation == relation and fact_matches(kb, relation, names, f)]
                stats["any"] += bool(same)
                stats["auto"] += any(f.status == "auto" for f in same)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--gold", type=Path, default=GOLD)
    parser.add_argument("--threshold", type=float, default=0.9, help="per-relation default threshold")
    parser.add_argument("--no-save-acceptor", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    calibration, gold = read_rows(args.gold / "calibration.jsonl"), read_rows(args.gold / "gold.jsonl")
    kb = KnowledgeBase.from_products(load_catalogue(args.dataset))
    pipe = build_pipeline(kb)
    products = {}
    for row in calibration + gold:
        t = row["product_text"]
        products[row["product"]] = ProductText(uid=row["product"], title=t["title"], description=t["description"],
                                               brand=t["brand"], categories=list(t["categories"]))
    extracted = {r.product_uid: r.facts for r in extract(pipe, list(products.values()), accept=False)}

    cal = matched(calibration, extracted)
    relations = sorted({r["relation"] for r in calibration + gold})
    examples = [(f, c, row["label"] == "correct") for row, f, c in cal if f is not None]
    acceptor = Acceptor.fit(examples, thresholds={rel: args.threshold for rel in relations},
                            version=f"calibration-{len(examples)}")
    if not args.no_save_acceptor:
        acceptor.save(DEFAULT_PATH)

    report: dict[str, dict] = {}
    reliability = defaultdict(lambda: [0, 0])
    for rel in relations:
        n = correct = partial = wrong = all_correct = kept_correct = 0
        for row, f, c in matched([r for r in gold if r["relation"] == rel], extracted):
            label = row["label"]
            all_correct += label == "correct"
            if f is None:
                continue
            p = acceptor.confidence(f, c)
            if p is not None:
                reliability[min(int(p * 10), 9)][0] += label == "correct"
                reliability[min(int(p * 10), 9)][1] += 1
            if p is None or p < acceptor.threshold(rel):
                continue
            n += 1
            correct += label == "correct"
            partial += label == "partial"
            wrong += label == "wrong"
            kept_correct += label == "correct"
        report[rel] = {"n": n, "correct": correct, "partial": partial, "wrong": wrong,
                       "precision": round(correct / n, 4) if n else None, "wilson_low": wilson_low(correct, n),
                       "recall": round(kept_correct / all_correct, 4) if all_correct else None,
                       "auto": n > 0, "recall_source": "relative",
                       "precision_before": round(sum(r["label"] == "correct" for r in gold if r["relation"] == rel)
                                                 / max(1, sum(r["relation"] == rel for r in gold)), 4)}
    if (args.gold / "recall.jsonl").exists():
        pipe.user_data_acceptor = acceptor  # extraction as ingestion runs it, with this acceptor
        recall_rows = read_rows(args.gold / "recall.jsonl")
        for rel, st in recall_report(kb, pipe, recall_rows).items():
            r = report.setdefault(rel, {})
            r["recall_relative"] = r.get("recall")
            r["recall"] = round(st["auto"] / st["n"], 4) if st["n"] else None
            r["recall_any_status"] = round(st["any"] / st["n"], 4) if st["n"] else None
            r["recall_n"] = st["n"]
            r["recall_source"] = "recall_set"
    curve = [{"bin": f"{b / 10:.1f}-{(b + 1) / 10:.1f}", "n": v[1], "observed": round(v[0] / v[1], 4)}
             for b, v in sorted(reliability.items())]
    result = {"relations": report, "threshold": {rel: acceptor.threshold(rel) for rel in relations},
              "reliability": curve,
              "split": "acceptor fitted on calibration.jsonl (calibration products), reported on gold.jsonl "
                       "(gold products); product split = sha1('kg-precision:' + product id) parity",
              "notes": "only facts that reach auto count for precision; partial counts as not correct; recall = "
                       "share of gold facts judged correct that stay auto (relative to the rule extractors' "
                       "proposals)",
              "n_calibration": len(calibration), "n_gold": len(gold), "seconds": round(time.perf_counter() - started, 1)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'relation':18s} {'before':>7s} {'auto n':>6s} {'prec':>6s} {'wilson':>6s} {'recall':>6s} "
          f"{'rec.rel':>7s} {'rec.any':>7s} {'rec.n':>5s}")
    for rel, r in report.items():
        fmt = lambda v: "   -  " if v is None else f"{v:6.3f}"  # noqa: E731
        print(f"{rel:18s} {r['precision_before']:7.3f} {r['n']:6d} {fmt(r['precision'])} {fmt(r['wilson_low'])} "
              f"{fmt(r['recall'])} {fmt(r.get('recall_relative', r['recall'])):>7s} "
              f"{fmt(r.get('recall_any_status')):>7s} {r.get('recall_n', ''):>5}")
    print("reliability (calibrated confidence bin: n, observed share correct):",
          ", ".join(f"{c['bin']}: {c['n']}, {c['observed']:.2f}" for c in curve))
    print(f"wrote {OUT.relative_to(ROOT)} in {result['seconds']} s")


if __name__ == "__main__":
    main()
