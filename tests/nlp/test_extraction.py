import pytest

from nlp import EXTRACTOR_VERSION, ProductText, extract
from nlp.measures import find_measures



def facts_of(pipe, product, **kw):
    (result,) = list(extract(pipe, [product], **kw))
    assert result.error is None
    return result.facts


def field_value(product, field):
    return ",".join(product.categories) if field == "categories" else getattr(product, field)


def by(facts, relation, object_type=None):
    return {f.object_key: f for f in facts
            if f.relation == relation and (object_type is None or f.object_type == object_type)}


def test_spans_point_into_their_field(pipe, staples, screws, hard_start):
    for product in (staples, screws, hard_start):
        for f in facts_of(pipe, product):
            assert f.text == field_value(product, f.field)[f.start:f.end], f
            assert f.extractor and f.extractor_version == EXTRACTOR_VERSION
            assert 0 < f.confidence <= 1


def test_compatible_with_fits_list(pipe, staples):
    compat = by(facts_of(pipe, staples), "COMPATIBLE_WITH", "MODEL_NUMBER")
    assert {"tr100", "tr200", "tre500", "pht150", "pht250", "t50", "tr150"} <= set(compat)
    assert compat["t50"].text == "T-50" and compat["t50"].object_name == "Arrow T-50"


def test_compatible_with_cues():
    from nlp import KnowledgeBase, build_pipeline
    p = ProductText("c", "Carving Expert Rotary Burr Set 1/8'' Shank Fit Dremel Tools.",
                    "Replacement for the Bosch GBH2-26 hammer. Compatible with most 3D printers.")
    kb = KnowledgeBase.from_products([ProductText("d", "t", brand="Dremel")])
    facts = facts_of(build_pipeline(kb), p, use_structured=False)
    compat = by(facts, "COMPATIBLE_WITH")
    assert compat["dremel"].object_type == "BRAND"
    assert compat["gbh226"].object_type == "MODEL_NUMBER"
    assert "3d-printer" in compat


def test_made_of_color_and_used_for(pipe, staples, hard_start):
    facts = facts_of(pipe, staples)
    assert by(facts, "MADE_OF")["steel"].text == "Steel"
    uses = by(facts, "USED_FOR")
    assert {"insulation", "carpet-underlaying", "roofing-felt"} <= set(uses)
    hard = by(facts_of(pipe, hard_start), "USED_FOR")
    assert "heat-pump-systems" in hard
    dico = ProductText("4", "Dico 541-774-21/2 Nyalox Cup Brush 21/2-Inch Grey 80 Grit.",
                       "Maintains shape & will not rust. Color-coded packaging.")
    colors = by(facts_of(pipe, dico), "HAS_COLOR")
    assert set(colors) == {"gray"} and colors["gray"].text == "Grey"


def test_measures_are_normalised(pipe, staples, screws):
    attrs = {f.text: f for f in facts_of(pipe, staples) if f.relation == "HAS_ATTRIBUTE"}
    assert (attrs["1/2-Inch"].value, attrs["1/2-Inch"].unit) == (0.5, "in")
    assert (attrs["1000 Count"].value, attrs["1000 Count"].unit) == (1000, "count")
    screws = {f.text: f for f in facts_of(pipe, screws) if f.relation == "HAS_ATTRIBUTE"}
    assert screws["1-1/4-Inch"].value == 1.25 and screws["500-Pack"].unit == "count"
    found = {m.text: (m.value, m.unit) for m in find_measures("128GB card, 12V, 500 ml, 304L")}
    assert found == {"128GB": (128, "gb"), "12V": (12, "v"), "500 ml": (500, "ml")}


def test_measure_entities_in_doc(pipe, staples):
    doc = pipe(staples.title)
    ents = {e.text: e for e in doc.ents}
    assert ents["1/2-Inch"].label_ == "MEASURE" and ents["1/2-Inch"]._.unit == "in"
    assert ents["TRA708T"].label_ == "MODEL_NUMBER"


def test_model_numbers_and_brand(pipe, staples, hard_start):
    facts = facts_of(pipe, hard_start, use_structured=False)
    assert "spp6" in by(facts, "HAS_MODEL_NUMBER")
    staples = facts_of(pipe, staples, use_structured=False)
    assert set(by(staples, "HAS_BRAND")) == {"stanley"}  # not Arrow, a "fits" target
    assert "tra708t" in by(staples, "HAS_MODEL_NUMBER")
    assert by(staples, "IS_PRODUCT_TYPE")["staple"].field == "title"


def test_structured_fields(pipe, staples):
    facts = facts_of(pipe, staples)
    brand = [f for f in facts if f.relation == "HAS_BRAND" and f.extractor == "structured"]
    assert brand[0].object_key == "stanley" and brand[0].confidence == 1.0
    cat = by(facts, "IN_CATEGORY")
    assert "industrial-and-scientific/fasteners/collated-fasteners/staples" in cat
    text_only = facts_of(pipe, staples, use_structured=False)
    assert all(f.extractor != "structured" for f in text_only)


@pytest.mark.parametrize("bad, message", [
    ({"uid": "a", "title": 5}, "title must be str"),
    ({"uid": "b", "title": None}, "missing title"),
    ({"uid": "c"}, "missing title"),
    (ProductText("d", "ok", description="x" * 1_048_576), "description too long"),
    (ProductText("e", "\x00\x01\x02\x03\x04garbage\x00\x00"), "binary"),
    (ProductText("f", "ok", categories=[1, 2]), "categories"),
    (None, "invalid product"),
    (42, "invalid product"),
])
def test_bad_input_gives_error_not_exception(pipe, bad, message, staples, screws):
    results = list(extract(pipe, [staples, bad, screws], batch_size=2))
    assert len(results) == 3
    assert results[0].error is None and results[2].error is None and results[2].facts
    assert results[1].facts == [] and message in results[1].error


def test_dict_input_and_order(pipe, staples):
    items = [{"uid": str(i), "title": staples.title} for i in range(5)]
    assert [r.product_uid for r in extract(pipe, items, batch_size=2)] == list("01234")
