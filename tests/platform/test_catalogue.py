"""Catalogue and event imports: validation with clear per-item errors, idempotent re-imports."""
import json

import pytest

from kms.catalogue.importers import import_jsonl
from kms.catalogue.models import Product
from kms.catalogue.services import upsert_products
from kms.events.models import Interaction, ShopUser
from kms.events.services import record_events
from kms.events.tasks import deliver_to_graph

GOOD = {"external_id": "sku-1", "title": "Stanley TRA708T staples", "brand": "Stanley",
        "category_path": ["Industrial & Scientific", "Fasteners", "Staples"]}


@pytest.mark.django_db
def test_upsert_is_idempotent_and_detects_changes():
    first = upsert_products([GOOD])
    assert len(first.created) == 1
    again = upsert_products([GOOD])
    assert again.created == [] and again.updated == [] and len(again.unchanged) == 1
    changed = upsert_products([GOOD | {"title": "Stanley TRA708T staples, 1000 count"}])
    assert len(changed.updated) == 1
    assert Product.objects.get(external_id="sku-1").title.endswith("1000 count")


@pytest.mark.django_db
@pytest.mark.parametrize("record, field", [
    ({"external_id": "x"}, "title"),
    ({"external_id": "x", "title": 42}, "title"),
    ({"external_id": "x", "title": "ok", "description": "a" * 1_000_000}, "description"),
    ({"external_id": "x", "title": "ok\x00\x01garbage"}, "title"),
    ({"external_id": "x", "title": "ok", "attributes": [1, 2]}, "attributes"),
    ({"external_id": "x", "title": "ok", "category_path": {"a": 1}}, "category_path"),
    ({"title": "no id"}, "external_id"),
    ("not an object", "non_field_errors"),
])
def test_bad_products_get_a_clear_error_and_lose_nothing_else(record, field):
    result = upsert_products([record, GOOD])
    assert len(result.created) == 1  # the good record in the same batch is kept
    assert len(result.errors) == 1 and field in result.errors[0]["errors"]


@pytest.mark.django_db
def test_jsonl_import_reports_bad_lines_and_is_idempotent(tmp_path):
    path = tmp_path / "catalogue.jsonl"
    lines = [json.dumps(GOOD), "{not json", json.dumps({"kind": "event", "user": "u1", "product": "sku-1",
                                                         "type": "purchase", "timestamp": "2024-01-01T10:00:00Z"}),
             json.dumps({"kind": "event", "user": "u1", "product": "missing", "type": "view"})]
    path.write_text("\n".join(lines) + "\n")
    summary = import_jsonl(path)
    assert summary["products"]["created"] == 1
    assert summary["events"]["created"] == 1
    assert summary["line_errors"][0]["line"] == 2
    assert "unknown product" in summary["events"]["errors"][0]["errors"]["product"]
    again = import_jsonl(path)
    assert again["products"]["unchanged"] == 1 and again["events"]["duplicates"] == 1
    assert Interaction.objects.count() == 1 and ShopUser.objects.count() == 1


@pytest.mark.django_db
def test_event_validation():
    upsert_products([GOOD])
    result = record_events([
        {"user": "u", "product": "sku-1", "type": "teleport"},
        {"user": "u", "product": "sku-1", "timestamp": "yesterday"},
        {"user": "", "product": "sku-1"},
        {"user": "u", "product": "sku-1", "value": "NaN"},
        {"user": "u", "product": "sku-1", "type": "view"},
    ])
    fields = [set(e["errors"]) for e in result.errors]
    assert fields == [{"type"}, {"timestamp"}, {"user"}, {"value"}]
    assert result.created == 1


@pytest.mark.django_db
def test_events_reach_the_graph_store(kms_graph):
    upsert_products([GOOD])
    result = record_events([{"user": "u1", "product": "sku-1", "type": "purchase", "event_id": "e1"}])
    assert kms_graph.count_relationships("INTERACTED") == 0  # stored; the caller starts the delivery
    deliver_to_graph(result.interaction_ids)
    assert kms_graph.count_relationships("INTERACTED") == 1
    assert Interaction.objects.get(event_id="e1").in_graph


@pytest.mark.django_db
@pytest.mark.parametrize("record, field", [
    ({"external_id": "x", "title": "ok", "category_path": ["a\x00b"]}, "category_path"),
    ({"external_id": "x", "title": "ok", "attributes": {"k": "v\x00"}}, "attributes"),
])
def test_nul_in_nested_fields_is_a_clear_error(record, field):
    result = upsert_products([record])
    assert result.errors and field in result.errors[0]["errors"]


@pytest.mark.django_db
def test_event_type_must_be_a_string():
    upsert_products([GOOD])
    result = record_events([{"user": "u", "product": "sku-1", "type": {"x": 1}}])
    assert "type" in result.errors[0]["errors"]
