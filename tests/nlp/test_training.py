import json

from nlp import KnowledgeBase, ProductText, build_pipeline, extract
from nlp.training import train_ner, weak_spans


def test_weak_labels_from_structured_fields():
    p = ProductText("2", "Stanley TRA708SST 1/2-Inch HD Stainless Steel Narrow Crown Staple.",
                    brand="Stanley Hand Tools",
                    categories=["Industrial & Scientific", "Fasteners", "Staples"])
    spans = weak_spans(p, p.title)
    assert (0, 7, "BRAND") in spans
    assert any(p.title[s:e] == "Staple" and label == "PRODUCT_TYPE" for s, e, label in spans)


def test_trained_ner_finds_known_brand_in_new_sentence(catalogue, tmp_path):
    brands = {"HATCHBOX", "uxcell", "Gizmo Dorks"}
    picked = [p for p in catalogue if p.brand in brands and p.title.startswith(p.brand)][:60]
    scores = train_ner(picked, tmp_path / "model", n_iter=8, seed=0, labels=("BRAND",),
                       with_category=False, log=lambda *_: None)
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["version"] == scores["version"] and "f1" in meta["dev_scores"]
    assert 0 <= scores["f1"] <= 1
    # Empty KB: any brand found comes from the statistical model, not the rules.
    pipe = build_pipeline(KnowledgeBase(), ner_model_dir=tmp_path / "model")
    assert "ner" in pipe.pipe_names
    new = ProductText("new", "HATCHBOX 1.75mm Red PETG Filament Spool, 500 g.")
    (res,) = list(extract(pipe, [new], use_structured=False))
    brand = [f for f in res.facts if f.relation == "HAS_BRAND"]
    assert brand and brand[0].object_key == "hatchbox" and brand[0].extractor == "ner"
    assert brand[0].text == new.title[brand[0].start:brand[0].end]
