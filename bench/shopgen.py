"""A seeded synthetic shop S times the size of a real one, built from the real one's data.

    .venv/bin/python bench/shopgen.py --scale 10 [--dataset DIR | --jsonl FILE] [--seed 0] --out shop.jsonl

The source is read as the product reads it (``bench/datasets.py``: any ``<Name>.item.json`` +
``<Name>.inter.json`` pair, RecBole atomic files or generic JSONL; nothing is specific to one
catalogue). Each real product has ``S`` variants: variant 0 is the product itself, variant ``k``
takes the real product's category path and brand (the real tree and vocabulary) and a title and
description recombined from it and another real product of the same category (the first half of
one title with the second half of the other; the description's sentences interleaved). Each real
user has ``S`` synthetic copies: copy ``k`` replays the real sequence (its event types, values
and order), each item replaced by one of that item's variants drawn with Zipf weights
(``1/(k+1)**zipf``), the timestamps shifted by up to ``--shift-days`` and jittered within a
second, so the order is the real one. Popularity therefore keeps the real, heavy-tailed curve
and adds a power law across each item's variants. At ``--scale 1`` the shop is the source.

Writes the generic JSONL (README): products first, then events, so ``manage.py import_catalogue
FILE`` imports it. The same source, scale and seed give the same file, byte for byte.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datasets import _clean_id, _event_time, catalogue_products, dataset_records, export_jsonl  # noqa: E402

DEFAULT_DATASET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "amazon-scientific"


def variant_id(external_id: str, k: int) -> str:
    return external_id if k == 0 else f"{external_id}~s{k}"


def _split_title(title: str) -> tuple[list[str], list[str]]:
    words = title.split()
    half = max(1, len(words) // 2)
    return words[:half], words[half:]


def recombine_title(template: str, other: str) -> str:
    """The template's first half of words with the other title's second half (the template alone
    when the other has no second half)."""
    head, _ = _split_title(template)
    _, tail = _split_title(other)
    return " ".join(head + (tail or _split_title(template)[1])) or template


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in text.replace("\n", " ").split(". ") if s.strip()]


def recombine_description(template: str, other: str) -> str:
    a, b = _sentences(template), _sentences(other)
    out = [s for pair in zip(a, b) for s in pair] + a[len(b):] + b[len(a):]
    text = ". ".join(out[:max(len(a), 1) + 1])
    return text if not text or text.endswith(".") else text + "."


def source_events(records) -> list[dict]:
    """The source's valid events (known product, a time), in the order they were read."""
    return [r for r in records if r.get("kind") == "event" and _clean_id(r.get("user")) is not None
            and _clean_id(r.get("product")) is not None and _event_time(r.get("timestamp")) is not None]


def _iso(ts: float) -> str:
    return (datetime.fromtimestamp(0, tz=timezone.utc) + timedelta(seconds=ts)).isoformat().replace("+00:00", "Z")


def generate(products: list[dict], events: list[dict], scale: int, seed: int = 0, zipf: float = 1.0,
             shift_days: float = 30.0) -> tuple[list[dict], list[dict]]:
    """Products and events of the synthetic shop (see the module docstring)."""
    if scale < 1:
        raise ValueError("scale must be >= 1")
    rng = np.random.default_rng(seed)
    known = {p["external_id"] for p in products}
    by_category: dict[tuple, list[int]] = {}
    for n, p in enumerate(products):
        by_category.setdefault(tuple(p["category_path"]), []).append(n)
    out_products = []
    for n, p in enumerate(products):
        out_products.append(p)
        peers = by_category[tuple(p["category_path"])]
        for k in range(1, scale):
            other = products[peers[int(rng.integers(len(peers)))]] if len(peers) > 1 else p
            if other is p and len(peers) > 1:
                other = products[peers[(peers.index(n) + 1) % len(peers)]]
            out_products.append({"external_id": variant_id(p["external_id"], k),
                                 "title": recombine_title(p["title"], other["title"]),
                                 "description": recombine_description(p.get("description") or "",
                                                                      other.get("description") or ""),
                                 "brand": p.get("brand") or "", "category_path": list(p["category_path"])})
    weights = 1.0 / np.arange(1, scale + 1) ** zipf
    weights /= weights.sum()
    sequences: dict[str, list[dict]] = {}
    for e in events:
        if str(e["product"]) in known:
            sequences.setdefault(str(e["user"]), []).append(e)
    out_events = []
    for user in sorted(sequences):
        seq = sorted(sequences[user], key=lambda e: _event_time(e["timestamp"]))  # stable: ties keep file order
        for k in range(scale):
            uid = user if k == 0 else f"{user}~s{k}"
            shift = 0.0 if k == 0 else float(rng.integers(int(shift_days * 86400) + 1))
            jitter = np.sort(rng.uniform(0.0, 0.9, len(seq))) if k else np.zeros(len(seq))
            picks = rng.choice(scale, size=len(seq), p=weights) if k else np.zeros(len(seq), dtype=int)
            for pos, (e, j, v) in enumerate(zip(seq, jitter, picks)):
                rec = {"kind": "event", "event_id": f"shop-{uid}-{pos}"[:64], "user": uid,
                       "product": variant_id(str(e["product"]), int(v)), "type": e.get("type", "view"),
                       "timestamp": _iso(_event_time(e["timestamp"]) + shift + float(j))}
                if "value" in e:
                    rec["value"] = e["value"]
                out_events.append(rec)
    return out_products, out_events


def generate_shop(out: Path | str, scale: int, dataset: Path | str | None = None, jsonl: Path | str | None = None,
                  seed: int = 0, zipf: float = 1.0) -> dict:
    """Write the synthetic shop of a source as generic JSONL; returns the counts."""
    if dataset is None and jsonl is None:
        dataset = DEFAULT_DATASET
    products = catalogue_products(dataset, jsonl)
    events = source_events(dataset_records(dataset, jsonl))
    shop_products, shop_events = generate(products, events, scale, seed=seed, zipf=zipf)
    counts = export_jsonl([*shop_products, *shop_events], out)
    counts["users"] = len({e["user"] for e in shop_events})
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--dataset", help=f"a dataset directory (default {DEFAULT_DATASET})")
    src.add_argument("--jsonl", help="a generic JSONL file")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zipf", type=float, default=1.0, help="exponent of the variants' weights")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    counts = generate_shop(args.out, args.scale, args.dataset, args.jsonl, seed=args.seed, zipf=args.zipf)
    print(f"wrote {args.out}: {counts['products']} products, {counts['users']} users, {counts['events']} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
