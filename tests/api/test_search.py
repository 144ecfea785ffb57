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
    record_events(events)
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
    record_events([{"user": "fan", "product": i, "type": "purchase", "event_id": f"fan-{i}"} for i in ids])
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


# --- ranking parts the relevance benchmark measures (bench/search_relevance.py) ----------------------
from kms.search import services as search_services  # noqa: E402
from kms.search.spelling import SpellingIndex, within_one_edit  # noqa: E402


def _search(q, **kw):
    return search_services.search(q, k=kw.pop("k", 10), **kw)


def test_one_edit_distance():
    assert within_one_edit("stapel", "staple")      # neighbours swapped
    assert within_one_edit("glove", "gloves") and within_one_edit("calipr", "caliper")
    assert within_one_edit("nitrle", "nitrile") and within_one_edit("vise", "vice")
    assert not within_one_edit("vise", "vase1") and not within_one_edit("staple", "stable1")


def test_spelling_prefers_the_frequent_catalogue_word():
    spelling = SpellingIndex({"staple": 30, "stable": 2, "nut": 50})
    assert spelling.correct("stabple") == "staple"       # one edit from both: the frequent one
    assert spelling.correct("staple") is None            # known words are left alone
    assert spelling.correct("stble") == "stable"
    assert spelling.correct("stapel") == "staple"
    assert spelling.correct("nutt") is None             # short words are not indexed: too ambiguous
    assert SpellingIndex({"nut": 5}).correct("nat") is None


def test_misspelled_query_is_corrected(catalogue):
    body = _search("Stanley stapels 1/2 inch")
    assert body["understood"]["corrections"] == {"stapels": "staple"}
    assert body["items"][0]["product"] in STANLEY_STAPLES
    raw = _search("Stanley stapels 1/2 inch", features={"spelling": False})
    assert raw["understood"]["corrections"] == {}
    assert not any(e["label"] == "PRODUCT_TYPE" for e in raw["understood"]["entities"])


def test_no_good_match_rather_than_unrelated_items(catalogue):
    upsert_products([
        {"external_id": "sign", "title": "Beware of Dog Aluminum Sign", "brand": "", "description": "",
         "categories": "Signs"},
        {"external_id": "tubing", "title": "Food Grade Vinyl Tubing, 10 feet", "brand": "", "description": "",
         "categories": "Tubing"},
    ])
    from kms.search import search_index

    search_index.get(block=True)
    body = _search("dog food")  # each word is in the catalogue, never both in one product
    assert body["items"] == [] and body["understood"]["no_good_match"] is True
    assert {i["product"] for i in _search("dog food", features={"no_match": False})["items"]} >= {"sign", "tubing"}
    assert [i["product"] for i in _search("dog sign")["items"]][:1] == ["sign"]
    assert _search("staples 1/2 inch")["items"]  # a type the catalogue knows always answers


def test_split_and_joined_words_find_the_catalogue_word(catalogue):
    upsert_products([{"external_id": "gel", "title": "Mint Toothgel, 6 oz", "brand": "", "description": "",
                      "categories": "Oral Care"}])
    from kms.search import search_index

    search_index.get(block=True)
    assert [i["product"] for i in _search("tooth gel")["items"]][:1] == ["gel"]
    assert "gel" not in [i["product"] for i in _search("tooth gel", features={"spelling": False})["items"]]


@pytest.fixture
def knife_and_blade(catalogue):
    upsert_products([
        {"external_id": "knife", "title": "Acme Folding Utility Knife, 18 mm", "brand": "Acme",
         "description": "A folding knife.", "categories": "Tools,Knives"},
        {"external_id": "blade", "title": "Replacement Blades for Utility Knife, Knife Blades for Acme Knife",
         "brand": "Acme", "description": "Blades for utility knife.", "categories": "Tools,Blades"},
        *[{"external_id": f"stub-{n}", "title": "Industrial & Scientific", "brand": "",
           "description": "utility knife utility knife", "categories": "Industrial & Scientific"} for n in range(5)],
    ])
    from kms.search import search_index

    search_index.get(block=True)


def test_accessory_ranks_below_the_product_it_fits(knife_and_blade):
    ranked = [i["product"] for i in _search("utility knife")["items"]]
    assert ranked.index("knife") < ranked.index("blade")
    ranked = [i["product"] for i in _search("utility knife", features={"accessory": False})["items"]]
    assert ranked.index("blade") < ranked.index("knife")


def test_placeholder_titles_are_demoted_when_asked(knife_and_blade):
    ranked = [i["product"] for i in _search("utility knife", k=50, features={"placeholder": True})["items"]]
    assert ranked[0] == "knife"
    assert all(ranked.index(f"stub-{n}") > ranked.index("blade") for n in range(5))
    plain = [i["product"] for i in _search("utility knife", k=50, features={"title_field": False})["items"]]
    assert any(plain.index(f"stub-{n}") < plain.index("blade") for n in range(5))


def test_title_match_outranks_description_match(catalogue):
    upsert_products([
        {"external_id": "in-title", "title": "Widgetron Sprocket", "brand": "Widgetron",
         "description": "A part.", "categories": "Parts"},
        {"external_id": "in-text", "title": "Widgetron Gear Set", "brand": "Widgetron",
         "description": "Sprocket sprocket sprocket: fits every sprocket drive.", "categories": "Parts"},
    ])
    from kms.search import search_index

    search_index.get(block=True)
    assert [i["product"] for i in _search("sprocket")["items"]][:1] == ["in-title"]
    assert [i["product"] for i in _search("sprocket", features={"title_field": False})["items"]][:1] == ["in-text"]


def test_plural_short_words_keep_their_stem():
    from kms.search.text import words

    assert words("zip ties") == words("zip tie") == ["zip", "tie"]
    assert words("batteries") == ["battery"]
