"""The graph-store contract, run on every reachable Bolt server (ArcadeDB always, Neo4j if set)."""
import pytest
from neo4j.exceptions import ConstraintError

from graph.schema import checked_name, label_for_uid


def _seed(store):
    store.upsert_nodes([
        {"uid": "product:1", "props": {"title": "Stanley staples", "name": "Stanley staples"}},
        {"uid": "product:2", "props": {"title": "Stanley stapler", "name": "Stanley stapler"}},
        {"uid": "product:3", "props": {"title": "Arrow stapler", "name": "Arrow stapler"}},
        {"uid": "brand:stanley", "props": {"name": "Stanley"}},
        {"uid": "brand:arrow", "props": {"name": "Arrow"}},
        {"uid": "material:steel", "props": {"name": "steel", "type": "MATERIAL"}},
    ])
    store.upsert_relationships([
        {"src": "product:1", "dst": "brand:stanley", "type": "HAS_BRAND", "props": {"confidence": 1.0, "status": "auto"}},
        {"src": "product:2", "dst": "brand:stanley", "type": "HAS_BRAND", "props": {"confidence": 0.9, "status": "auto"}},
        {"src": "product:3", "dst": "brand:arrow", "type": "HAS_BRAND", "props": {"confidence": 1.0, "status": "auto"}},
        {"src": "product:1", "dst": "material:steel", "type": "MADE_OF", "props": {"confidence": 0.8, "status": "auto"}},
    ])


def test_schema_is_idempotent(graph_store):
    graph_store.ensure_schema()
    graph_store.ensure_schema()


def test_uniqueness_constraint_is_enforced(graph_store):
    graph_store.upsert_nodes([{"uid": "product:1", "props": {}}])
    with pytest.raises(ConstraintError):  # Neo.ClientError.Schema.ConstraintValidationFailed on both servers
        graph_store.write("CREATE (:Product {uid: 'product:1'})")


def test_upserts_are_idempotent(graph_store):
    _seed(graph_store)
    _seed(graph_store)
    counts = graph_store.count_nodes()
    assert counts["Product"] == 3 and counts["Brand"] == 2 and counts["Entity"] == 1
    assert graph_store.count_relationships("HAS_BRAND") == 3
    assert graph_store.node("product:1")["title"] == "Stanley staples"


def test_upsert_overwrites_properties(graph_store):
    _seed(graph_store)
    graph_store.upsert_nodes([{"uid": "product:1", "props": {"title": "New title"}}])
    assert graph_store.node("product:1")["title"] == "New title"


def test_batches_larger_than_batch_size(graph_store):
    rows = [{"uid": f"product:{i}", "props": {"title": f"p{i}"}} for i in range(450)]
    graph_store.upsert_nodes(rows)
    graph_store.upsert_nodes([{"uid": "brand:b", "props": {"name": "b"}}])
    graph_store.upsert_relationships([{"src": r["uid"], "dst": "brand:b", "type": "HAS_BRAND"} for r in rows])
    assert graph_store.count_nodes()["Product"] == 450
    assert graph_store.count_relationships("HAS_BRAND") == 450


def test_neighbours(graph_store):
    _seed(graph_store)
    out = graph_store.neighbours("product:1")
    assert {(n["uid"], n["rel"], n["direction"]) for n in out} == {
        ("brand:stanley", "HAS_BRAND", "out"), ("material:steel", "MADE_OF", "out")}
    into = graph_store.neighbours("brand:stanley")
    assert {n["uid"] for n in into} == {"product:1", "product:2"}
    assert all(n["direction"] == "in" for n in into)
    assert [n["uid"] for n in graph_store.neighbours("product:1", rel_types=["MADE_OF"])] == ["material:steel"]


def test_paths_up_to_three_hops(graph_store):
    _seed(graph_store)
    paths = graph_store.paths("product:1", "product:2", max_hops=3)
    assert paths and paths[0]["hops"] == 2
    assert [n["uid"] for n in paths[0]["nodes"]] == ["product:1", "brand:stanley", "product:2"]
    assert paths[0]["rels"] == ["HAS_BRAND", "HAS_BRAND"]
    assert graph_store.paths("product:1", "product:3", max_hops=3) == []


def test_replace_product_facts_keeps_curated(graph_store):
    _seed(graph_store)
    graph_store.set_relationship_status("product:1", "HAS_BRAND", "brand:stanley", {"status": "approved"})
    graph_store.replace_product_facts(
        ["product:1"],
        nodes=[{"uid": "color:red", "props": {"name": "red", "type": "COLOR"}}],
        rels=[{"src": "product:1", "dst": "color:red", "type": "HAS_COLOR", "props": {"status": "auto"}}],
    )
    rels = {(r["type"], r["dst"]) for r in graph_store.relationships_of("product:1")}
    # the auto MADE_OF fact is replaced, the curated brand fact survives
    assert rels == {("HAS_BRAND", "brand:stanley"), ("HAS_COLOR", "color:red")}


def test_interactions_are_idempotent_and_exported_in_order(graph_store):
    _seed(graph_store)
    events = [
        {"user": "user:a", "product": "product:2", "ts": 20.0, "event_id": "e2"},
        {"user": "user:a", "product": "product:1", "ts": 10.0, "event_id": "e1"},
        {"user": "user:b", "product": "product:3", "ts": 5.0, "event_id": "e3"},
    ]
    graph_store.record_interactions(events)
    graph_store.record_interactions(events)  # replay
    assert graph_store.read("MATCH ()-[e:INTERACTED]->() RETURN sum(e.count) AS n")[0]["n"] == 3
    g = graph_store.export_training_graph()
    assert g.item_ids == ["product:1", "product:2", "product:3"]
    a = g.user_ids.index("user:a")
    seq = [g.item_ids[i] for u, i, _ in g.interactions if u == a]
    assert seq == ["product:1", "product:2"]
    triples = {(g.item_ids[i], g.relations[r], g.entity_ids[e]) for i, r, e in g.item_entity}
    assert ("product:1", "MADE_OF", "material:steel") in triples
    assert ("product:3", "HAS_BRAND", "brand:arrow") in triples


def test_export_leaves_out_rejected_facts(graph_store):
    _seed(graph_store)
    graph_store.set_relationship_status("product:1", "MADE_OF", "material:steel", {"status": "rejected"})
    g = graph_store.export_training_graph()
    assert "material:steel" not in g.entity_ids


def test_injection_in_values_is_inert(graph_store):
    evil = "x'}) DETACH DELETE n //"
    graph_store.upsert_nodes([{"uid": "product:1", "props": {"title": evil}}, {"uid": f"brand:{evil}", "props": {}}])
    assert graph_store.node("product:1")["title"] == evil
    assert graph_store.count_nodes()["Product"] == 1
    with pytest.raises(ValueError):
        checked_name("HAS_BRAND]->() DETACH DELETE n //")


def test_labels_from_uids():
    assert label_for_uid("product:1") == "Product"
    assert label_for_uid("category:a/b") == "Category"
    assert label_for_uid("material:steel") == "Entity"
    with pytest.raises(ValueError):
        label_for_uid("nocolon")


def test_delete_node(graph_store):
    _seed(graph_store)
    graph_store.delete_node("brand:stanley")
    assert graph_store.node("brand:stanley") is None
    assert graph_store.count_relationships("HAS_BRAND") == 1


def test_replace_including_curated_keeps_interactions_and_imported_knowledge(graph_store):
    _seed(graph_store)
    graph_store.set_relationship_status("product:1", "HAS_BRAND", "brand:stanley", {"status": "approved"})
    graph_store.upsert_nodes([{"uid": "external:m.1", "props": {"type": "EXTERNAL"}}])
    graph_store.upsert_relationships([{"src": "product:1", "dst": "external:m.1", "type": "KG_FILM_GENRE",
                                       "props": {"status": "imported"}}])
    graph_store.record_interactions([{"user": "user:a", "product": "product:1", "ts": 1.0, "event_id": "e1"}])
    graph_store.replace_product_facts(
        ["product:1"], nodes=[],
        rels=[{"src": "product:1", "dst": "brand:arrow", "type": "HAS_BRAND", "props": {"status": "approved"}}],
        include_curated=True)
    rels = {(r["type"], r["dst"]) for r in graph_store.relationships_of("product:1")}
    assert rels == {("HAS_BRAND", "brand:arrow"), ("KG_FILM_GENRE", "external:m.1")}
    assert graph_store.count_relationships("INTERACTED") == 1


def test_replace_product_facts_writes_every_relationship_once(graph_store):
    """Products and their relationships go in one statement per chunk: each relationship once, with
    its properties, also when its end node was written by an earlier chunk (not in this batch) or
    not at all; product relationships and others (SUBCATEGORY_OF) in the same call; replaying is a no-op."""
    graph_store.upsert_nodes([{"uid": "brand:stanley", "props": {"name": "Stanley"}}])
    nodes = [{"uid": "product:1", "props": {"title": "Stanley staples"}},
             {"uid": "product:2", "props": {"title": "Steel stapler"}},
             {"uid": "category:tools", "props": {"name": "Tools"}},
             {"uid": "category:tools/staplers", "props": {"name": "Staplers"}},
             {"uid": "material:steel", "props": {"name": "steel"}}]
    rels = [{"src": "product:1", "dst": "brand:stanley", "type": "HAS_BRAND", "props": {"status": "auto", "confidence": 0.9}},
            {"src": "product:1", "dst": "material:steel", "type": "MADE_OF", "props": {"status": "auto", "confidence": 0.7}},
            {"src": "product:2", "dst": "material:steel", "type": "MADE_OF", "props": {"status": "auto", "confidence": 0.6}},
            {"src": "product:2", "dst": "measure:length-6-mm", "type": "HAS_ATTRIBUTE",
             "props": {"status": "auto", "confidence": 1.0, "value": "6", "unit": "mm"}},
            {"src": "product:2", "dst": "category:tools/staplers", "type": "IN_CATEGORY", "props": {"status": "auto", "confidence": 1.0}},
            {"src": "category:tools/staplers", "dst": "category:tools", "type": "SUBCATEGORY_OF", "props": {}}]
    for _ in range(2):
        graph_store.replace_product_facts(["product:1", "product:2"], nodes, rels)
    got = {(r["type"], r["dst"]): r["props"] for r in graph_store.relationships_of("product:2")}
    assert set(got) == {("MADE_OF", "material:steel"), ("HAS_ATTRIBUTE", "measure:length-6-mm"),
                        ("IN_CATEGORY", "category:tools/staplers")}
    assert got[("HAS_ATTRIBUTE", "measure:length-6-mm")]["unit"] == "mm"
    assert {(r["type"], r["dst"]) for r in graph_store.relationships_of("product:1")} == \
        {("HAS_BRAND", "brand:stanley"), ("MADE_OF", "material:steel")}
    assert graph_store.count_relationships("MADE_OF") == 2 and graph_store.count_relationships("SUBCATEGORY_OF") == 1
    assert graph_store.node("product:1")["title"] == "Stanley staples"
