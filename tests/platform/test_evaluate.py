"""`manage.py evaluate` on a real Scientific slice: the stored figures are the standard protocol
computed directly, and the portal's models page shows them."""
import json
from io import StringIO

import pytest
from django.core.management import call_command

from kms.graphstore import get_graph_store
from kms.recs.models import ModelVersion
from kms.recs.services import train_model, training_data
from recommender.data import leave_last_out
from recommender.metrics import evaluate
from recommender.neighbourhood import ItemCF
from recommender.popularity import Popularity
from recommender.training import TrainedModel
from tests.slices import ingest_slice

SMALL = {"components": ["popularity", "itemcf", "lightgcn", "entitycf"], "fusion": ["itemcf", "lightgcn"],
         "dim": 16, "layers": 2, "epochs": 10, "eval_every": 5, "patience": 1, "threads": 1}
KEYS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def _direct(score, histories, targets):
    m = evaluate(lambda u: score(u, [histories[i] for i in u.tolist()]), histories, targets)
    return {k: m[k] for k in KEYS}


def _close(a: dict, b: dict):
    assert set(a) >= set(KEYS)
    for k in KEYS:
        assert a[k] == pytest.approx(b[k], abs=1e-9), k


@pytest.mark.django_db
def test_evaluate_stores_the_protocol_figures_of_the_served_model(kms_graph, models_dir, client, django_user_model):
    ingest_slice(60)
    version = train_model(SMALL)
    assert version.state == ModelVersion.State.ACTIVE, version.message

    out = StringIO()
    call_command("evaluate", "--json", stdout=out)
    printed = json.loads(out.getvalue())
    version.refresh_from_db()
    stored = version.evaluation
    assert printed == stored
    assert set(stored) >= {"served", "components", "baselines", "users", "evaluated_at"}

    # the same protocol, computed here directly from the graph's events
    data = training_data(get_graph_store().export_training_graph())
    split = leave_last_out(data)
    hist, targets = split.history("test"), split.targets("test")
    assert stored["users"] == int((targets >= 0).sum()) > 0
    model = TrainedModel.load(version.path)
    assert model.item_ids == data.item_ids and model.user_ids == data.user_ids
    for c in model.components.values():
        c.prepare(hist)
    model.history = hist
    served = _direct(model.score, hist, targets)
    _close(stored["served"], served)
    # training's own test figure of what it serves (the fusion, with the cold-start blend if any)
    _close(stored["served"], version.metrics["test"].get("fusion+cold_blend") or version.metrics["test"]["fusion"])
    assert set(stored["components"]) == set(SMALL["components"])
    for name, c in model.components.items():
        _close(stored["components"][name], _direct(c.score, hist, targets))
        # ... which is what training itself measured on its test split
        _close(stored["components"][name], version.metrics["test"][name])
    pop = Popularity(data.n_items)
    pop.prepare(hist)
    _close(stored["baselines"]["popularity"], _direct(pop.score, hist, targets))
    itemcf = ItemCF(data.n_items, model.params["cf_neighbours"])
    itemcf.prepare(hist)
    _close(stored["baselines"]["itemcf"], _direct(itemcf.score, hist, targets))
    assert stored["served"] != stored["baselines"]["popularity"]

    # the table form, and another version by id
    out = StringIO()
    call_command("evaluate", "--version", str(version.pk), stdout=out)
    table = out.getvalue()
    assert "served" in table and "baseline itemcf" in table and f"{stored['served']['ndcg@20']:.4f}" in table

    # the portal's models page shows it
    from django.contrib.auth.models import Group

    from kms.curation.roles import setup_roles

    setup_roles()
    viewer = django_user_model.objects.create_user("viewer", password="pw-evaluate")
    viewer.groups.add(Group.objects.get(name="viewer"))
    client.force_login(viewer)
    page = client.get("/portal/ops/models/").content.decode()
    assert 'id="evaluation"' in page and f"{stored['served']['ndcg@20']:.4f}" in page


@pytest.mark.django_db
def test_evaluate_counts_targets_the_model_never_saw_as_misses(kms_graph, models_dir):
    """Events that arrived after training: a new user is scored from history, and a test
    target on a product the model does not know is a miss, not a skipped user."""
    from kms.catalogue.services import upsert_products
    from kms.events.services import record_events
    from kms.events.tasks import deliver_to_graph
    from kms.recs.evaluation import evaluate_version

    products, events = ingest_slice(40)
    version = train_model(SMALL)
    before = evaluate_version(version)
    upsert_products([{"external_id": "brand-new", "title": "Brand new widget"}])
    seq = [e["product"] for e in events if e["user"] == events[0]["user"]]
    deliver_to_graph(record_events([{"user": "late-user", "product": p, "type": "purchase", "event_id": f"late-{n}",
                                     "timestamp": f"2019-01-01T00:00:0{n}Z"} for n, p in enumerate(seq[:3] + ["brand-new"])]).interaction_ids)
    after = evaluate_version(version)
    assert after["users"] == before["users"] + 1
    assert after["users_unknown_to_model"] == 1 and after["targets_unknown_to_model"] == 1
    # The late user is not in the model's state, so nobody else's scores move, and their target
    # is a product the model never saw: a miss. Every figure of the model scales by n / (n + 1).
    n = before["users"]
    for k in KEYS:
        assert after["served"][k] == pytest.approx(before["served"][k] * n / (n + 1), abs=1e-12)
        for name in SMALL["components"]:
            assert after["components"][name][k] == pytest.approx(before["components"][name][k] * n / (n + 1), abs=1e-12)
