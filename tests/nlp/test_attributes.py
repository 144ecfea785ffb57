"""Category attribute schemas: schema-restricted extraction through the product pipeline, and
the OA-Mine scoring protocol."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nlp import KnowledgeBase, ProductText, build_pipeline, extract
from nlp.attributes import AttributeSchema, save_model, train_attribute_ner

RECORDS = [
    {"input": "Crocs Women's Jayna Ballet Flat,Nautical Navy,4 M US", "category": "Shoes",
     "target_scores": {"Brand": {"Crocs": 1}, "Gender": {"Women's": 1}, "Color": {"Nautical Navy": 1},
                       "Size": {"4 M US": 1}}},
    {"input": "Timberland Men's Radler Oxford,Red,15 M US", "category": "Shoes",
     "target_scores": {"Brand": {"Timberland": 1}, "Gender": {"Men's": 1}, "Color": {"Red": 1},
                       "Size": {"15 M US": 1}}},
    {"input": "Lavazza Dark Roast Whole Bean Coffee, 12 Ounce", "category": "Coffee",
     "target_scores": {"Brand": {"Lavazza": 1}, "Roast type": {"Dark Roast": 1},
                       "Item form": {"Whole Bean": 1}, "Net content": {"12 Ounce": 1}}},
    {"input": "Peet's Medium Roast Ground Coffee, 32 Ounce", "category": "Coffee",
     "target_scores": {"Brand": {"Peet's": 1}, "Roast type": {"Medium Roast": 1},
                       "Item form": {"Ground": 1}, "Net content": {"32 Ounce": 1}}},
]


def _attributes(pipe, title: str, category: str) -> dict[str, str]:
    [result] = extract(pipe, [ProductText(uid="x", title=title, categories=[category])])
    facts = [f for f in result.facts if f.relation == "HAS_ATTRIBUTE" and f.attribute]
    for f in facts:  # the fact's span is the value as written in the title
        assert title[f.start:f.end] == f.object_name == f.text
    return {f.attribute: f.object_name for f in facts}


def test_dictionary_and_learned_patterns_follow_the_category_schema():
    schema = AttributeSchema.from_records(RECORDS)
    assert schema.attributes("coffee")["Net content"]["patterns"] == ["<N> Ounce"]
    pipe = build_pipeline(KnowledgeBase(), attributes=schema)
    got = _attributes(pipe, "Lavazza Dark Roast Ground Coffee, Red Bag, 16 Ounce", "Coffee")
    # "Red" is a Shoes colour: Coffee has no Color attribute, so it is not extracted.
    assert got == {"Brand": "Lavazza", "Roast type": "Dark Roast", "Item form": "Ground",
                   "Net content": "16 Ounce"}
    shoes = _attributes(pipe, "Crocs Men's Clog,Red,9 M US", "Shoes")
    assert shoes["Color"] == "Red" and "Net content" not in shoes
    # A category without a schema gets no attribute facts at all.
    assert _attributes(pipe, "Lavazza Dark Roast, Red", "Garden") == {}


def test_trained_ner_is_restricted_to_the_schema_of_the_category(tmp_path):
    ner = train_attribute_ner(RECORDS * 8, n_iter=15)
    model = save_model(ner, "ner", tmp_path / "attr")
    schema = AttributeSchema.from_records(RECORDS)
    pipe = build_pipeline(KnowledgeBase(), attributes=schema, attribute_model_dir=model)
    assert pipe.get_pipe("attribute_extractor").mode == "ner"
    title = "Lavazza Dark Roast Whole Bean Coffee, 12 Ounce"
    full = _attributes(pipe, title, "Coffee")
    assert full.get("Brand") == "Lavazza" and full.get("Net content") == "12 Ounce"
    assert set(full) <= set(schema.attributes("Coffee"))  # never a Shoes label on a coffee
    # The same model, a schema without Brand: that attribute is no longer extracted.
    reduced = AttributeSchema({"Coffee": {a: v for a, v in schema.to_dict()["Coffee"].items()
                                          if a != "Brand"}})
    pipe.get_pipe("attribute_extractor").set_schema(reduced)
    cut = _attributes(pipe, title, "Coffee")
    assert "Brand" not in cut and cut.get("Net content") == "12 Ounce"
    assert _attributes(pipe, "Crocs Women's Clog,Red,9 M US", "Shoes") == {}


def _bench():
    spec = importlib.util.spec_from_file_location(
        "oa_mine", Path(__file__).resolve().parents[2] / "bench" / "oa_mine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_oa_mine_scoring_protocol_counts_right_wrong_missed_and_na():
    score = _bench().score
    records = [
        {"category": "Tea", "target_scores": {"Brand": {"Twinings": 1}, "Flavor": {"Earl Grey": 1, "Grey": 1},
                                              "Pack size": {"n/a": 1}}},
        {"category": "Tea", "target_scores": {"Brand": {"Lipton": 1}, "Flavor": {"Mint": 1},
                                              "Pack size": {"n/a": 1}}},
    ]
    predictions = [
        {"Brand": " Twinings ", "Flavor": "Grey", "Pack size": "6 Pack", "Color": "Green"},  # 2 right, 1 on n/a
        {"Brand": "Tetley", "Pack size": "n/a"},  # wrong brand, missed flavour, n/a predicted n/a
    ]
    out = score(records, predictions)
    assert out["counts"] == {"right": 2, "wrong": 1, "missed": 1, "predicted_na": 1}
    assert out["micro_precision"] == pytest.approx(2 / 4)
    assert out["micro_recall"] == pytest.approx(2 / 4)
    assert out["micro_f1"] == pytest.approx(0.5)
    per = out["per_attribute"]
    assert per["Brand | Tea"]["f1"] == 0.5 and per["Flavor | Tea"]["f1"] == pytest.approx(0.6667, abs=1e-4)
    assert per["Pack size | Tea"]["f1"] == 0.0
    assert out["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.0) / 3, abs=1e-4)
