"""`import_catalogue --amazon DIR` for any <Name>.item.json + <Name>.inter.json pair, and import
errors that name the file's line (Amazon files and JSONL)."""
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kms.catalogue.importers import import_jsonl
from kms.catalogue.models import Product
from kms.events.models import Interaction

ITEMS = {
    "a1": {"title": "Trowel, stainless steel", "brand": "Fiskars", "categories": "Patio, Lawn & Garden, Hand Tools, Trowels"},
    "a2": {"title": "Pruning shears", "brand": "Felco", "description": "Bypass pruner.",
           "categories": "Patio,Lawn & Garden,Hand Tools,Pruners"},
    "a3": {"title": "Garden hose 50 ft", "brand": "", "categories": ""},
}


def _dump(directory, name, items, inter, indent=2):
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.item.json").write_text(json.dumps(items, indent=indent))
    (directory / f"{name}.inter.json").write_text(json.dumps(inter))
    return directory


def _run(*args) -> dict:
    out = StringIO()
    call_command("import_catalogue", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_amazon_import_takes_any_name_and_spaced_or_unspaced_separators(tmp_path):
    root = _dump(tmp_path / "garden", "Lawn_Garden_2023", ITEMS, {"u1": ["a2", "a1", "a3"], "u2": ["a1", "a2"]})
    summary = _run("--amazon", str(root))
    assert summary["products"]["created"] == 3 and summary["events"]["created"] == 5
    # "A, B" and "A,B" give the same path
    assert Product.objects.get(external_id="a1").category_path == ["Patio", "Lawn & Garden", "Hand Tools", "Trowels"]
    assert Product.objects.get(external_id="a2").category_path == ["Patio", "Lawn & Garden", "Hand Tools", "Pruners"]
    assert Product.objects.get(external_id="a3").category_path == []
    # the file's order becomes the time order
    seq = list(Interaction.objects.filter(user__external_id="u1").order_by("timestamp")
               .values_list("product__external_id", flat=True))
    assert seq == ["a2", "a1", "a3"]
    again = _run("--amazon", str(root))
    assert again["products"]["unchanged"] == 3 and again["events"]["duplicates"] == 5
    assert Interaction.objects.count() == 5


@pytest.mark.django_db
def test_amazon_import_needs_exactly_one_pair(tmp_path):
    (tmp_path / "Only.item.json").write_text("{}")
    with pytest.raises(CommandError, match="expected one <Name>.item.json"):
        _run("--amazon", str(tmp_path))


@pytest.mark.django_db
def test_amazon_import_errors_name_the_line_in_the_file(tmp_path):
    items = {**ITEMS, "bad": {"title": "", "brand": "X"}}
    root = _dump(tmp_path / "d", "Shop", items, {"u1": ["a1", "nope"], "u2": ["a2"]})
    text = (root / "Shop.item.json").read_text().splitlines()
    bad_line = next(n for n, line in enumerate(text, 1) if line.strip().startswith('"bad"'))
    (root / "Shop.inter.json").write_text('{"u1": ["a1", "nope"],\n "u2": ["a2"]}')
    summary = _run("--amazon", str(root))
    [perr] = summary["products"]["errors"]
    assert perr["line"] == bad_line and perr["file"] == "Shop.item.json" and "title" in perr["errors"]
    [eerr] = summary["events"]["errors"]
    assert eerr["line"] == 1 and eerr["file"] == "Shop.inter.json" and "unknown product" in eerr["errors"]["product"]
    assert summary["events"]["created"] == 2
    broken = "\n".join(text[:bad_line + 1]) + "\n  oops\n}"  # not JSON from that line on
    (root / "Shop.item.json").write_text(broken)
    with pytest.raises(CommandError, match=rf"Shop.item.json line {bad_line + 2}"):
        _run("--amazon", str(root))


@pytest.mark.django_db
def test_jsonl_errors_name_the_line_not_the_index(tmp_path):
    good = {"external_id": "sku-1", "title": "Stanley staples"}
    lines = [json.dumps(good), "", json.dumps({"external_id": "sku-2"}),  # line 3: no title
             json.dumps({"kind": "event", "user": "u1", "product": "sku-1", "type": "purchase"}),
             "", json.dumps({"kind": "event", "user": "u1", "product": "sku-1", "type": "teleport"}),  # line 6
             "{not json"]  # line 7
    path = tmp_path / "shop.jsonl"
    path.write_text("\n".join(lines) + "\n")
    summary = import_jsonl(path)
    assert [(e["line"], set(e["errors"])) for e in summary["products"]["errors"]] == [(3, {"title"})]
    assert [(e["line"], set(e["errors"])) for e in summary["events"]["errors"]] == [(6, {"type"})]
    assert [e["line"] for e in summary["line_errors"]] == [7]
    assert summary["products"]["created"] == 1 and summary["events"]["created"] == 1
