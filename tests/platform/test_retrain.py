"""The periodic retrain: only when enough new events arrived, and the new version is activated
only if its validation NDCG@20 is not worse than the active one's."""
from datetime import timedelta

import pytest
from django.utils import timezone

from kms.events.services import record_events
from kms.events.tasks import deliver_to_graph
from kms.recs.models import ModelVersion
from kms.recs.services import activate_if_not_worse, active_version, maybe_retrain, train_model
from tests.slices import ingest_slice

TINY = {"components": ["popularity", "itemcf", "lightgcn"], "fusion": ["itemcf", "lightgcn"],
        "dim": 8, "layers": 1, "epochs": 5, "eval_every": 5, "patience": 1, "threads": 1}


@pytest.mark.django_db
def test_maybe_retrain_waits_for_new_data_and_never_activates_a_worse_model(kms_graph, models_dir):
    products, events = ingest_slice(60)
    first = train_model(TINY)
    assert active_version() == first

    assert maybe_retrain(min_new=10) is None  # nothing new since the first version
    later = timezone.now() + timedelta(seconds=5)
    deliver_to_graph(record_events([{"user": f"new-{n}", "product": products[n]["external_id"], "type": "view",
                                     "timestamp": (later + timedelta(seconds=n)).isoformat()} for n in range(12)]).interaction_ids)
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


@pytest.mark.django_db(transaction=True)
def test_a_version_activated_elsewhere_loads_in_the_background(kms_graph, models_dir):
    """Another process activates a new version: this one keeps answering from the index it has
    while the new one loads, then serves the new one."""
    import time

    from kms.recs.services import index_cache

    products, events = ingest_slice(40)
    first = train_model(TINY)
    second = train_model(TINY, activate=False)
    index_cache.clear()
    before = index_cache.get()
    assert index_cache.version_id == first.pk

    # what activate() does, minus this process's cache clear: as seen from another process
    ModelVersion.objects.filter(pk=first.pk).update(state=ModelVersion.State.READY)
    ModelVersion.objects.filter(pk=second.pk).update(state=ModelVersion.State.ACTIVE)
    index_cache.checked = 0.0  # the periodic check is due
    assert index_cache.get() is before  # answered at once from the current index
    deadline = time.monotonic() + 30
    while index_cache.version_id != second.pk and time.monotonic() < deadline:
        index_cache.checked = 0.0
        index_cache.get()
        time.sleep(0.1)
    assert index_cache.version_id == second.pk and index_cache.get() is not before
