"""One set of rules for a product or event record, whichever way it comes in (issue #15.5): the
write serializer the API validates with, the service the imports call (``clean_product``,
``clean_event``), each write endpoint and the JSONL import refuse the same records with the same
``{field: message}``, and accept the same records as the same values."""
from __future__ import annotations

import json

import pytest

from kms.api.records import first_messages
from kms.catalogue.api.serializers import ProductWrite
from kms.catalogue.importers import import_jsonl
from kms.catalogue.services import ProductValidationError, clean_product, upsert_products
from kms.events.api.serializers import EventWrite
from kms.events.services import clean_event

P = "rules-p1"  # a product the events name
OK_PRODUCT = {"external_id": "rules-ok", "title": "A valid product"}
OK_EVENT = {"user": "rules-u", "product": P, "event_id": "rules-ok"}

BAD_PRODUCTS = [  # (record, what the service answers)
    ({"external_id": "x", "title": 42}, {"title": "must be a string, got int"}),
    ({"title": "no id"}, {"external_id": "is required"}),
    ({"external_id": True, "title": "   "}, {"external_id": "must be a string, got bool", "title": "is required"}),
    ({"external_id": "x" * 129, "title": "t"}, {"external_id": "is longer than 128 characters"}),
    ({"external_id": "x", "title": "t" * 2001}, {"title": "is longer than 2000 characters"}),
    ({"external_id": "x", "title": "t", "description": "d" * 100_001}, {"description": "is longer than 100000 characters"}),
    ({"external_id": "x", "title": "t", "brand": "b" * 256}, {"brand": "is longer than 255 characters"}),
    ({"external_id": "x", "title": "t", "brand": ["b"]}, {"brand": "must be a string, got list"}),
    ({"external_id": "x", "title": "t", "category_path": [1, 2]},
     {"category_path": "must be a list of strings (or a comma-separated string)"}),
    ({"external_id": "x", "title": "t", "category_path": ["c" * 256]},
     {"category_path": "must be a list of strings (or a comma-separated string)"}),
    ({"external_id": "x", "title": "t", "category_path": None},
     {"category_path": "must be a list of strings (or a comma-separated string)"}),
    ({"id": "x", "title": "t", "categories": 5}, {"category_path": "must be a list of strings (or a comma-separated string)"}),
    ({"external_id": "x", "title": "t", "attributes": [1]}, {"attributes": "must be an object"}),
    ({"external_id": "x", "title": "t", "attributes": {"k": "v" * 20_000}}, {"attributes": "is larger than 20000 bytes"}),
    ("not an object", {"non_field_errors": "each product must be a JSON object"}),
    (None, {"non_field_errors": "each product must be a JSON object"}),
]
NUL_PRODUCTS = [  # the API's parser refuses NUL characters before any rule; the rules refuse them too
    ({"external_id": "a\x00b", "title": "t"}, {"external_id": "contains NUL bytes"}),
    ({"external_id": "x", "title": "t", "category_path": ["a\x00"]}, {"category_path": "contains NUL bytes"}),
    ({"external_id": "x", "title": "t", "attributes": {"k": "\x00"}}, {"attributes": "contains NUL bytes"}),
]
GOOD_PRODUCTS = [  # (record, what is stored)
    ({"id": 5, "title": " Staples ", "categories": "A, B,,C"},
     {"external_id": "5", "title": "Staples", "description": "", "brand": "", "category_path": ["A", "B", "C"],
      "attributes": {}}),
    ({"external_id": "x", "title": "t", "brand": None, "attributes": None, "category_path": [f"c{i}" for i in range(25)]},
     {"external_id": "x", "title": "t", "description": "", "brand": "", "category_path": [f"c{i}" for i in range(20)],
      "attributes": {}}),
]

BAD_EVENTS = [
    ({"user": "u", "product": P, "type": "teleport"},
     {"type": "must be one of ['cart', 'click', 'purchase', 'rating', 'view']"}),
    ({"user": "u", "product": P, "type": ["view"]}, {"type": "must be one of ['cart', 'click', 'purchase', 'rating', 'view']"}),
    ({"product": P}, {"user": "is required (string id, ≤128 characters)"}),
    ({"user": " ", "item": "x" * 129}, {"user": "is required (string id, ≤128 characters)",
                                        "product": "is required (string id, ≤128 characters)"}),
    ({"user": "u", "product": P, "value": "1"}, {"value": "must be a finite number"}),
    ({"user": "u", "product": P, "value": True}, {"value": "must be a finite number"}),
    ({"user": "u", "product": P, "value": 1e7}, {"value": "must be a finite number"}),
    ({"user": "u", "product": P, "value": None}, {"value": "must be a finite number"}),
    ({"user": "u", "product": P, "timestamp": "yesterday"}, {"timestamp": "must be an ISO 8601 datetime or a Unix time"}),
    ({"user": "u", "product": P, "timestamp": True}, {"timestamp": "must be an ISO 8601 datetime or a Unix time"}),
    ({"user": "u", "product": P, "timestamp": 1e20}, {"timestamp": "must be an ISO 8601 datetime or a Unix time"}),
    ({"user": "u", "product": P, "timestamp": "2024-13-01T00:00:00"},
     {"timestamp": "must be an ISO 8601 datetime or a Unix time"}),
    ({"user": "u", "product": P, "event_id": "x" * 65}, {"event_id": "must be a string id, ≤64 characters"}),
    ({"user": "u", "product": P, "event_id": ""}, {"event_id": "must be a string id, ≤64 characters"}),
    ({"user": "u", "product": P, "recommendation_id": 5.5}, {"recommendation_id": "must be a string id, ≤64 characters"}),
    ([1], {"non_field_errors": "each event must be a JSON object"}),
]
GOOD_EVENTS = [  # (record, (user, product, type, value, timestamp as ISO))
    ({"user_id": 7, "item": P, "type": "rating", "value": 4, "timestamp": 1704103200},
     ("7", P, "rating", 4.0, "2024-01-01T10:00:00+00:00")),
    ({"user": " u ", "product_id": P, "timestamp": "2024-01-01 10:00"}, ("u", P, "view", 1.0, "2024-01-01T10:00:00+00:00")),
]


def service_product_errors(record) -> dict:
    with pytest.raises(ProductValidationError) as caught:
        clean_product(record)
    return caught.value.errors


@pytest.mark.parametrize("record,expected", BAD_PRODUCTS + NUL_PRODUCTS)
def test_product_rules_are_the_serializers(record, expected):
    if isinstance(record, dict):  # a fresh serializer, as the API's PUT/PATCH validate (they take objects only)
        body = ProductWrite(data=record)
        assert not body.is_valid()
        assert first_messages(body.errors) == expected
    assert service_product_errors(record) == expected


@pytest.mark.parametrize("record,stored", GOOD_PRODUCTS)
def test_product_accepted_the_same_everywhere(record, stored):
    body = ProductWrite(data=record)
    assert body.is_valid(), body.errors
    assert dict(body.validated_data) == stored == clean_product(record)


@pytest.mark.django_db
@pytest.mark.parametrize("record,expected", BAD_PRODUCTS)
def test_product_endpoints_refuse_what_the_service_refuses(write_client, record, expected, tmp_path):
    alone = write_client.post("/api/v1/products", [record], format="json")
    assert alone.status_code == 400, alone.content
    assert alone.json()["error"]["fields"] == {f"0.{k}": [v] for k, v in expected.items()}
    bulk = write_client.post("/api/v1/products", [OK_PRODUCT, record], format="json")
    assert bulk.status_code == 202, bulk.content
    assert [e["errors"] for e in bulk.json()["errors"]] == [expected]
    if isinstance(record, dict):  # PUT/PATCH take the id from the URL: the rest of the record is checked
        rest = {k: v for k, v in record.items() if k not in ("external_id", "id")}
        try:
            clean_product({**rest, "external_id": "rules-put"})
            expected_rest = {}
        except ProductValidationError as exc:
            expected_rest = exc.errors
        response = write_client.put("/api/v1/products/rules-put", rest, format="json")
        assert response.status_code == (400 if expected_rest else 200), response.content
        if expected_rest:
            assert response.json()["error"]["fields"] == {k: [v] for k, v in expected_rest.items()}
    path = tmp_path / "import.jsonl"
    path.write_text(json.dumps(OK_PRODUCT) + "\n" + json.dumps(record) + "\n")
    imported = import_jsonl(path)["products"]
    assert [(e["line"], e["errors"]) for e in imported["errors"]] == [(2, expected)]


@pytest.mark.django_db
@pytest.mark.parametrize("record,expected", NUL_PRODUCTS)
def test_nul_is_refused_by_the_api_and_the_import(write_client, record, expected, tmp_path):
    response = write_client.post("/api/v1/products", [record], format="json")
    assert response.status_code == 400 and "NUL" in response.json()["error"]["fields"]["body"][0]
    path = tmp_path / "import.jsonl"
    path.write_text(json.dumps(record) + "\n")
    assert [e["errors"] for e in import_jsonl(path)["products"]["errors"]] == [expected]


@pytest.mark.parametrize("record,expected", BAD_EVENTS)
def test_event_rules_are_the_serializers(record, expected):
    if isinstance(record, dict):  # a fresh serializer, as the API's PUT/PATCH validate (they take objects only)
        body = EventWrite(data=record)
        assert not body.is_valid()
        assert first_messages(body.errors) == expected
    assert clean_event(record) == (None, expected)


@pytest.mark.parametrize("record,stored", GOOD_EVENTS)
def test_event_accepted_the_same_everywhere(record, stored):
    body = EventWrite(data=record)
    assert body.is_valid(), body.errors
    event, errors = clean_event(record)
    assert errors == {} and event == dict(body.validated_data)
    assert (event["user"], event["product"], event["type"], event["value"], event["timestamp"].isoformat()) == stored
    assert len(event["event_id"]) == 40  # derived: a hash of user, product, type and time


@pytest.mark.django_db
@pytest.mark.parametrize("record,expected", BAD_EVENTS)
def test_event_endpoint_refuses_what_the_service_refuses(write_client, record, expected, tmp_path):
    upsert_products([{"external_id": P, "title": "t"}])
    alone = write_client.post("/api/v1/events", [record], format="json")
    assert alone.status_code == 400, alone.content
    assert alone.json()["error"]["fields"] == {f"0.{k}": [v] for k, v in expected.items()}
    bulk = write_client.post("/api/v1/events", [OK_EVENT, record], format="json")
    assert bulk.status_code == 202, bulk.content
    assert bulk.json()["errors"] == [{"index": 1, "errors": expected}]
    if isinstance(record, dict):
        path = tmp_path / "import.jsonl"
        path.write_text(json.dumps({"kind": "event", **record}) + "\n")
        assert [(e["line"], e["errors"]) for e in import_jsonl(path)["events"]["errors"]] == [(1, expected)]
