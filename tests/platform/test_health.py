import pytest


@pytest.mark.django_db
def test_live(client):
    assert client.get("/health/live").json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_checks_database_broker_and_graph(client, kms_graph):
    body = client.get("/health/ready").json()
    assert body["status"] == "ok", body
    assert set(body["checks"]) == {"database", "broker", "graph"}
    assert "ArcadeDB" in body["checks"]["graph"]["detail"] or "Neo4j" in body["checks"]["graph"]["detail"]


@pytest.mark.django_db
def test_ready_reports_graph_outage(client, settings):
    from kms.graphstore import reset_graph_store

    settings.KMS_GRAPH = {**settings.KMS_GRAPH, "URI": "bolt://127.0.0.1:1", "PASSWORD": "x"}
    reset_graph_store()
    try:
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["graph"]["ok"] is False
    finally:
        reset_graph_store()
