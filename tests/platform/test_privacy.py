"""Forgetting a user removes them from the database, the graph store, every model artefact
(precomputed recommendations) and the exported training data."""
import json
from pathlib import Path

import pytest
import torch

from kms.curation.services import deliver_outbox
from kms.events.models import Interaction, ShopUser
from kms.recs.services import forget_user, index_cache, recommend_for_user, train_model
from tests.slices import ingest_slice

SMALL = {"components": ["popularity", "itemcf", "lightgcn"], "fusion": ["itemcf", "lightgcn"],
         "dim": 8, "layers": 1, "epochs": 5, "eval_every": 5, "patience": 1, "threads": 1}


@pytest.mark.django_db
def test_forget_user_everywhere(kms_graph, models_dir, read_client):
    products, events = ingest_slice(60)
    version = train_model(SMALL)
    victim = events[0]["user"]
    uid = f"user:{victim}"
    assert recommend_for_user(victim, 5)["source"] == "model"
    meta = json.loads((Path(version.path) / "model.json").read_text())
    assert uid in meta["user_ids"]

    summary = forget_user(victim)
    assert kms_graph.node(uid) is not None  # the graph erasure waits in the outbox, for its task
    assert deliver_outbox().delivered == 1
    assert summary["events_deleted"] == sum(e["user"] == victim for e in events)
    assert summary["model_versions_scrubbed"] == [version.pk]
    # database
    assert not ShopUser.objects.filter(external_id=victim).exists()
    assert not Interaction.objects.filter(user__external_id=victim).exists()
    # graph store and the training data exported from it
    assert kms_graph.node(uid) is None
    assert uid not in kms_graph.export_training_graph().user_ids
    # the stored model: no id, no history, no user-indexed rows left
    meta = json.loads((Path(version.path) / "model.json").read_text())
    assert uid not in meta["user_ids"]
    row = [n for n, u in enumerate(meta["user_ids"]) if u.startswith("forgotten:")][0]
    state = torch.load(Path(version.path) / "state.pt", weights_only=True)
    assert int(state["history_len"][row]) == 0
    n_users = len(meta["user_ids"])

    def rows(obj):
        if isinstance(obj, torch.Tensor) and obj.dim() >= 1 and obj.shape[0] == n_users and obj.is_floating_point():
            yield obj[row]
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from rows(v)

    assert all(float(r.abs().sum()) == 0.0 for r in rows(state["components"]))
    # serving: the precomputed list is gone; the user is now unknown (cold start)
    index_cache.clear()
    body = read_client.get(f"/api/v1/users/{victim}/recommendations?k=5").json()
    assert body["source"] != "model"
    assert forget_user(victim)["events_deleted"] == 0  # idempotent
