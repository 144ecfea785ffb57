"""Draw the precision gold sample from the graph the product built (one command).

    DATABASE_URL=... KMS_DATA_DIR=... .venv/bin/python bench/kg_gold_sample.py [--per-relation 50] [--calibration 40]

Reads the automatic facts of a database filled by ``manage.py import_catalogue`` + ``manage.py
ingest`` (the demo's path) and writes ``bench/gold/precision/{gold,calibration}.jsonl``: per
relation a seeded random sample of facts from the gold products and, separately, from the
calibration products (``product_split``: a hash of the product's external id), each with the
product's full text and an empty ``label`` for the annotator. Labels already in the files are
kept for facts drawn again.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "gold" / "precision"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-relation", type=int, default=50)
    parser.add_argument("--calibration", type=int, default=40)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--add-calibration", type=int, default=0,
                        help="append N more calibration facts per relation (seed + 1), keeping the files as they are")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kms.settings")
    import django

    django.setup()
    from kms.knowledge.models import Fact
    from nlp.acceptance import product_split

    rows = list(Fact.objects.filter(status="auto").select_related("product", "entity")
                .order_by("product__external_id", "relation", "entity__uid", "id"))
    by_split: dict[tuple[str, str], list] = {}
    for f in rows:
        by_split.setdefault((product_split(f.product.external_id), f.relation), []).append(f)
    if args.add_calibration:
        add_calibration(by_split, args.add_calibration, args.seed + 1)
        return
    rng = random.Random(args.seed)
    for split, n, name in (("gold", args.per_relation, "gold"), ("calibration", args.calibration, "calibration")):
        path = OUT / f"{name}.jsonl"
        old = {}
        if path.exists():
            for line in path.read_text().splitlines():
                r = json.loads(line)
                old[(r["product"], r["relation"], r["object_uid"])] = r
        out = []
        for relation in sorted({rel for (_, rel) in by_split}):
            pool = by_split.get((split, relation), [])
            for f in rng.sample(pool, min(n, len(pool))):
                out.append(_row(f, split, old.get((f.product.external_id, f.relation, f.entity.uid), {})))
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out))
        print(f"{name}: {len(out)} facts -> {path.relative_to(ROOT)}")


def add_calibration(by_split: dict, n: int, seed: int) -> None:
    """More calibration facts per relation, none already drawn; the existing rows stay as they are."""
    path = OUT / "calibration.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    have = {(r["product"], r["relation"], r["object_uid"]) for r in rows}
    rng = random.Random(seed)
    added = 0
    for relation in sorted({rel for (_, rel) in by_split}):
        pool = [f for f in by_split.get(("calibration", relation), [])
                if (f.product.external_id, f.relation, f.entity.uid) not in have]
        for f in rng.sample(pool, min(n, len(pool))):
            rows.append(_row(f, "calibration", {}))
            added += 1
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"calibration: {added} facts added, {len(rows)} in all -> {path.relative_to(ROOT)}")


def _row(f, split: str, prev: dict) -> dict:
    p = f.product
    return {"product": p.external_id, "relation": f.relation, "object_uid": f.entity.uid,
            "object_name": f.entity.name, "value": f.value, "unit": f.unit, "field": f.field,
            "start": f.start, "end": f.end, "text": f.text, "extractor": f.extractor,
            "confidence": f.confidence, "split": split,
            "label": prev.get("label"), "note": prev.get("note", ""), "annotator": prev.get("annotator", ""),
            "product_text": {"title": p.title, "description": p.description, "brand": p.brand,
                             "categories": list(p.category_path)}}


if __name__ == "__main__":
    main()
