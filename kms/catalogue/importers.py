"""Bulk imports: Amazon-Scientific and the generic JSONL format. Re-importing changes nothing."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

from kms.events.services import record_events

from .services import read_jsonl, scientific_products, upsert_products

SCIENTIFIC_EPOCH = datetime(2018, 1, 1, tzinfo=dt_timezone.utc)


def import_scientific(root: Path, limit_users: int | None = None, push_to_graph: bool = True) -> dict:
    """Items and interactions; sequence order becomes timestamps (one second apart per user)."""
    products = upsert_products(scientific_products(root))
    inter = json.loads((root / "Scientific.inter.json").read_text())
    users = sorted(inter, key=int)[:limit_users] if limit_users else sorted(inter, key=int)
    events = [
        {"event_id": f"sci-{u}-{pos}", "user": u, "product": str(item), "type": "purchase",
         "timestamp": (SCIENTIFIC_EPOCH + timedelta(seconds=pos)).isoformat()}
        for u in users for pos, item in enumerate(inter[u])
    ]
    result = record_events(events, push_to_graph=push_to_graph)
    return {"products": products.as_dict(), "events": result.as_dict()}


def import_jsonl(path: Path, push_to_graph: bool = True) -> dict:
    """One JSON object per line: ``{"kind": "product", ...}`` or ``{"kind": "event", ...}``.

    A line without "kind" is a product. Invalid lines are reported with their line number.
    """
    products, events, errors = [], [], []
    for n, record in enumerate(read_jsonl(path), 1):
        if "__error__" in record:
            errors.append({"line": n, "error": record["__error__"]})
        elif record.get("kind", "product") == "event":
            events.append({k: v for k, v in record.items() if k != "kind"})
        else:
            products.append({k: v for k, v in record.items() if k != "kind"})
    p = upsert_products(products)
    e = record_events(events, push_to_graph=push_to_graph)
    return {"products": p.as_dict(), "events": e.as_dict(), "line_errors": errors}
