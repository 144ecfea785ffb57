"""Search on a real slice of Amazon-Scientific: understanding, graph expansion, personal re-ranking."""
import pytest

from kms.catalogue.services import scientific_products, upsert_products
from kms.events.services import record_events

from .conftest import error_fields

STANLEY_STAPLES = {"1", "2", "388"}  # Stanley staples in the dataset (1/2-inch leg among them)


@pytest.fixture
def catalogue(db, scientific_slice, settings, kms_graph):
    products, events = scientific_slice(120)
    extra = [p for p in scientific_products(settings.DATASETS_DIR / "amazon-scientific")
             if p["external_id"] in STANLEY_STAPLES or "Staple" in p["categories"]]
    upsert_products(products + extra)
    record_events(events, push_to_graph=False)
    from kms.search import search_index

    search_index.get(block=True)
    return products + extra


def test_understands_brand_type_and_measure(read_client, catalogue):
    response = read_client.get("/api/v1/search", {"q": "Stanley staples 1/2 inch", "k": 5})
    assert response.status_code == 200, response.content
    body = response.json()
    entities = {e["label"]: e for e in body["understood"]["entities"]}
    assert entities["BRAND"]["key"] == "stanley" and entities["BRAND"]["text"] == "Stanley"
    assert entities["PRODUCT_TYPE"]["key"] == "staple"
    assert any("staples" in c for c in entities["PRODUCT_TYPE"]["expansion"]["categories"])
    assert entities["MEASURE"]["value"] == 0.5 and entities["MEASURE"]["unit"] == "in"
    top = body["items"][0]
    assert top["product"] in STANLEY_STAPLES and "1/2" in top["title"]
    assert {"brand", "product_type", "measure", "text"} <= set(top["matched"])
    assert body["index"]["products"] == len({p["external_id"] for p in catalogue})


def test_model_number_recognised(read_client, catalogue):
    body = read_client.get("/api/v1/search", {"q": "TRA708T"}).json()
    assert [e["label"] for e in body["understood"]["entities"]] == ["MODEL_NUMBER"]
    assert body["items"][0]["product"] == "1"


def test_user_history_reranks(read_client, catalogue):
    anonymous = read_client.get("/api/v1/search", {"q": "staples", "k": 50}).json()["items"]
    brands = [i["brand"] for i in anonymous]
    target = next(b for b in brands[3:] if b and b != brands[0])
    ids = [p["external_id"] for p in catalogue if p["brand"] == target][:3]
    record_events([{"user": "fan", "product": i, "type": "purchase", "event_id": f"fan-{i}"} for i in ids],
                  push_to_graph=False)
    personal = read_client.get("/api/v1/search", {"q": "staples", "k": 50, "user": "fan"}).json()
    assert personal["user"]["personalised"] and personal["user"]["history"] == len(ids)
    rank = lambda items: next(n for n, i in enumerate(items) if i["brand"] == target)
    assert rank(personal["items"]) < rank(anonymous)


def test_unknown_user_searches_unpersonalised(read_client, catalogue):
    body = read_client.get("/api/v1/search", {"q": "staples", "user": "stranger"}).json()
    assert body["user"] == {"id": "stranger", "history": 0, "personalised": False, "signals": []}
    assert body["items"]


def test_nothing_found_is_empty_not_error(read_client, catalogue):
    response = read_client.get("/api/v1/search", {"q": "zzqx"})
    assert response.status_code == 200 and response.json()["items"] == []


def test_blank_query_named(read_client, catalogue):
    response = read_client.get("/api/v1/search", {"q": "   "})
    assert response.status_code == 400 and "q" in error_fields(response)
