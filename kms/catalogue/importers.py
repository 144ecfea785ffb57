"""Bulk imports: Amazon review dumps and the generic JSONL format. Re-importing changes nothing.

Every reported error names the file and the line the record is written on.
"""
from __future__ import annotations

from pathlib import Path

from kms.events.services import record_events

from recommender.data import AMAZON_EPOCH, amazon_events, amazon_files, amazon_products

from .services import read_jsonl, upsert_products

SCIENTIFIC_EPOCH = AMAZON_EPOCH  # the name earlier callers use


def _with_lines(errors: list[dict], lines: list[int], file: str) -> list[dict]:
    """Errors that give an index among the records passed on, with the file and line instead."""
    out = []
    for err in errors:
        err = dict(err)
        err["file"], err["line"] = file, lines[err.pop("index")]
        out.append(err)
    return out


def import_amazon(root: Path, limit_users: int | None = None) -> dict:
    """Items and interactions of the ``<Name>.item.json`` + ``<Name>.inter.json`` pair in ``root``
    (any name); categories are a comma-separated path ("A,B" or "A, B")."""
    _, item_path, inter_path = amazon_files(root)
    records, product_lines = amazon_products(item_path)
    products = upsert_products(records)
    events, event_lines = amazon_events(inter_path, limit_users)
    result = record_events(events)
    p, e = products.as_dict(), result.as_dict()
    p["errors"] = _with_lines(p["errors"], product_lines, item_path.name)
    e["errors"] = _with_lines(e["errors"], event_lines, inter_path.name)
    return {"products": p, "events": e}


def import_scientific(root: Path, limit_users: int | None = None) -> dict:
    return import_amazon(root, limit_users=limit_users)


def import_jsonl(path: Path) -> dict:
    """One JSON object per line: ``{"kind": "product", ...}`` or ``{"kind": "event", ...}``.

    A line without "kind" is a product. Lines that are not JSON are in ``line_errors``; products
    and events that fail validation are reported with their line too.
    """
    products, events, errors = [], [], []
    product_lines, event_lines = [], []
    for n, record in read_jsonl(path, with_lines=True):
        if isinstance(record, dict) and "__error__" in record:
            errors.append({"line": n, "error": record["__error__"]})
        elif isinstance(record, dict) and record.get("kind", "product") == "event":
            events.append({k: v for k, v in record.items() if k != "kind"})
            event_lines.append(n)
        else:
            products.append({k: v for k, v in record.items() if k != "kind"} if isinstance(record, dict) else record)
            product_lines.append(n)
    p = upsert_products(products).as_dict()
    e = record_events(events).as_dict()
    p["errors"] = _with_lines(p["errors"], product_lines, Path(path).name)
    e["errors"] = _with_lines(e["errors"], event_lines, Path(path).name)
    return {"products": p, "events": e, "line_errors": errors}
