"""A small, real slice of Amazon-Scientific for end-to-end tests (read from ../shared, never copied)."""
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

SCIENTIFIC = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "amazon-scientific"


def _scientific_slice(n_users: int = 120) -> tuple[list[dict], list[dict]]:
    items = json.loads((SCIENTIFIC / "Scientific.item.json").read_text())
    inter = json.loads((SCIENTIFIC / "Scientific.inter.json").read_text())
    users = sorted(inter, key=int)[:n_users]
    epoch = datetime(2018, 1, 1, tzinfo=timezone.utc)
    events, wanted = [], set()
    for u in users:
        for pos, item in enumerate(inter[u]):
            wanted.add(str(item))
            events.append({"event_id": f"t-{u}-{pos}", "user": u, "product": str(item), "type": "purchase",
                           "timestamp": (epoch + timedelta(seconds=pos)).isoformat()})
    products = [{"external_id": i, "title": items[i]["title"], "description": items[i].get("description", ""),
                 "brand": items[i].get("brand", ""), "categories": items[i].get("categories", "")}
                for i in sorted(wanted, key=int)]
    return products, events
