"""A merge reaches the graph store, the NLP rules, and the explanations of the next trained model."""
from collections import Counter, defaultdict

import pytest

from kms.catalogue.models import Product
from kms.curation.services import deliver_outbox, merge_entities
from kms.knowledge.models import Entity, Fact
from kms.knowledge.services import build_knowledge_base
from kms.recs.services import train_model
from recommender.explain import ExplanationGraph
from recommender.training import TrainedModel
from tests.slices import ingest_slice

TINY = {"components": ["popularity", "itemcf", "lightgcn"], "fusion": ["itemcf", "lightgcn"],
        "dim": 8, "layers": 1, "epochs": 5, "eval_every": 5, "patience": 1, "threads": 1}


def _explain(version, item, history_item):
    graph = ExplanationGraph.from_model(TrainedModel.load(version.path))
    return graph.explain(item.graph_uid, history=[history_item.graph_uid])


@pytest.mark.django_db
def test_merge_reaches_graph_rules_and_next_model(kms_graph, models_dir, role_users):
    products, events = ingest_slice(80)

    brand_facts = Fact.objects.filter(relation="HAS_BRAND", field="brand").select_related("entity", "product")
    # two common brands with products in the same department: a brand shared across departments
    # explains nothing (recommender.explain), so the pair must be related for the merge to show
    by_brand = defaultdict(list)
    for f in brand_facts:
        by_brand[f.entity_id].append(f.product)
    ranked = [e for e, _ in Counter(f.entity_id for f in brand_facts).most_common()]
    keep_id, drop_id, keep_item, drop_item = next(
        (a, b, pa, pb) for a in ranked for b in ranked if a != b for pa in by_brand[a] for pb in by_brand[b]
        if pa.pk != pb.pk and pa.category_path[:2] == pb.category_path[:2])
    keep, drop = Entity.objects.get(pk=keep_id), Entity.objects.get(pk=drop_id)

    before = _explain(train_model(TINY), keep_item, drop_item)
    assert before is None or all(e.relation != "HAS_BRAND" for e in before.edges)

    merge_entities(role_users["curator"], keep.pk, drop.pk, reason="same company")
    deliver_outbox()  # on commit in production; the test's transaction never commits

    # graph store: the dropped brand's products now point at the kept brand; the node is gone
    assert kms_graph.node(drop.uid) is None
    rels = {(r["type"], r["dst"]) for r in kms_graph.relationships_of(drop_item.graph_uid)}
    assert ("HAS_BRAND", keep.uid) in rels
    # NLP rules: the dropped name now links to the kept entity
    kb = build_knowledge_base()
    assert kb.link("BRAND", drop.name) == keep.uid.split(":", 1)[1]
    # the next model explains through the merged brand
    after = _explain(train_model(TINY), keep_item, drop_item)
    assert after is not None and after.kind == "shared_entity"
    assert any(e.relation == "HAS_BRAND" and e.target == f"entity:{keep.uid}" for e in after.edges), after
    assert keep.name in after.text
    assert Product.objects.filter(pk=drop_item.pk, facts__entity=keep, facts__relation="HAS_BRAND").exists()
