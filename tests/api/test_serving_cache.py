"""The read hot path (recommendations, similar, popular) runs no SQL once warm, and every change
that matters reaches it on the very next request: posted events, product edits and deletions,
user erasure, model activation — also when the change was made by another process (simulated by
a second ``ServingCache`` bumping the shared counters in Redis, as another web process would)."""
import shutil
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kms.catalogue.models import Product
from kms.recs.models import ModelVersion
from kms.recs.serving_cache import ServingCache, serving_cache
from kms.recs.services import train_model
from tests.slices import ingest_slice

SMALL = {"components": ["popularity", "itemcf", "lightgcn"], "fusion": ["itemcf", "lightgcn"],
         "dim": 8, "layers": 1, "epochs": 5, "eval_every": 5, "patience": 1, "threads": 1}


@pytest.fixture
def served(kms_graph, models_dir, settings):
    """60 users' slice ingested and a model trained and active; the serving cache on (the test
    Redis, as with a broker)."""
    assert settings.KMS_SERVING_REDIS_URL, "the tests run with a Redis broker: the serving cache is on"
    products, events = ingest_slice(60)
    version = train_model(SMALL)
    assert version.state == "active"
    serving_cache.clear()
    return products, events, version


def _list(body: dict) -> dict:
    """A response without its ``recommendation_id`` (a new one per list served: issue #16)."""
    return {k: v for k, v in body.items() if k != "recommendation_id"}


def _queries(fn):
    with CaptureQueriesContext(connection) as ctx:
        response = fn()
    assert response.status_code == 200, response.content
    return response.json(), [q["sql"] for q in ctx.captured_queries]


def _warm(fn):
    for _ in range(2):  # the first request loads the index, product rows, the history into Redis
        assert fn().status_code == 200
    return _queries(fn)


@pytest.mark.django_db
def test_hot_path_runs_no_sql_once_warm(served, read_client, settings):
    _, events, version = served
    user = events[0]["user"]
    product = events[0]["product"]
    endpoints = {
        "recommendations": lambda: read_client.get(f"/api/v1/users/{user}/recommendations?k=10"),
        "cold user": lambda: read_client.get("/api/v1/users/nobody-yet/recommendations?k=10"),
        "similar": lambda: read_client.get(f"/api/v1/products/{product}/similar?k=10"),
        "popular": lambda: read_client.get("/api/v1/popular?k=10"),
    }
    bodies = {}
    for name, fn in endpoints.items():
        bodies[name], queries = _warm(fn)
        assert queries == [], (name, queries)
    assert bodies["recommendations"]["source"] == "model" and len(bodies["recommendations"]["items"]) == 10
    assert bodies["recommendations"]["model_version"] == version.pk
    assert bodies["similar"]["source"] == "model" and bodies["similar"]["items"]
    assert len(bodies["popular"]["items"]) == 10

    # The zero queries come from the cache: with it off, the same request reads the history again
    # and answers the same.
    settings.KMS_SERVING_REDIS_URL = ""
    body, queries = _queries(endpoints["recommendations"])
    assert any("events_interaction" in q for q in queries), queries
    assert _list(body) == _list(bodies["recommendations"])


@pytest.mark.django_db
def test_posted_event_counts_on_the_next_request(served, read_client, write_client):
    _, events, _ = served
    user = events[0]["user"]
    url = f"/api/v1/users/{user}/recommendations?k=10"
    before, _ = _warm(lambda: read_client.get(url))
    top = before["items"][0]["product"]
    response = write_client.post("/api/v1/events", {"user": user, "product": top, "type": "purchase"}, format="json")
    assert response.status_code == 202 and response.json()["created"] == 1
    after, queries = _queries(lambda: read_client.get(url))
    assert top not in [item["product"] for item in after["items"]]  # bought now: never recommended
    assert queries, "the changed history must be read again"
    again, queries = _queries(lambda: read_client.get(url))
    assert queries == [] and _list(again) == _list(after)

    # a brand-new user's first event: from cold start to the model on the next request
    cold = "/api/v1/users/newcomer/recommendations?k=10"
    assert _warm(lambda: read_client.get(cold))[0]["source"] == "cold-start"
    write_client.post("/api/v1/events", {"user": "newcomer", "product": top, "type": "view"}, format="json")
    body, _ = _queries(lambda: read_client.get(cold))
    assert body["source"] == "model" and top not in [item["product"] for item in body["items"]]


@pytest.mark.django_db
def test_product_edit_and_delete_reach_the_next_request(served, read_client, write_client):
    _, events, _ = served
    user = events[0]["user"]
    url = f"/api/v1/users/{user}/recommendations?k=10"
    body, _ = _warm(lambda: read_client.get(url))
    first, second = body["items"][0]["product"], body["items"][1]["product"]
    similar_url = f"/api/v1/products/{events[0]['product']}/similar?k=10"
    _warm(lambda: read_client.get(similar_url))

    # through the API (this process drops its row at once; the counter tells the others)
    response = write_client.patch(f"/api/v1/products/{first}", {"title": "Renamed through the API"}, format="json")
    assert response.status_code == 200, response.content
    body, _ = _queries(lambda: read_client.get(url))
    assert body["items"][0]["title"] == "Renamed through the API"

    # by another process: the row changes under us, only the shared counter moves
    Product.objects.filter(external_id=first).update(title="Renamed elsewhere")
    assert _queries(lambda: read_client.get(url))[0]["items"][0]["title"] == "Renamed through the API"  # cached
    ServingCache().changed("catalogue")
    assert _queries(lambda: read_client.get(url))[0]["items"][0]["title"] == "Renamed elsewhere"

    assert write_client.delete(f"/api/v1/products/{second}").status_code == 204
    body, _ = _queries(lambda: read_client.get(url))
    assert second not in [item["product"] for item in body["items"]]
    assert read_client.get(f"/api/v1/products/{second}/similar").status_code == 404
    assert second not in [i["product"] for i in _queries(lambda: read_client.get(similar_url))[0]["items"]]
    assert second not in [i["product"] for i in _queries(lambda: read_client.get("/api/v1/popular?k=50"))[0]["items"]]


@pytest.mark.django_db
def test_user_erasure_reaches_the_next_request(served, read_client, write_client):
    _, events, _ = served
    user = events[0]["user"]
    url = f"/api/v1/users/{user}/recommendations?k=10"
    assert _warm(lambda: read_client.get(url))[0]["source"] == "model"
    assert write_client.delete(f"/api/v1/users/{user}").status_code == 204
    body, _ = _queries(lambda: read_client.get(url))
    assert body["source"] == "cold-start"  # no history, no precomputed list

    # erasing only the events: the cached history goes too
    other = next(e["user"] for e in events if e["user"] != user)
    url = f"/api/v1/users/{other}/recommendations?k=10&exclude_seen=true"
    mine = {e["product"] for e in events if e["user"] == other}
    _warm(lambda: read_client.get(url))
    assert write_client.delete(f"/api/v1/users/{other}/events").json()["deleted"] == len(mine)
    assert serving_cache.read(other).history is None
    body, _ = _queries(lambda: read_client.get(url))
    assert serving_cache.read(other).history == []


@pytest.mark.django_db
def test_model_activation_elsewhere_reaches_the_next_request(served, read_client):
    _, events, version = served
    user = events[0]["user"]
    url = f"/api/v1/users/{user}/recommendations?k=10"
    assert _warm(lambda: read_client.get(url))[0]["model_version"] == version.pk
    # another process activates a new version (same artefact, copied: a new version directory)
    path = Path(version.path).with_name(f"v{version.pk}-copy")
    shutil.copytree(version.path, path)
    newer = ModelVersion.objects.create(state=ModelVersion.State.READY, path=str(path), params=version.params,
                                        metrics=version.metrics)
    ModelVersion.objects.filter(pk=version.pk).update(state=ModelVersion.State.READY)
    ModelVersion.objects.filter(pk=newer.pk).update(state=ModelVersion.State.ACTIVE)
    assert _queries(lambda: read_client.get(url))[0]["model_version"] == version.pk  # nothing told us yet
    ServingCache().changed("model")
    body = None
    for _ in range(50):  # the new index loads in the background while the old one answers
        body, _ = _queries(lambda: read_client.get(url))
        if body["model_version"] == newer.pk:
            break
        import time

        time.sleep(0.1)
    assert body["model_version"] == newer.pk
    assert _warm(lambda: read_client.get(url))[1] == []


@pytest.mark.django_db
def test_redis_down_serves_from_the_database(served, read_client, write_client, settings):
    """A serving cache that cannot be reached costs freshness nothing: the history is read from
    the database, and a posted event still counts on the next request."""
    _, events, _ = served
    user = events[0]["user"]
    url = f"/api/v1/users/{user}/recommendations?k=10"
    settings.KMS_SERVING_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        body, queries = _queries(lambda: read_client.get(url))
        assert body["source"] == "model" and any("events_interaction" in q for q in queries)
        top = body["items"][0]["product"]
        write_client.post("/api/v1/events", {"user": user, "product": top, "type": "purchase"}, format="json")
        assert top not in [i["product"] for i in _queries(lambda: read_client.get(url))[0]["items"]]
    finally:
        serving_cache._down_until = 0.0
