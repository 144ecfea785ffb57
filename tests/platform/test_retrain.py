"""The periodic retrain: only when enough new events arrived, and the new version is activated
only if its validation NDCG@20 is not worse than the active one's."""
from datetime import timedelta

import pytest
from django.utils import timezone

from kms.catalogue.services import upsert_products
from kms.events.services import record_events
from kms.knowledge.models import IngestionJob
from kms.knowledge.services import run_ingestion_job
from kms.recs.models import ModelVersion
from kms.recs.services import activate_if_not_worse, active_version, maybe_retrain, train_model

TINY = {"components": ["popularity", "itemcf", "lightgcn"], "fusion": ["itemcf", "lightgcn"],
        "dim": 8, "layers": 1, "epochs": 5, "eval_every": 5, "patience": 1, "threads": 1}


@pytest.mark.django_db
def test_maybe_retrain_waits_for_new_data_and_never_activates_a_worse_model(kms_graph, models_dir, scientific_slice):
    products, events = scientific_slice(60)
    upsert_products(products)
    run_ingestion_job(IngestionJob.objects.create(kind="ingest-all").pk)
    record_events(events)
    first = train_model(TINY)
    assert active_version() == first

    assert maybe_retrain(min_new=10) is None  # nothing new since the first version
    later = timezone.now() + timedelta(seconds=5)
    record_events([{"user": f"new-{n}", "product": products[n]["external_id"], "type": "view",
                    "timestamp": (later + timedelta(seconds=n)).isoformat()} for n in range(12)])
    second = maybe_retrain(min_new=10)
    assert second is not None and second.pk != first.pk
    assert second.state in (ModelVersion.State.ACTIVE, ModelVersion.State.REJECTED)

    # a version whose validation is worse than the active one's is kept but not served
    current = active_version()
    worse = ModelVersion.objects.create(state=ModelVersion.State.READY, path=current.path,
                                        metrics={"valid": {"fusion": {"ndcg@20": current.metrics["valid"]["fusion"]["ndcg@20"] - 0.01}}})
    assert activate_if_not_worse(worse) is False
    worse.refresh_from_db()
    assert worse.state == ModelVersion.State.REJECTED and active_version() == current
