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


def ingest_slice(n_users: int) -> tuple[list[dict], list[dict]]:
    """The slice's products upserted and ingested (extraction into the graph store), then its
    events recorded: the starting state of the end-to-end tests. Needs the database and graph."""
    from kms.catalogue.services import upsert_products
    from kms.events.services import record_events
    from kms.events.tasks import deliver_to_graph
    from kms.knowledge.models import IngestionJob
    from kms.knowledge.services import run_ingestion_job

    products, events = _scientific_slice(n_users)
    upsert_products(products)
    run_ingestion_job(IngestionJob.objects.create(kind="ingest-all").pk)
    deliver_to_graph(record_events(events).interaction_ids)
    return products, events
