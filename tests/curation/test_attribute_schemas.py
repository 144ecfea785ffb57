"""Attribute schemas per category as knowledge-base data: imported from labelled titles, edited
in the portal, and what the ingestion pipeline extracts follows the edit."""
from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.urls import reverse

import nlp
from kms.knowledge import services
from kms.knowledge.attributes import attribute_schema
from kms.knowledge.models import AttributeDefinition

pytestmark = pytest.mark.django_db

RECORDS = [
    {"input": "Lavazza Dark Roast Whole Bean Coffee, 12 Ounce", "category": "Coffee",
     "target_scores": {"Brand": {"Lavazza": 1}, "Roast type": {"Dark Roast": 1},
                       "Item form": {"Whole Bean": 1}, "Net content": {"12 Ounce": 1}}},
    {"input": "Peet's Medium Roast Ground Coffee, 32 Ounce", "category": "Coffee",
     "target_scores": {"Brand": {"Peet's": 1}, "Roast type": {"Medium Roast": 1},
                       "Item form": {"Ground": 1}, "Net content": {"32 Ounce": 1}}},
    {"input": "Crocs Women's Clog,Nautical Navy,4 M US", "category": "Shoes",
     "target_scores": {"Brand": {"Crocs": 1}, "Color": {"Nautical Navy": 1}, "Size": {"4 M US": 1}}},
]
TITLE = "Peet's Dark Roast Ground Coffee, Nautical Navy tin, 16 Ounce"


@pytest.fixture
def imported(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    call_command("import_attribute_schema", str(path))
    return path


def _extracted(title: str, category: str) -> dict[str, str]:
    pipe = services.get_pipeline()  # the ingestion pipeline, rebuilt when the schema changes
    [result] = nlp.extract(pipe, [nlp.ProductText(uid=1, title=title, categories=["Food", category])])
    return {f.attribute: f.object_name for f in result.facts if f.relation == "HAS_ATTRIBUTE" and f.attribute}


def test_import_derives_attributes_values_and_patterns(imported):
    coffee = {d.name: d for d in AttributeDefinition.objects.filter(category="Coffee")}
    assert set(coffee) == {"Brand", "Roast type", "Item form", "Net content"}
    assert set(coffee["Roast type"].values) == {"Dark Roast", "Medium Roast"}
    assert coffee["Net content"].patterns == ["<N> Ounce"]
    # importing again keeps one row per (category, attribute)
    call_command("import_attribute_schema", str(imported))
    assert AttributeDefinition.objects.count() == 7
    assert attribute_schema().attributes("coffee").keys() == coffee.keys()


def test_portal_edit_changes_what_the_pipeline_extracts(imported, client, role_users):
    assert _extracted(TITLE, "Coffee") == {"Brand": "Peet's", "Roast type": "Dark Roast",
                                           "Item form": "Ground", "Net content": "16 Ounce"}
    client.force_login(role_users["curator"])
    page = client.get(reverse("curation:attributes") + "?category=Coffee")
    assert page.status_code == 200 and b"Roast type" in page.content and b"Nautical Navy" not in page.content
    assert b'name="values"' in page.content  # curators get the edit form
    roast = AttributeDefinition.objects.get(category="Coffee", name="Roast type")
    item_form = AttributeDefinition.objects.get(category="Coffee", name="Item form")
    # drop Item form; give Coffee a Color attribute (only "Nautical Navy") and a new roast value
    assert client.post(reverse("curation:attribute-delete", args=[item_form.pk])).status_code == 302
    assert client.post(reverse("curation:attribute-save"), {
        "category": "Coffee", "name": "Color", "values": "Nautical Navy\n", "patterns": ""}).status_code == 302
    assert client.post(reverse("curation:attribute-save"), {
        "pk": roast.pk, "category": "Coffee", "name": "Roast type",
        "values": "Medium Roast\nFrench Roast", "patterns": ""}).status_code == 302
    got = _extracted(TITLE, "Coffee")
    assert got == {"Brand": "Peet's", "Color": "Nautical Navy", "Net content": "16 Ounce"}
    assert _extracted("Peet's French Roast Coffee", "Coffee")["Roast type"] == "French Roast"


def test_viewers_see_schemas_but_cannot_edit(imported, client, role_users):
    assert client.get(reverse("curation:attributes")).status_code == 302  # login required
    client.force_login(role_users["viewer"])
    page = client.get(reverse("curation:attributes"))
    assert page.status_code == 200 and b"Net content" in page.content and b'name="values"' not in page.content
    brand = AttributeDefinition.objects.filter(name="Brand").first()
    assert client.post(reverse("curation:attribute-delete", args=[brand.pk])).status_code == 403
    assert client.post(reverse("curation:attribute-save"), {"category": "Tea", "name": "Flavor"}).status_code == 403
    assert AttributeDefinition.objects.filter(pk=brand.pk).exists()
