"""A product posted through the API is searchable, and recommendable as a cold-start item, within
seconds of its ingestion job finishing. Needs the NLP pipeline (ingestion) and a trained model."""
import dataclasses
import time

import pytest

NEW = {"external_id": "api-new-1", "title": "Stanley TRA709T Sharpshooter 9/16-Inch Heavy Duty Staples",
       "brand": "Stanley", "category_path": ["Industrial & Scientific", "Fasteners", "Collated Fasteners", "Staples"],
       "description": "Heavy duty narrow crown staples for TR150 staple guns."}


def _small_params() -> dict:
    from recommender.training import TrainConfig

    wanted = {"epochs": 2, "dim": 16, "embedding_dim": 16, "seed": 0, "batch_size": 512}
    return {k: v for k, v in wanted.items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}


def _eventually(check, seconds: float = 15.0):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


@pytest.mark.django_db(transaction=True)
def test_posted_product_searchable_and_recommendable(write_client, kms_graph, models_dir, scientific_slice):
    from kms.catalogue.services import upsert_products
    from kms.events.services import record_events
    from kms.events.tasks import deliver_to_graph
    from kms.knowledge.tasks import start_ingestion
    from kms.recs.services import activate, train_model

    products, events = scientific_slice(60)
    start_ingestion(upsert_products(products).created)
    deliver_to_graph(record_events(events).interaction_ids)
    version = train_model(_small_params(), activate=False)
    assert version.state == "ready"
    # pytest-django runs transactional tests last, after other packages' committed set-ups: make
    # this test's model the served one whatever else the database holds
    activate(version)

    response = write_client.post("/api/v1/products", NEW, format="json")
    assert response.status_code == 202, response.content
    job = write_client.get(f"/api/v1/jobs/ingest/{response.json()['ingestion_job']}").json()
    assert job["state"] == "done" and job["done"] == 1, job  # eager: finished within the request
    finished = time.monotonic()

    def found():
        items = write_client.get("/api/v1/search", {"q": "Stanley staples 9/16 inch"}).json()["items"]
        return items and items[0]["product"] == NEW["external_id"]

    assert _eventually(found), "not searchable"
    similar = write_client.get(f"/api/v1/products/{NEW['external_id']}/similar?k=5").json()
    assert similar["items"], "no cold-start neighbours for the new product"
    assert time.monotonic() - finished < 15

    # The model never saw the product; serving picks it up as a cold-start item from its entities
    # (within NEW_ITEMS_SECONDS), and a shopper whose history shares them gets it recommended.
    from kms.knowledge.models import Fact
    from kms.recs.services import NEW_ITEMS_SECONDS, index_cache

    uid = f"product:{NEW['external_id']}"
    assert _eventually(lambda: uid in index_cache.get().new_item_ids, NEW_ITEMS_SECONDS + 5)
    mine = set(Fact.objects.filter(product__external_id=NEW["external_id"]).values_list("entity__uid", flat=True))
    trained = set(index_cache.get().model.item_ids)  # the database may hold other tests' products too
    sharing = {}
    for ext, entity in Fact.objects.exclude(product__external_id=NEW["external_id"]).values_list(
            "product__external_id", "entity__uid"):
        if f"product:{ext}" in trained:
            sharing[ext] = sharing.get(ext, 0) + (entity in mine)
    neighbours = [ext for ext, n in sorted(sharing.items(), key=lambda kv: -kv[1])[:3] if n]
    assert neighbours, "no product shares an entity with the new one"
    deliver_to_graph(record_events([{"event_id": f"fresh-{n}", "user": "fresh-shopper", "product": ext, "type": "purchase"}
                                    for n, ext in enumerate(neighbours)]).interaction_ids)
    recs = write_client.get("/api/v1/users/fresh-shopper/recommendations?k=20&explain=true").json()
    assert NEW["external_id"] in [item["product"] for item in recs["items"]], (neighbours, recs["items"][:5])
    new_item = next(item for item in recs["items"] if item["product"] == NEW["external_id"])
    assert new_item["explanation"]["text"], new_item  # explained through the shared entities
    similar = write_client.get(f"/api/v1/products/{NEW['external_id']}/similar?k=5").json()
    assert set(item["product"] for item in similar["items"]) & set(sharing)

    user = events[0]["user"]
    recs = write_client.get(f"/api/v1/users/{user}/recommendations?k=3&explain=true").json()
    assert recs["source"] == "model" and len(recs["items"]) == 3
    assert all("explanation" in item for item in recs["items"])
    # products are named by their titles (shortened), never by internal ids
    from recommender.explain import short_title

    from kms.catalogue.models import Product

    for item in [new_item] + [i for i in recs["items"] if i["explanation"]]:
        why = item["explanation"]
        assert "product:" not in why["text"], why
        bought, recommended = [n for n in why["nodes"] if n["kind"] == "item"]
        for node in (bought, recommended):
            assert node["name"] == short_title(Product.objects.get(external_id=node["id"].split(":", 2)[-1]).title)
        assert bought["name"].lower() in why["text"].lower(), why
