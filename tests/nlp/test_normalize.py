from nlp import KnowledgeBase, ProductText
from nlp.normalize import category_key, clean_text, entity_key


def test_brand_keys_fold_case_suffixes_and_descriptors():
    assert entity_key("BRAND", "Stanley") == entity_key("BRAND", "STANLEY") == "stanley"
    assert entity_key("BRAND", "Stanley Hand Tools") == "stanley"
    assert entity_key("BRAND", "Sealed Unit Parts Co., Inc.") == "sealed-unit-parts"
    assert entity_key("BRAND", "Wago Corporation") == "wago"
    assert entity_key("BRAND", "Black &amp; Decker, LLC") == "black-and-decker"
    assert entity_key("BRAND", "Türlen") == "turlen"


def test_category_key_is_slugged_path():
    path = "Industrial & Scientific,Fasteners,Collated Fasteners,Staples"
    assert category_key(path) == "industrial-and-scientific/fasteners/collated-fasteners/staples"
    assert entity_key("CATEGORY", path.split(",")) == category_key(path)


def test_html_entities_unescaped():
    assert clean_text("Primers &amp; paint") == "Primers & paint"
    assert clean_text("a &amp;amp; b") == "a & b"


def test_alias_linking_and_merge_roundtrip():
    kb = KnowledgeBase.from_products([
        ProductText("1", "t", brand="Stanley"), ProductText("2", "t", brand="STANLEY"),
        ProductText("3", "t", brand="Stanley Hand Tools"), ProductText("4", "t", brand="Safe-Touch"),
        ProductText("5", "t", brand="Sealed Unit Parts Co., Inc."),
        ProductText("6", "t", brand="Generic")])
    assert kb.link("BRAND", "STANLEY") == kb.link("BRAND", "Stanley Hand Tools") == "stanley"
    assert "Stanley Hand Tools" in kb.brands["stanley"]["aliases"]
    assert kb.link("BRAND", "SafeTouch") == "safe-touch"
    assert kb.link("BRAND", "Generic") is None and "generic" not in kb.brands
    assert kb.link("BRAND", "SUPCO") is None
    kb.add_alias("BRAND", "sealed-unit-parts", "SUPCO")
    assert kb.link("BRAND", "supco") == "sealed-unit-parts"
    kb.add_entity("BRAND", "Stanley Black & Decker")
    kb.merge("BRAND", "stanley", "Stanley Black & Decker")
    assert kb.link("BRAND", "Stanley Black & Decker") == "stanley"
    again = KnowledgeBase.from_dict(kb.to_dict())
    assert again.link("BRAND", "SUPCO") == "sealed-unit-parts"
    assert again.link("BRAND", "stanley black and decker") == "stanley"
    assert again.link("MATERIAL", "Aluminium") == again.link("MATERIAL", "aluminum") == "aluminum"


def test_categories_give_product_types(kb):
    assert kb.link("PRODUCT_TYPE", "staple") == "staple"
    assert kb.category_for_type("wood-screw") == (
        "industrial-and-scientific/fasteners/screws/wood-screws")
    assert "industrial-and-scientific/fasteners" in kb.categories
