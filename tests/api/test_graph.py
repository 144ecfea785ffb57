"""Knowledge-graph read endpoints against the real ArcadeDB test server."""
import pytest

from .conftest import error_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_graph(kms_graph):
    from kms.knowledge.models import Entity

    kms_graph.upsert_nodes([
        {"uid": "product:1", "props": {"name": "Stanley TRA708T staples", "external_id": "1"}},
        {"uid": "product:2", "props": {"name": "Stanley TR150 staple gun", "external_id": "2"}},
        {"uid": "brand:stanley", "props": {"name": "Stanley", "type": "BRAND"}},
        {"uid": "category:tools/staples", "props": {"name": "Staples", "type": "CATEGORY"}},
        {"uid": "category:tools", "props": {"name": "Tools", "type": "CATEGORY"}},
    ])
    kms_graph.upsert_relationships([
        {"src": "product:1", "dst": "brand:stanley", "type": "HAS_BRAND", "props": {"confidence": 1.0}},
        {"src": "product:2", "dst": "brand:stanley", "type": "HAS_BRAND", "props": {"confidence": 1.0}},
        {"src": "product:1", "dst": "category:tools/staples", "type": "IN_CATEGORY", "props": {}},
        {"src": "category:tools/staples", "dst": "category:tools", "type": "SUBCATEGORY_OF", "props": {}},
    ])
    Entity.objects.create(uid="brand:stanley", type="BRAND", name="Stanley", aliases=["Stanley Tools"])
    return kms_graph


def test_node(read_client, small_graph):
    body = read_client.get("/api/v1/graph/nodes/brand:stanley").json()
    assert body == {"uid": "brand:stanley", "properties": {"uid": "brand:stanley", "name": "Stanley", "type": "BRAND"}}


def test_node_with_slash_in_uid(read_client, small_graph):
    assert read_client.get("/api/v1/graph/nodes/category:tools/staples").json()["properties"]["name"] == "Staples"


def test_unknown_node_404(read_client, small_graph):
    response = read_client.get("/api/v1/graph/nodes/brand:nobody")
    assert response.status_code == 404 and "uid" in error_fields(response)


def test_neighbours(read_client, small_graph):
    body = read_client.get("/api/v1/graph/nodes/brand:stanley/neighbours").json()
    assert {(n["uid"], n["rel"], n["direction"]) for n in body["neighbours"]} == {
        ("product:1", "HAS_BRAND", "in"), ("product:2", "HAS_BRAND", "in")}
    only = read_client.get("/api/v1/graph/nodes/product:1/neighbours?rel=IN_CATEGORY").json()
    assert [n["uid"] for n in only["neighbours"]] == ["category:tools/staples"]


def test_neighbours_bad_relation_named(read_client, small_graph):
    response = read_client.get("/api/v1/graph/nodes/product:1/neighbours?rel=HAS BRAND;DROP")
    assert response.status_code == 400 and "rel" in error_fields(response)


def test_path_between_products(read_client, small_graph):
    body = read_client.get("/api/v1/graph/paths", {"src": "product:1", "dst": "product:2"}).json()
    best = body["paths"][0]
    assert best["hops"] == 2 and best["rels"] == ["HAS_BRAND", "HAS_BRAND"]
    assert [n["uid"] for n in best["nodes"]] == ["product:1", "brand:stanley", "product:2"]


def test_path_unknown_end_404(read_client, small_graph):
    response = read_client.get("/api/v1/graph/paths", {"src": "product:1", "dst": "product:404"})
    assert response.status_code == 404 and "dst" in error_fields(response)


def test_entity_by_name_and_alias(read_client, small_graph):
    for name in ("stanley", "Stanley Tools"):
        body = read_client.get("/api/v1/graph/entities", {"name": name}).json()
        assert [e["uid"] for e in body] == ["brand:stanley"]
    assert read_client.get("/api/v1/graph/entities", {"name": "Stan"}).json() == []


def test_graph_outage_is_503(read_client, settings):
    from kms.graphstore import reset_graph_store

    settings.KMS_GRAPH = {**settings.KMS_GRAPH, "URI": "bolt://127.0.0.1:1", "PASSWORD": "x"}
    reset_graph_store()
    try:
        response = read_client.get("/api/v1/graph/nodes/brand:stanley")
        assert response.status_code == 503 and response.json()["error"]["code"] == "graph_unavailable"
    finally:
        reset_graph_store()
