"""Bad input is a 4xx in the one error shape, naming the field; never a 500."""
import pytest

from .conftest import error_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(db):
    from kms.catalogue.services import upsert_products

    upsert_products([{"external_id": "p1", "title": "Stanley staples", "brand": "Stanley"}])


@pytest.mark.parametrize("url,field", [
    ("/api/v1/users/u1/recommendations?k=100000", "k"),
    ("/api/v1/users/u1/recommendations?k=abc", "k"),
    ("/api/v1/users/u1/recommendations?k=0", "k"),
    ("/api/v1/users/u1/recommendations?exclude_seen=maybe", "exclude_seen"),
    ("/api/v1/products/p1/similar?k=-1", "k"),
    ("/api/v1/popular?k=1e9", "k"),
    ("/api/v1/search?k=5", "q"),
    ("/api/v1/search?q=", "q"),
    ("/api/v1/search?q=" + "x" * 600, "q"),
    ("/api/v1/search?q=staples&k=1000", "k"),
    ("/api/v1/products?page_size=0", "page_size"),
    ("/api/v1/graph/paths?src=product:1", "dst"),
    ("/api/v1/graph/paths?src=product:1&dst=product:2&max_hops=9", "max_hops"),
    ("/api/v1/graph/nodes/no-prefix", "uid"),
    ("/api/v1/graph/entities", "name"),
])
def test_bad_query_parameters(read_client, catalogue, url, field):
    response = read_client.get(url)
    assert response.status_code == 400, response.content
    assert field in error_fields(response)


@pytest.mark.parametrize("url", ["/api/v1/products/nope", "/api/v1/products/nope/similar",
                                 "/api/v1/users/nope", "/api/v1/jobs/ingest/424242", "/api/v1/no/such/endpoint"])
def test_unknown_ids_are_404(read_client, url):
    response = read_client.get(url)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found" and error_fields(response)


@pytest.mark.parametrize("body,content_type", [
    ("{not json", "application/json"),
    ("", "application/json"),
    (b"\xff\xfe", "application/json"),
    ("[" * 5000 + "]" * 5000, "application/json"),
    ('{"a":' * 100 + "1" + "}" * 100, "application/json"),
    ('{"external_id": "x"}\n[[[', "application/x-ndjson"),
])
def test_malformed_bodies(write_client, body, content_type):
    response = write_client.generic("POST", "/api/v1/products", body, content_type=content_type)
    assert response.status_code == 400, response.content
    assert "body" in error_fields(response)


def test_wrong_types_named(write_client):
    response = write_client.post("/api/v1/products", [{"external_id": "x", "title": ["a"], "brand": 3}], format="json")
    assert response.status_code == 400
    fields = error_fields(response)
    assert "0.title" in fields and "0.brand" in fields


def test_deeply_nested_attributes(write_client):
    attrs = {}
    node = attrs
    for _ in range(30):
        node["a"] = {}
        node = node["a"]
    response = write_client.post("/api/v1/products", {"external_id": "x", "title": "t", "attributes": attrs},
                                 format="json")
    assert response.status_code == 202  # 31 levels is allowed; deeper bodies are refused as above


def test_unsupported_media_type(write_client):
    response = write_client.generic("POST", "/api/v1/products", "a,b", content_type="text/csv")
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"


def test_method_not_allowed(write_client):
    response = write_client.put("/api/v1/popular", {}, format="json")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_too_many_records(write_client):
    response = write_client.post("/api/v1/events", [{}] * 5001, format="json")
    assert response.status_code == 400 and "body" in error_fields(response)


def test_event_for_unknown_product_named(write_client, catalogue):
    response = write_client.post("/api/v1/events", {"user": "u", "product": "nope"}, format="json")
    assert response.status_code == 400 and "0.product" in error_fields(response)


def test_unknown_user_gets_cold_start(read_client, catalogue):
    response = read_client.get("/api/v1/users/never-seen/recommendations?k=5&explain=true")
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == "never-seen" and body["source"] in ("popular", "cold-start")
    assert [i["product"] for i in body["items"]] == ["p1"]
    assert body["explanations"].startswith("unavailable")


def test_popular_and_category_filter(read_client, catalogue):
    from kms.catalogue.services import upsert_products

    upsert_products([{"external_id": "p2", "title": "x", "category_path": ["Tools", "Files"]}])
    assert [i["product"] for i in read_client.get("/api/v1/popular?category=files").json()["items"]] == ["p2"]


def test_a_failure_after_the_view_is_a_json_500_on_api_paths(read_client, monkeypatch):
    """An answer that cannot be rendered (here an object no JSON encoder knows; the experiment
    results' infinite intervals once were one, before the renderer wrote them as null) fails after
    the view returned: the API still answers in the error shape, not Django's HTML page; other
    paths keep Django's page."""
    from django.urls import get_resolver
    from rest_framework.response import Response

    from kms.api import errors
    from kms.api.views import Ping

    assert get_resolver().resolve_error_handler(500) is errors.server_error
    monkeypatch.setattr(Ping, "get", lambda self, request: Response({"status": object()}))
    read_client.raise_request_exception = False
    response = read_client.get("/api/v1/ping")
    assert response.status_code == 500 and response["Content-Type"].startswith("application/json")
    assert response.json() == {"error": {"code": "server_error", "message": "internal error", "fields": {}}}
    from django.test import RequestFactory

    page = errors.server_error(RequestFactory().get("/portal/"))
    assert page.status_code == 500 and not page["Content-Type"].startswith("application/json")
