"""Curation services against PostgreSQL and a real ArcadeDB graph store."""
from __future__ import annotations

import pytest

from kms.curation import services
from kms.curation.models import AuditEntry, OutboxEntry
from kms.knowledge.models import Entity, Fact, Status

pytestmark = pytest.mark.django_db


def rel_status(store, product_uid: str, rel: str) -> dict[str, str]:
    """{target uid: status} of one product's relationships of type ``rel`` in the graph store."""
    return {r["dst"]: r["props"].get("status") for r in store.relationships_of(product_uid) if r["type"] == rel}


def delivered() -> services.DeliveryResult:
    result = services.deliver_outbox()
    assert result.error == "" and result.pending == 0, result
    return result


def test_merge_moves_facts_and_aliases_in_db_and_graph(catalogue, kms_graph, role_users):
    keep, drop = catalogue["entities"]["brand:stanley"], catalogue["entities"]["brand:stanley-tools"]
    assert rel_status(kms_graph, "product:p2", "HAS_BRAND") == {"brand:stanley-tools": "auto"}

    entry = services.merge_entities(role_users["curator"], keep.pk, drop.pk, reason="same brand")
    delivered()

    keep.refresh_from_db(), drop.refresh_from_db()
    assert drop.merged_into_id == keep.pk
    assert "Stanley Tools" in keep.aliases
    assert set(Fact.objects.filter(relation="HAS_BRAND", entity=keep).values_list("product__external_id", flat=True)) \
        == {"p1", "p2", "p3"}
    assert not Fact.objects.filter(entity=drop).exists()
    # graph: the duplicate node is gone, its relationships now point at the kept node
    assert kms_graph.node("brand:stanley-tools") is None
    assert "Stanley Tools" in kms_graph.node("brand:stanley")["aliases"]
    for p in ("p1", "p2", "p3"):
        assert rel_status(kms_graph, f"product:{p}", "HAS_BRAND") == {"brand:stanley": "auto"}
    assert {n["uid"] for n in kms_graph.neighbours("brand:stanley")} == {"product:p1", "product:p2", "product:p3"}
    assert entry.action == AuditEntry.Action.ENTITY_MERGE and entry.user == role_users["curator"]
    assert entry.before["drop"]["merged_into_id"] is None and entry.after["drop"]["merged_into_id"] == keep.pk
    assert entry.reason == "same brand"


def test_merge_nodes_moves_every_relationship_type(kms_graph):
    kms_graph.upsert_nodes([{"uid": u, "props": {"name": u}} for u in
                            ("category:a", "category:a2", "category:b", "product:x", "product:y")])
    kms_graph.upsert_relationships([
        {"src": "category:a2", "dst": "category:b", "type": "SUBCATEGORY_OF", "props": {"w": 1}},
        {"src": "product:x", "dst": "category:a2", "type": "IN_CATEGORY", "props": {"status": "approved"}},
        {"src": "product:y", "dst": "category:a", "type": "IN_CATEGORY", "props": {}},
    ])
    assert kms_graph.merge_nodes("category:a", "category:a2") == 2
    assert kms_graph.merge_nodes("category:a", "category:a2") == 0  # idempotent once applied
    assert kms_graph.node("category:a2") is None
    assert kms_graph.relationships_of("category:a") == [
        {"type": "SUBCATEGORY_OF", "dst": "category:b", "props": {"w": 1}}]
    assert rel_status(kms_graph, "product:x", "IN_CATEGORY") == {"category:a": "approved"}


def test_merge_feeds_the_nlp_rules(catalogue, role_users):
    nlp = pytest.importorskip("nlp")
    if not hasattr(nlp, "KnowledgeBase"):
        pytest.skip("the nlp package in this tree does not export KnowledgeBase yet")
    from kms.knowledge.services import build_knowledge_base

    keep, drop = catalogue["entities"]["brand:stanley"], catalogue["entities"]["brand:stanley-tools"]
    services.merge_entities(role_users["curator"], keep.pk, drop.pk)
    kb = build_knowledge_base()
    assert "Stanley Tools" in kb.entities["BRAND"]["stanley"]["aliases"]


def test_approve_and_reject_reach_the_graph(catalogue, kms_graph, role_users):
    f = catalogue["facts"]
    services.set_fact_status(role_users["curator"], [f["p1_steel"].pk], Status.APPROVED)
    services.set_fact_status(role_users["curator"], [f["p4_steel"].pk, f["p3_brand"].pk], Status.REJECTED)
    delivered()
    assert Fact.objects.get(pk=f["p1_steel"].pk).status == Status.APPROVED
    assert Fact.objects.get(pk=f["p1_steel"].pk).curated_by == role_users["curator"]
    assert rel_status(kms_graph, "product:p1", "MADE_OF") == {"material:steel": "approved"}
    assert rel_status(kms_graph, "product:p4", "MADE_OF") == {"material:steel": "rejected"}
    assert rel_status(kms_graph, "product:p3", "HAS_BRAND") == {"brand:stanley-tools": "rejected"}
    # untouched facts keep their graph relationships
    assert rel_status(kms_graph, "product:p4", "HAS_BRAND") == {"brand:bosch": "auto"}
    assert rel_status(kms_graph, "product:p1", "IN_CATEGORY") == {"category:tools": "auto"}
    # rejected facts stay out of the training graph
    exported = kms_graph.export_training_graph()
    edges = {(exported.item_ids[i], exported.relations[r], exported.entity_ids[e]) for i, r, e in exported.item_entity}
    assert ("product:p3", "HAS_BRAND", "brand:stanley-tools") not in edges
    assert ("product:p2", "HAS_BRAND", "brand:stanley-tools") in edges


def test_audit_trail_and_one_click_revert(catalogue, kms_graph, role_users):
    curator, f = role_users["curator"], catalogue["facts"]
    ids = [f["p1_steel"].pk, f["p4_steel"].pk]
    entry = services.set_fact_status(curator, ids, Status.REJECTED, reason="not made of steel")
    delivered()
    assert [s["status"] for s in entry.before["facts"]] == ["auto", "auto"]
    assert [s["status"] for s in entry.after["facts"]] == ["rejected", "rejected"]
    assert entry.entity_uids == ["material:steel"] and entry.created_at is not None

    undo = services.revert(role_users["admin"], entry.pk, reason="oops")
    delivered()
    assert undo.action == AuditEntry.Action.REVERT and undo.revert_of_id == entry.pk
    assert undo.before == entry.after and undo.after == entry.before
    assert set(Fact.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Status.AUTO}
    assert rel_status(kms_graph, "product:p4", "MADE_OF") == {"material:steel": "auto"}
    with pytest.raises(services.CurationError):
        services.revert(curator, entry.pk)  # already reverted
    with pytest.raises(services.CurationError):
        services.revert(curator, undo.pk)  # reverts are not themselves reverted


def test_revert_refuses_when_a_later_change_exists(catalogue, role_users):
    fact = catalogue["facts"]["p1_steel"]
    first = services.set_fact_status(role_users["curator"], [fact.pk], Status.APPROVED)
    services.set_fact_status(role_users["curator"], [fact.pk], Status.REJECTED)
    with pytest.raises(services.CurationError, match="changed after"):
        services.revert(role_users["curator"], first.pk)


def test_revert_merge_restores_both_entities(catalogue, kms_graph, role_users):
    keep, drop = catalogue["entities"]["brand:stanley"], catalogue["entities"]["brand:stanley-tools"]
    entry = services.merge_entities(role_users["curator"], keep.pk, drop.pk)
    services.revert(role_users["curator"], entry.pk)
    delivered()
    keep.refresh_from_db(), drop.refresh_from_db()
    assert drop.merged_into_id is None and keep.aliases == []
    assert Fact.objects.filter(entity=drop).count() == 2
    assert kms_graph.node("brand:stanley-tools")["name"] == "Stanley Tools"
    assert rel_status(kms_graph, "product:p2", "HAS_BRAND") == {"brand:stanley-tools": "auto"}
    assert rel_status(kms_graph, "product:p1", "HAS_BRAND") == {"brand:stanley": "auto"}


def test_create_rename_split_delete_and_revert_delete(catalogue, kms_graph, role_users):
    curator, admin = role_users["curator"], role_users["admin"]
    created = services.create_entity(curator, "MATERIAL", "Stainless Steel", ["inox"])
    delivered()
    uid = created.after["entity"]["uid"]
    assert uid == "material:stainless-steel" and kms_graph.node(uid)["aliases"] == ["inox"]

    steel = catalogue["entities"]["material:steel"]
    services.rename_entity(curator, steel.pk, "Steel")
    steel.refresh_from_db()
    assert steel.name == "Steel" and "steel" in steel.aliases and steel.uid == "material:steel"

    split = services.split_entity(curator, steel.pk, "Carbon steel", [catalogue["facts"]["p4_steel"].pk])
    delivered()
    new_uid = split.after["new"]["uid"]
    moved = Fact.objects.get(pk=catalogue["facts"]["p4_steel"].pk)
    assert moved.entity.uid == new_uid and moved.status == Status.APPROVED
    assert rel_status(kms_graph, "product:p4", "MADE_OF") == {new_uid: "approved"}
    assert rel_status(kms_graph, "product:p1", "MADE_OF") == {"material:steel": "auto"}

    with pytest.raises(services.CurationError):
        services.merge_entities(curator, steel.pk, catalogue["entities"]["brand:bosch"].pk)  # types differ

    bosch = catalogue["entities"]["brand:bosch"]
    deleted = services.delete_entity(admin, bosch.pk, reason="test")
    delivered()
    assert not Entity.objects.filter(uid="brand:bosch").exists() and kms_graph.node("brand:bosch") is None
    assert rel_status(kms_graph, "product:p4", "HAS_BRAND") == {}
    services.revert(admin, deleted.pk)
    delivered()
    assert Entity.objects.get(uid="brand:bosch").facts.count() == 1
    assert rel_status(kms_graph, "product:p4", "HAS_BRAND") == {"brand:bosch": "auto"}


def test_edit_fact_marks_it_curated(catalogue, kms_graph, role_users):
    fact = catalogue["facts"]["p3_brand"]
    services.edit_fact(role_users["curator"], fact.pk, entity="brand:stanley", reason="brand is Stanley")
    delivered()
    fact.refresh_from_db()
    assert fact.entity.uid == "brand:stanley" and fact.status == Status.APPROVED
    assert rel_status(kms_graph, "product:p3", "HAS_BRAND") == {"brand:stanley": "approved"}
    with pytest.raises(services.CurationError):
        services.edit_fact(role_users["curator"], fact.pk, relation="NOT_A_RELATION")


def test_review_queue_orders_by_low_confidence_and_high_impact(catalogue):
    f = catalogue["facts"]
    queue = list(services.review_queue())
    # steel (degree 2) on p4 (3 interactions) outranks the less confident steel fact on p1 (1 interaction)
    assert [x.pk for x in queue[:3]] == [f["p4_steel"].pk, f["p1_steel"].pk, f["p3_brand"].pk]
    assert (queue[0].degree, queue[0].traffic, queue[0].impact) == (2, 3, 6)
    services.set_fact_status(None, [f["p4_steel"].pk], Status.APPROVED)
    assert services.review_queue().first().pk == f["p1_steel"].pk  # curated facts leave the queue


def test_periodic_task_delivers_the_outbox(catalogue, kms_graph, role_users):
    from kms.celery import app
    from kms.curation.tasks import deliver_graph_outbox

    assert app.conf.beat_schedule["deliver-graph-outbox"]["task"] == "kms.curation.tasks.deliver_graph_outbox"
    services.set_fact_status(role_users["curator"], [catalogue["facts"]["p1_steel"].pk], Status.APPROVED)
    assert OutboxEntry.objects.filter(state="pending").count() == 1
    assert deliver_graph_outbox.delay().get()["delivered"] == 1
    assert rel_status(kms_graph, "product:p1", "MADE_OF") == {"material:steel": "approved"}


def test_re_extraction_keeps_curated_facts(kms_graph, role_users, models_dir):
    """ingest_products (the real NLP pipeline) never overwrites approved or rejected facts."""
    nlp = pytest.importorskip("nlp")
    if not hasattr(nlp, "build_pipeline"):
        pytest.skip("the nlp package in this tree does not export build_pipeline yet")
    import importlib.util
    from pathlib import Path

    from kms.catalogue.models import Product
    from kms.catalogue.services import upsert_products
    from kms.knowledge.services import ingest_products

    from tests.slices import _scientific_slice

    products, _ = _scientific_slice(3)
    ids = upsert_products(products).created
    ingest_products(list(Product.objects.filter(pk__in=ids)))
    facts = list(Fact.objects.filter(product_id__in=ids).order_by("id")[:2])
    assert len(facts) == 2, "the slice should yield facts"
    services.set_fact_status(role_users["curator"], [facts[0].pk], Status.APPROVED)
    services.set_fact_status(role_users["curator"], [facts[1].pk], Status.REJECTED)
    delivered()
    ingest_products(list(Product.objects.filter(pk__in=ids)))
    assert Fact.objects.get(pk=facts[0].pk).status == Status.APPROVED
    assert Fact.objects.get(pk=facts[1].pk).status == Status.REJECTED
    assert not Fact.objects.filter(product=facts[1].product, relation=facts[1].relation,
                                   entity=facts[1].entity, status=Status.AUTO).exists()
