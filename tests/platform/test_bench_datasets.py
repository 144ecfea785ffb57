"""bench/datasets.py: a benchmark's leave-last-out split is the product's split of the same data
(imported, ingested, exported from the graph store as training reads it)."""
import json

import numpy as np
import pytest

from bench.datasets import export_jsonl, load_interactions, ml100k_records
from kms.catalogue.importers import import_jsonl
from kms.events.services import push_interactions_to_graph
from kms.graphstore import get_graph_store
from kms.knowledge.models import IngestionJob
from kms.knowledge.services import run_ingestion_job
from kms.recs.services import training_data
from recommender.data import leave_last_out


def _ml100k_slice(n_users: int) -> list[dict]:
    """Real MovieLens ratings of the first users (many share a second: ties to break), the movies
    they rated plus a few nobody in the slice rated."""
    records = list(ml100k_records())
    events = [r for r in records if r.get("kind") == "event"]
    users = sorted({e["user"] for e in events}, key=int)[:n_users]
    events = [e for e in events if e["user"] in set(users)]
    rated = {e["product"] for e in events}
    products = [r for r in records if r.get("kind") != "event" and (r["external_id"] in rated
                                                                    or int(r["external_id"]) % 500 == 0)]
    u = users[0]
    first = min((e for e in events if e["user"] == u), key=lambda e: e["timestamp"])
    # a repeat of a pair later on (one graph edge, at its first time), an unknown product, a bad
    # type; and a product without a title (rejected by the catalogue)
    extra = [
        {**first, "event_id": "repeat", "timestamp": "1999-01-01T00:00:00Z"},
        {"kind": "event", "user": u, "product": "no-such-movie", "type": "rating", "timestamp": "1998-01-01T00:00:00Z"},
        {"kind": "event", "user": u, "product": products[0]["external_id"], "type": "teleport",
         "timestamp": "1998-01-01T00:00:00Z"},
    ]
    return products + [{"external_id": "untitled", "title": ""}] + events + extra


@pytest.mark.django_db
def test_benchmark_split_is_the_products_split(kms_graph, tmp_path):
    path = tmp_path / "ml-slice.jsonl"
    export_jsonl(_ml100k_slice(12), path)
    summary = import_jsonl(path)
    assert summary["events"]["errors"] and summary["products"]["errors"]  # the rejected ones above
    job = run_ingestion_job(IngestionJob.objects.create(kind="ingest-all").pk)
    assert job.state == "done", job.errors
    push_interactions_to_graph()
    product = training_data(get_graph_store().export_training_graph())

    bench = load_interactions(jsonl=path)
    assert bench.user_ids == product.user_ids and bench.item_ids == product.item_ids
    assert bench.sequences == product.sequences
    ours, theirs = leave_last_out(bench), leave_last_out(product)
    assert ours.train == theirs.train
    assert np.array_equal(ours.valid_target, theirs.valid_target)
    assert np.array_equal(ours.test_target, theirs.test_target)
    # ties were there to break: some user rated two of the slice's movies in the same second
    times = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r.get("kind") == "event":
            times.setdefault((r["user"], r["timestamp"]), []).append(r["product"])
    assert any(len(v) > 1 for v in times.values())
