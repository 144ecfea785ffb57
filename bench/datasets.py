"""Datasets for the benchmarks, read exactly as the product reads them.

    .venv/bin/python bench/datasets.py export --ml100k OUT.jsonl         # ../shared/datasets/ml-100k-kg
    .venv/bin/python bench/datasets.py export --amazon DIR OUT.jsonl     # any <Name>.item.json + .inter.json
    .venv/bin/python bench/datasets.py stats --dataset DIR | --jsonl FILE

``export`` writes the generic JSONL (README) that ``manage.py import_catalogue FILE.jsonl``
imports: products first, then events. ``load_interactions`` turns a dataset directory or such a
file into the ``InteractionData`` the product's training would see after importing it (the
graph store's export through ``kms.recs.services.training_data``), so that
``leave_last_out`` of it is the product's split: one interaction per (user, product) at its
first timestamp, each user's items ordered by (timestamp, product uid), users and items in
uid order, ids as the graph's uids (``user:<id>``, ``product:<id>``). Records the product
would reject (no title, unknown product, bad type or timestamp) are left out here too.

No Django: the benchmarks that call this run in their own venvs (bench/.venv-peers).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from recommender.data import (DATASETS_DIR, InteractionData, amazon_events, amazon_files,  # noqa: E402
                              amazon_products)

EVENT_TYPES = {"view", "click", "cart", "purchase", "rating"}  # kms.events.models.Interaction.Type
MAX_ID = 128


# ----------------------------------------------------------------------------- dataset records
def amazon_records(root: Path | str) -> Iterator[dict]:
    """The generic records of an Amazon dump, as ``import_catalogue --amazon DIR`` imports it."""
    _, item_path, inter_path = amazon_files(root)
    products, _ = amazon_products(item_path)
    yield from products
    events, _ = amazon_events(inter_path)
    for e in events:
        yield {"kind": "event", **e}


def _atomic_rows(path: Path) -> Iterator[dict]:
    """Rows of a RecBole atomic file (``name:type`` headers, tab-separated) keyed by name."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = [h.split(":", 1)[0] for h in fh.readline().rstrip("\n").split("\t")]
        for line in fh:
            yield dict(zip(header, line.rstrip("\n").split("\t")))


def ml100k_records(root: Path | str | None = None) -> Iterator[dict]:
    """MovieLens-100k: each movie a product (title with its year; the genres as the description's
    text and, in the file's order, as the category path), each rating an event at its real time."""
    root = Path(root) if root else DATASETS_DIR / "ml-100k-kg"
    name = next(root.glob("*.item")).stem
    for row in _atomic_rows(root / f"{name}.item"):
        title = row.get("movie_title", "").strip()
        year = row.get("release_year", "").strip()
        genres = [g for g in row.get("class", "").split() if g and g != "unknown"]
        yield {"external_id": row["item_id"], "title": f"{title} ({year})" if year else title,
               "description": (f"{', '.join(genres)} film" if genres else "Film")
                              + (f", released {year}." if year else "."),
               "brand": "", "category_path": genres,
               "attributes": {k: v for k, v in (("year", year), ("genres", genres)) if v}}
    for n, row in enumerate(_atomic_rows(root / f"{name}.inter"), 2):
        ts = float(row["timestamp"])
        yield {"kind": "event", "event_id": f"{name}-{n}", "user": row["user_id"], "product": row["item_id"],
               "type": "rating", "value": float(row.get("rating") or 1),
               "timestamp": datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")}


def oa_mine_records(root: Path | str) -> Iterator[dict]:
    """OA-Mine's annotated titles (train + test) as products: the Brand annotation as brand,
    the category as a one-part path, no description (an unseen catalogue for bench/extraction.py)."""
    root = Path(root)
    for split in ("train", "test"):
        with open(root / f"{split}.jsonl", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                r = json.loads(line)
                brand = next(iter(r.get("target_scores", {}).get("Brand") or {}), "")
                yield {"external_id": f"{split}-{i}", "title": r["input"], "description": "",
                       "brand": "" if brand == "n/a" else brand, "category_path": [r["category"]]}


def jsonl_records(path: Path | str) -> Iterator[dict]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the import reports it and imports nothing from that line
            if isinstance(record, dict):
                yield record


def dataset_records(dataset: Path | str | None = None, jsonl: Path | str | None = None) -> Iterator[dict]:
    """Generic records of a dataset directory (an Amazon dump or RecBole atomic files) or a JSONL file."""
    if (dataset is None) == (jsonl is None):
        raise ValueError("give exactly one of dataset=DIR or jsonl=FILE")
    if jsonl is not None:
        return jsonl_records(jsonl)
    root = Path(dataset)
    if any(root.glob("*.item.json")):
        return amazon_records(root)
    if any(root.glob("*.item")) and any(root.glob("*.inter")):
        return ml100k_records(root)
    raise FileNotFoundError(f"{root}: neither an Amazon dump (<Name>.item.json + <Name>.inter.json) "
                            "nor RecBole atomic files (.item + .inter)")


def dataset_name(dataset: Path | str | None = None, jsonl: Path | str | None = None) -> str:
    """What outputs are named after: the directory's name or the JSONL file's stem."""
    return Path(dataset).resolve().name if dataset is not None else Path(jsonl).stem


def export_jsonl(records: Iterable[dict], out: Path | str) -> dict:
    counts = {"products": 0, "events": 0}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for r in records:
            counts["events" if r.get("kind") == "event" else "products"] += 1
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return counts


# ----------------------------------------------------------------------------- as the product reads them
def _clean_id(value) -> str | None:
    """kms.events.services._id: a non-empty string (or int) of at most 128 characters, stripped."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and 0 < len(value.strip()) <= MAX_ID and "\x00" not in value:
        return value.strip()
    return None


def _product_id(record: dict) -> str | None:
    """The external id of a product record the catalogue would accept (kms.catalogue.services.clean_product)."""
    ext = _clean_id(record.get("external_id", record.get("id")))
    title = record.get("title")
    if ext is None or not isinstance(title, str) or not title.strip() or "\x00" in title:
        return None
    return ext


def _event_time(value) -> float | None:
    """The event's time as the graph stores it: the database datetime's ``timestamp()``."""
    if value is None:
        return None  # stamped with the import's clock by the product: not reproducible here
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(float(value), tz=timezone.utc).timestamp()
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
    return None


def interactions_from_records(records: Iterable[dict]) -> InteractionData:
    """The product's interaction data for these generic records (see the module docstring)."""
    products: set[str] = set()
    events = []
    for r in records:
        if r.get("kind", "product") != "event":
            ext = _product_id(r)
            if ext is not None:
                products.add(ext)
            continue
        user = _clean_id(r.get("user", r.get("user_id")))
        product = _clean_id(r.get("product", r.get("item", r.get("product_id"))))
        etype = r.get("type", "view")
        value = r.get("value", 1.0)
        ts = _event_time(r.get("timestamp"))
        if (user is None or product is None or etype not in EVENT_TYPES or ts is None or isinstance(value, bool)
                or not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > 1e6):
            continue
        event_id = r.get("event_id")
        if event_id is None:
            event_id = hashlib.sha1(f"{user}|{product}|{etype}|{ts}".encode()).hexdigest()
        events.append((str(event_id)[:64], user, product, ts))
    first: dict[tuple[str, str], float] = {}  # the graph's INTERACTED edge: one per pair, first_ts
    seen_ids: set[str] = set()
    for event_id, user, product, ts in events:
        if product not in products or event_id in seen_ids:  # unknown product; duplicate event id
            continue
        seen_ids.add(event_id)
        key = (f"user:{user}", f"product:{product}")
        first[key] = min(ts, first.get(key, ts))
    item_ids = sorted(f"product:{p}" for p in products)
    item_index = {uid: n for n, uid in enumerate(item_ids)}
    user_ids: list[str] = []
    sequences: list[list[int]] = []
    for (user, item), _ts in sorted(first.items(), key=lambda kv: (kv[0][0], kv[1], kv[0][1])):
        if not user_ids or user_ids[-1] != user:
            user_ids.append(user)
            sequences.append([])
        sequences[-1].append(item_index[item])
    return InteractionData(user_ids=user_ids, item_ids=item_ids, sequences=sequences)


def load_interactions(dataset: Path | str | None = None, jsonl: Path | str | None = None) -> InteractionData:
    """A dataset's interactions exactly as the product would split them (``leave_last_out`` of
    this is the split ``manage.py train`` / ``evaluate`` take after importing the same data)."""
    return interactions_from_records(dataset_records(dataset, jsonl))


def load_catalogue(dataset: Path | str | None = None,
                   jsonl: Path | str | None = None) -> tuple[InteractionData, dict[str, dict]]:
    """``load_interactions`` plus each product's text fields keyed by its uid (as in
    ``data.item_ids``), ``categories`` as a comma-separated path (``recommender.knowledge``'s input)."""
    records = list(dataset_records(dataset, jsonl))
    data = interactions_from_records(records)
    items: dict[str, dict] = {}
    for r in records:
        if r.get("kind", "product") == "event" or _product_id(r) is None:
            continue
        cats = r.get("category_path", r.get("categories", []))
        cats = ",".join(str(c).strip() for c in cats) if isinstance(cats, list) else str(cats or "")
        items[f"product:{_product_id(r)}"] = {"title": r.get("title") or "", "description": r.get("description") or "",
                                              "brand": r.get("brand") or "", "categories": cats}
    return data, items


def catalogue_products(dataset: Path | str | None = None, jsonl: Path | str | None = None) -> list[dict]:
    """The products the catalogue would hold (valid ones; the last record of an id wins), with
    ``category_path`` as a list, in the order they first appear."""
    out: dict[str, dict] = {}
    for r in dataset_records(dataset, jsonl):
        ext = _product_id(r) if r.get("kind", "product") != "event" else None
        if ext is None:
            continue
        cats = r.get("category_path", r.get("categories", []))
        cats = [c.strip() for c in cats.split(",") if c.strip()] if isinstance(cats, str) else list(cats or [])
        out[ext] = {"external_id": ext, "title": r["title"].strip(), "description": r.get("description") or "",
                    "brand": r.get("brand") or "", "category_path": [str(c) for c in cats]}
    return list(out.values())


def split_stats(data: InteractionData) -> dict:
    from recommender.data import leave_last_out

    split = leave_last_out(data)
    return {"users": data.n_users, "items": data.n_items, "interactions": data.n_interactions,
            "valid_users": int((split.valid_target >= 0).sum()), "test_users": int((split.test_target >= 0).sum())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write a dataset as generic JSONL")
    src = ex.add_mutually_exclusive_group(required=True)
    src.add_argument("--ml100k", action="store_true", help="MovieLens-100k (--ml100k-dir, default ../shared/datasets/ml-100k-kg)")
    src.add_argument("--amazon", metavar="DIR", help="an Amazon dump (<Name>.item.json + <Name>.inter.json)")
    src.add_argument("--oa-mine", metavar="DIR", help="OA-Mine titles as products (brand, category; no events)")
    ex.add_argument("--ml100k-dir", default=None)
    ex.add_argument("out", help="OUT.jsonl")
    st = sub.add_parser("stats", help="the product's leave-last-out split statistics of a dataset")
    g = st.add_mutually_exclusive_group(required=True)
    g.add_argument("--dataset", metavar="DIR")
    g.add_argument("--jsonl", metavar="FILE")
    args = ap.parse_args(argv)
    if args.command == "export":
        records = (ml100k_records(args.ml100k_dir) if args.ml100k else
                   oa_mine_records(args.oa_mine) if args.oa_mine else amazon_records(args.amazon))
        counts = export_jsonl(records, args.out)
        print(f"wrote {args.out}: {counts['products']} products, {counts['events']} events")
    else:
        data = load_interactions(args.dataset, args.jsonl)
        print(json.dumps({"dataset": dataset_name(args.dataset, args.jsonl), **split_stats(data)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
