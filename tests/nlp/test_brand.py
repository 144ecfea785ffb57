from nlp import KnowledgeBase, ProductText, build_pipeline, extract
from nlp.brand import BrandClassifier, choose_thresholds, decide, learn_aliases

TRAIN = [
    ProductText("s1", "SUPCO SPP5 Relay Hard Start Kit.", brand="Sealed Unit Parts Co., Inc."),
    ProductText("s2", "SUPCO RCO410 Capacitor Start Relay.", brand="Sealed Unit Parts Co., Inc."),
    ProductText("s3", "SUPCO 90340 Thermostat.", brand="Sealed Unit Parts Co., Inc."),
    ProductText("m1", "Scotch Magic Tape, 3/4 x 1000 Inches.", brand="3M"),
    ProductText("m2", "Scotch Heavy Duty Packaging Tape, 1.88 Inches.", brand="3M"),
    ProductText("m3", "Scotch-Brite Heavy Duty Scrub Sponge.", brand="3M"),
    ProductText("k1", "Kreg SML-C125 Pocket Hole Screws.", brand="Kreg"),
    ProductText("k2", "Kreg KMA2675 Multi-Mark Gauge.", brand="Kreg"),
]


def fitted(products=TRAIN):
    kb = KnowledgeBase.from_products(products)
    clf = BrandClassifier().fit([(p.title, p.description, kb.link("BRAND", p.brand))
                                 for p in products])
    return kb, clf


def test_cues_map_titles_to_the_catalogue_brand():
    _, clf = fitted()
    assert clf.cues["t:SUPCO"][0] == "sealed-unit-parts"
    assert clf.cues["t:Scotch"][0] == "3m"
    title = "SUPCO SPP6 Relay/Capacitor Hard Start Kit."
    (pred,) = clf.predict([(title, "")])
    key, score, start, end = pred
    assert key == "sealed-unit-parts" and 0 < score < 1 and title[start:end] == "SUPCO"


def test_pipeline_emits_classifier_brand_with_valid_span(tmp_path):
    kb, clf = fitted()
    clf.to_disk(tmp_path / "brand")
    pipe = build_pipeline(kb, ner_model_dir=tmp_path)  # artefact with only a brand classifier
    assert "brand_classifier" in pipe.pipe_names
    product = ProductText("new", "Scotch Double Sided Tape, 1/2 in x 250 in.")
    (res,) = list(extract(pipe, [product], use_structured=False))
    (brand,) = [f for f in res.facts if f.relation == "HAS_BRAND"]
    assert brand.object_key == "3m" and brand.extractor == "brand-classifier"
    assert brand.text == product.title[brand.start:brand.end] == "Scotch"
    # span evidence for a known brand still wins
    kreg = ProductText("k", "Kreg Jig Pocket Hole System.")
    (res,) = list(extract(pipe, [kreg], use_structured=False))
    assert [f.object_key for f in res.facts if f.relation == "HAS_BRAND"] == ["kreg"]


def test_decide_and_thresholds():
    th = {"absent": 0.5, "override": 0.8, "weak": 0.9, "weak_span": 0.5}
    aliases = learn_aliases(["scotch"] * 4 + ["3d"] * 4, ["3m"] * 4 + ["a", "b", "c", "d"])
    assert aliases["scotch"][0] == "3m" and aliases["3d"][0] == ""
    assert decide(("scotch", 0.95), None, th, aliases) == ("3m", "alias")
    assert decide(None, ("kreg", 0.4), th, aliases) is None
    assert decide(None, ("kreg", 0.6), th, aliases) == ("kreg", "classifier")
    assert decide(("3d", 0.95), ("xyz", 0.85), th, aliases) == ("xyz", "classifier")
    assert decide(("kreg", 0.95), ("xyz", 0.85), th, aliases) == ("kreg", "span")
    best, f1 = choose_thresholds([None, ("a", 0.95)], [("b", 0.7), ("c", 0.2)], ["b", "a"], {})
    assert f1 == 1.0 and best["absent"] <= 0.7


def test_title_prefixes_stop_at_separators():
    from nlp.brand import title_prefixes

    title = "Cal Hawk Tools CZCW45B Metal Cut-Off Wheel, 4-1/2."
    assert [title[s:e] for s, e in title_prefixes(title)] == [
        "Cal", "Cal Hawk", "Cal Hawk Tools", "Cal Hawk Tools CZCW45B"]
    title = "Swann Morton : Scalpel Handle No 3."
    assert [title[s:e] for s, e in title_prefixes(title)] == ["Swann", "Swann Morton"]
    assert title_prefixes("") == []


def _synthetic_catalogue():
    """Unseen made-up brands leading their titles, and unbranded titles that open with
    everyday words the descriptions also write in lowercase."""
    syllables = ["qor", "vik", "bel", "mar", "tan", "viq", "zor", "lux", "pem", "dra"]
    types = ["Clamp", "Hinge", "Bracket", "Valve"]
    products = []
    for i in range(40):
        brand = (syllables[i % 10] + syllables[(i * 3 + 1) % 10] + syllables[(i * 7 + 2) % 10]).title()
        products.append(ProductText(f"b{i}", f"{brand} {chr(65 + i % 26)}{100 + i} {types[i % 4]}, Zinc Plated.",
                                    description="A heavy duty part for general use.", brand=brand))
    for i in range(40):
        word = ["Heavy", "Stainless", "Adjustable", "Replacement"][i % 4]
        products.append(ProductText(f"n{i}", f"{word} {types[i % 4]} Set, {i + 2} Pack.",
                                    description=f"{word.lower()} parts, heavy duty, stainless "
                                                f"steel, adjustable replacement.", brand=""))
    return products


def test_ranker_names_an_unseen_title_brand_and_abstains_on_a_common_word(tmp_path):
    from nlp.brand import BrandRanker, fit_ranker
    from nlp.training import _ranker_groups

    products = _synthetic_catalogue()
    kb = KnowledgeBase.from_products([])  # every brand is unseen
    _, clf = fitted()
    lower_df = BrandRanker.word_counts(t for p in products for t in (p.title, p.description))
    groups = _ranker_groups(build_pipeline(kb), clf, products, kb, lower_df)
    assert sum(any(c["key"] == g for c in cands) for cands, g in groups if g) == 40
    ranker, f1 = fit_ranker(groups, lower_df)
    assert f1 > 0.9 and 0 < ranker.threshold < 1
    clf.ranker = ranker
    clf.to_disk(tmp_path / "brand")
    pipe = build_pipeline(kb, ner_model_dir=tmp_path)
    new = ProductText("new", "Velmoraq V220 Bracket, Zinc Plated.")
    plain = ProductText("plain", "Stainless Hinge Set, 9 Pack.")
    res_new, res_plain = extract(pipe, [new, plain], use_structured=False)
    (brand,) = [f for f in res_new.facts if f.relation == "HAS_BRAND"]
    assert brand.object_key == "velmoraq" and brand.text == "Velmoraq" == new.title[brand.start:brand.end]
    assert brand.extractor == "brand-ranker" and 0 < brand.confidence <= 1
    assert not [f for f in res_plain.facts if f.relation == "HAS_BRAND"]


def test_a_ranker_from_another_feature_set_falls_back_to_the_rule(tmp_path):
    import json

    _, clf = fitted()
    clf.to_disk(tmp_path)
    (tmp_path / "ranker.json").write_text(json.dumps({"features": ["bias"], "weights": [0.0],
                                                      "threshold": 0.5}))
    assert BrandClassifier.from_disk(tmp_path).ranker is None
