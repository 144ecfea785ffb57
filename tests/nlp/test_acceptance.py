"""Negative cues (one per error shape, on made-up text) and per-relation thresholds of nlp.acceptance."""
from __future__ import annotations

from nlp.acceptance import AUTO, CANDIDATE, Acceptor, product_cues, product_split
from nlp.types import Fact


def fact(relation, object_type, key, text, surface, field="description", occurrence=0, **kw):
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(surface, start + 1)
    return Fact(relation, object_type, key, surface, field=field, start=start, end=start + len(surface),
                text=surface, **kw)


def cues_of(f, title="", description="", categories=(), others=()):
    facts = [*others, f]
    pt = {"title": title, "description": description, "brand": "", "categories": list(categories)}
    return product_cues(facts, pt)[-1]


def test_spec_phrase_as_compatibility_target():
    d = "Works great and is compatible with a tolerance of +/- 0.02mm across the spool."
    f = fact("COMPATIBLE_WITH", "PRODUCT_TYPE", "x", d, "tolerance of +/- 0.02mm")
    assert "spec_target" in cues_of(f, description=d)


def test_spatial_fit_is_not_compatibility():
    d = "The slim body fits easily under most sofas and beds."
    f = fact("COMPATIBLE_WITH", "PRODUCT_TYPE", "sofa", d, "sofas")
    assert "spatial_fit" in cues_of(f, description=d)
    good = "This blade fits Zorbex Pro saws."
    g = fact("COMPATIBLE_WITH", "PRODUCT_TYPE", "saw", good, "Zorbex Pro saws")
    assert cues_of(g, description=good) == []


def test_own_parts_from_a_contents_list():
    d = "In the box: the grinder, a carry bag, a spare brush and fits any bench."
    f = fact("COMPATIBLE_WITH", "PRODUCT_TYPE", "bench", d, "any bench")
    assert "contents_list" in cues_of(f, description=d)


def test_boilerplate_use_fragment():
    d = "Great for garages, sheds and other applications where it is cold."
    f = fact("USED_FOR", "USE", "x", d, "and other applications")
    c = cues_of(f, description=d)
    assert "fragment" in c and "generic" in c


def test_plating_is_not_the_material():
    t = "Steel Hinge Pin, Nickel Plated Finish, 2 Inch"
    f = fact("MADE_OF", "MATERIAL", "nickel", t, "Nickel", field="title")
    assert "plating" in cues_of(f, title=t)


def test_negated_material():
    t = "Comfort Gloves, Non Latex, Medium"
    f = fact("MADE_OF", "MATERIAL", "latex", t, "Latex", field="title")
    assert "negated" in cues_of(f, title=t)


def test_standard_and_voltage_range_as_model_numbers():
    t = "Copper Plate, Meets ASTM Q123, 12-24V rated"
    std = fact("HAS_MODEL_NUMBER", "MODEL_NUMBER", "q123", t, "Q123", field="title")
    volts = fact("HAS_MODEL_NUMBER", "MODEL_NUMBER", "1224v", t, "12-24V", field="title")
    assert "standard" in cues_of(std, title=t)
    assert "measure_like" in cues_of(volts, title=t)
    thread = "Cap Screw, M5-0.8 Metric Threads"
    th = fact("HAS_MODEL_NUMBER", "MODEL_NUMBER", "m508", thread, "M5-0.8", field="title")
    assert "thread" in cues_of(th, title=thread)


def test_colour_naming_an_alloy():
    t = "Yellow Brass Nipple, 1/2 NPT"
    brass = fact("MADE_OF", "MATERIAL", "brass", t, "Brass", field="title")
    colour = fact("HAS_COLOR", "COLOR", "yellow", t, "Yellow", field="title")
    assert "names_material" in cues_of(colour, title=t, others=[brass])


def test_mega_ohm_read_as_metres_and_ratios_and_comparisons():
    d = "Range 0-2M ohm. Conductivity 60 W/mK. Gives 30% more grip."
    mega = fact("HAS_ATTRIBUTE", "MEASURE", "length-2-m", d, "2M", unit="m", value=2.0)
    ratio = fact("HAS_ATTRIBUTE", "MEASURE", "power-60-w", d, "60 W", unit="w", value=60.0)
    more = fact("HAS_ATTRIBUTE", "MEASURE", "percent-30-pct", d, "30%", unit="%", value=30.0)
    assert "mega_not_metre" in cues_of(mega, description=d)
    assert "per_unit" in cues_of(ratio, description=d)
    assert "comparison" in cues_of(more, description=d)


def test_kit_member_sizes_are_list_members():
    d = "Sizes included: 2mm, 3mm, 4mm, 6mm and 8mm sleeves."
    sizes = [fact("HAS_ATTRIBUTE", "MEASURE", f"length-{s}-mm", d, f"{s}mm") for s in (2, 3, 4, 6, 8)]
    assert "list_member" in cues_of(sizes[2], description=d, others=sizes[:2] + sizes[3:])


def test_product_type_after_for_is_the_device_served():
    t = "Acme Ink Cartridge for Inkjet Printers, Black"
    f = fact("IS_PRODUCT_TYPE", "PRODUCT_TYPE", "inkjet-printer", t, "Inkjet Printers", field="title")
    assert "after_for_with" in cues_of(f, title=t)


def test_thresholds_apply_per_relation():
    clean = [Fact("MADE_OF", "MATERIAL", "m", "M", field="title"), Fact("USED_FOR", "USE", "u", "U", field="title")]
    examples = [(clean[0], [], True)] * 18 + [(clean[0], [], False)] * 2 \
        + [(clean[1], ["title_fragment"], True)] * 18 + [(clean[1], ["title_fragment"], False)] * 2
    acceptor = Acceptor.fit(examples, thresholds={"MADE_OF": 0.8, "USED_FOR": 0.95})
    t = "Widget"
    a = Fact("MADE_OF", "MATERIAL", "m", "M", field="title", start=0, end=6)
    b = Fact("USED_FOR", "USE", "u", "U", field="title", start=0, end=6)
    acceptor.decide([a, b], {"title": t, "description": "", "brand": "", "categories": []})
    assert 0.8 < a.confidence < 0.95 and abs(a.confidence - b.confidence) < 0.05
    assert (a.status, b.status) == (AUTO, CANDIDATE)


def test_unjudged_relation_is_candidate_and_split_is_stable():
    acceptor = Acceptor.fit([], thresholds={})
    f = Fact("HAS_COLOR", "COLOR", "red", "Red", field="title", start=0, end=3)
    acceptor.decide([f], {"title": "Red", "description": "", "brand": "", "categories": []})
    assert f.status == CANDIDATE
    assert product_split("42") == product_split("42") and {product_split(str(i)) for i in range(20)} == {
        "gold", "calibration"}


def test_split_numbers_and_part_codes_are_not_measures():
    d = "Working pressure 3, 000 psi."
    split = fact("HAS_ATTRIBUTE", "MEASURE", "pressure-0-psi", d, "000 psi", unit="psi", value=0.0)
    assert "split_number" in cues_of(split, description=d)
    t = "Zorbex 40213A Step Drill Set"
    code = fact("HAS_ATTRIBUTE", "MEASURE", "current-40213-a", t, "40213A", field="title", unit="a", value=40213.0)
    assert "code_not_measure" in cues_of(code, title=t)


def test_series_inside_the_product_code_and_counts_are_not_model_numbers():
    t = "Wirex 18XW2200BLK XW2200 Hook-Up Wire, 8-Channel"
    product_code = fact("HAS_MODEL_NUMBER", "MODEL_NUMBER", "18xw2200blk", t, "18XW2200BLK", field="title")
    series = fact("HAS_MODEL_NUMBER", "MODEL_NUMBER", "xw2200", t, "XW2200", field="title")
    channels = fact("HAS_MODEL_NUMBER", "MODEL_NUMBER", "8channel", t, "8-Channel", field="title")
    assert "embedded_code" in cues_of(series, title=t, others=[product_code])
    assert "embedded_code" not in cues_of(product_code, title=t, others=[series])
    assert "number_word" in cues_of(channels, title=t)


def test_category_leaf_the_text_does_not_bear_out():
    cats = ["Shop", "Fasteners", "Anchors"]
    f = Fact("IN_CATEGORY", "CATEGORY", "shop/fasteners/anchors", "Anchors", field="categories", start=0, end=5)
    assert "leaf_head_missing" in cues_of(f, title="Brass Door Hinge, 3 Inch", categories=cats)
    assert "leaf_head_missing" not in cues_of(f, title="Plastic Wall Anchor Kit", categories=cats)
