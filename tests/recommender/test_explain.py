import numpy as np

from recommender.explain import ExplanationGraph, is_bare_measure, short_title


def test_paths_exist_in_graph(data):
    g = ExplanationGraph(data.user_ids, data.item_ids, data.sequences, data.item_entity, data.entity_ids,
                         data.entity_names, data.relations)
    explained = 0
    for u in range(20):
        for target in data.item_ids[:12]:
            if data.item_ids.index(target) in data.sequences[u]:
                continue
            ex = g.explain(target, user_id=data.user_ids[u])
            if ex is None:
                continue
            explained += 1
            assert len(ex.edges) <= 3 and ex.text
            assert ex.nodes[0].id == f"user:{data.user_ids[u]}" and ex.nodes[-1].id == f"item:{target}"
            for e in ex.edges:
                assert g.has_edge(e), e
    assert explained > 0


def _graph(items, facts, histories=None, users=None):
    """items: ids; facts: (item, relation, entity uid, entity name)."""
    entities = list(dict.fromkeys((uid, name) for _, _, uid, name in facts))
    relations = list(dict.fromkeys(rel for _, rel, _, _ in facts))
    triples = np.array([[items.index(i), relations.index(r), entities.index((uid, name))]
                        for i, r, uid, name in facts]).reshape(-1, 3)
    histories = histories or [[0]]
    users = users or [f"u{n}" for n in range(len(histories))]
    return ExplanationGraph(users, items, histories, triples, [e[0] for e in entities], [e[1] for e in entities],
                            relations)


TITLES = {"a": "Stanley TR150 Heavy Duty Staple Gun, with 1000 staples, Black.",
          "b": "Stanley SharpShooter Heavy Duty Staple Gun.", "c": "Arrow T50 Staples 1/2 Inch, 1250 pack."}


def test_names_products_by_title_never_by_id():
    g = _graph(["a", "b", "c"], [("a", "HAS_BRAND", "brand:stanley", "Stanley"),
                                 ("b", "HAS_BRAND", "brand:stanley", "Stanley"), ("c", "HAS_BRAND", "brand:arrow", "Arrow")])
    ex = g.explain("b", user_id="u0", names=TITLES, brands={"a": "Stanley", "b": "Stanley"})
    assert ex.kind == "shared_entity"
    assert ex.text == "By Stanley, like the Stanley TR150 Heavy Duty Staple Gun you bought"
    assert [n.name for n in ex.nodes if n.kind == "item"] == ["Stanley TR150 Heavy Duty Staple Gun",
                                                              "Stanley SharpShooter Heavy Duty Staple Gun"]
    assert "item:" not in ex.text and " a " not in f" {ex.text} "
    # without a title the bought product is not named at all (never by its id)
    bare = g.explain("b", user_id="u0")
    assert bare.text == "By Stanley, like something you bought" and all(n.name == "" for n in bare.nodes[1::2])


def test_short_title():
    assert short_title("Arrow T50 Staples 1/2 Inch, 1250 pack.") == "Arrow T50 Staples 1/2 Inch"
    assert short_title("3M &amp; Company Heavy Duty Tape (2 rolls)") == "3M & Company Heavy Duty Tape"
    assert short_title("VELCRO Brand - Sticky Back Hook and Loop Fasteners") == "VELCRO Brand - Sticky Back Hook and Loop Fasteners"
    long = short_title("Very long title " + "word " * 30)
    assert len(long) <= 61 and long.endswith("…")
    assert short_title("") is None


def _tree_facts(root: str | None):
    """Three departments of five two-item leaves (30 items), under one root if given."""
    items, facts = [f"i{n}" for n in range(30)], []
    for n, item in enumerate(items):
        dept = ["tools", "lab", "tapes"][n // 10]
        top = f"{root}/{dept}" if root else dept
        facts.append((item, "IN_CATEGORY", f"category:{top}/leaf{n % 10 // 2}", f"{dept} leaf {n % 10 // 2}"))
        facts.append((item, "IN_PARENT_CATEGORY", f"category:{top}", dept.capitalize()))
        if root:
            facts.append((item, "IN_PARENT_CATEGORY", f"category:{root}", root))
    return items, facts


def test_root_and_department_categories_never_chosen():
    g = _graph(*_tree_facts("industrial"))
    # i0 and i1 share their leaf; i0 and i2 only the department and the root; i10 only the root
    assert g.explain("i1", history=["i0"]).text == "Also in tools leaf 0, like something you bought"
    assert g.explain("i2", history=["i0"]) is None
    assert g.explain("i10", history=["i0"]) is None


def test_department_is_found_by_shape_not_depth():
    g = _graph(*_tree_facts(None))  # no common root: the top level is the department level
    assert g.explain("i1", history=["i0"]).text.startswith("Also in tools leaf 0")
    assert g.explain("i2", history=["i0"]) is None


def test_category_that_does_not_narrow_is_department_level():
    items, facts = _tree_facts("root")
    # a small department whose one sub-category holds all of it ("Test" > "Measure & Inspect")
    for n in (30, 31, 32):
        items.append(f"i{n}")
        facts += [(f"i{n}", "IN_PARENT_CATEGORY", "category:root", "root"),
                  (f"i{n}", "IN_PARENT_CATEGORY", "category:root/test", "Test"),
                  (f"i{n}", "IN_PARENT_CATEGORY", "category:root/test/measure", "Measure & Inspect")]
    facts += [("i30", "IN_CATEGORY", "category:root/test/measure/calipers", "Calipers"),
              ("i31", "IN_CATEGORY", "category:root/test/measure/calipers", "Calipers")]
    g = _graph(items, facts)
    assert g.explain("i32", history=["i30"]) is None
    assert g.explain("i31", history=["i30"]).text.startswith("Also in Calipers")


def test_bare_measures_never_chosen():
    assert is_bare_measure("5 pack") and is_bare_measure("1.75mm") and is_bare_measure("0.3mm,0.35mm,0.4mm")
    assert not is_bare_measure("3D Printing Filament") and not is_bare_measure("Capacitors")
    g = _graph(["a", "b"], [("a", "HAS_ATTRIBUTE", "measure:1.75mm", "1.75mm"),
                            ("b", "HAS_ATTRIBUTE", "measure:1.75mm", "1.75mm"),
                            ("a", "IN_CATEGORY", "category:x/y/5-pack", "5 pack"),
                            ("b", "IN_CATEGORY", "category:x/y/5-pack", "5 pack")])
    assert g.explain("b", history=["a"]) is None


def test_weak_reasons_give_no_explanation():
    titles = {"a": "HATCHBOX PLA 3D Printer Filament, 1.75 mm", "b": "Creality Ender 3 3D Printer",
              "c": "Zinc Plated Steel Hex Bolt", "d": "Zinc Plated Steel Washer", "e": "Stanley Staple Gun",
              "f": "Arrow T50 Staples"}
    g = _graph(list("abcdef"), [
        # a spec phrase as compatibility target, a type that is only a modifier, a finish as material
        ("a", "COMPATIBLE_WITH", "model:accuracy", "dimensional accuracy of +/- 0.03mm"),
        ("b", "COMPATIBLE_WITH", "model:accuracy", "dimensional accuracy of +/- 0.03mm"),
        ("a", "IS_PRODUCT_TYPE", "product_type:3d-printer", "3D Printer"),
        ("b", "IS_PRODUCT_TYPE", "product_type:3d-printer", "3D Printer"),
        ("c", "MADE_OF", "material:zinc", "Zinc"), ("d", "MADE_OF", "material:zinc", "Zinc"),
        ("a", "HAS_COLOR", "color:black", "Black"), ("b", "HAS_COLOR", "color:black", "Black"),
        # a brand the products' texts do not name ("Ideal" read from "ideal for")
        ("e", "HAS_BRAND", "brand:ideal", "Ideal"), ("f", "HAS_BRAND", "brand:ideal", "Ideal"),
        # a real compatibility target
        ("e", "COMPATIBLE_WITH", "model:arrow-t50", "Arrow T50"), ("f", "COMPATIBLE_WITH", "model:arrow-t50", "Arrow T50"),
    ], histories=[[0, 2, 4], [1, 3]], users=["u0", "u1"])
    assert g.explain("b", history=["a"], names=titles) is None
    assert g.explain("d", history=["c"], names=titles) is None
    ex = g.explain("f", history=["e"], names=titles, brands={"e": "Stanley", "f": "Arrow"})
    assert ex.text == "Fits Arrow T50, like the Stanley Staple Gun you bought"


def test_co_interaction_needs_several_customers():
    items = ["a", "b", "c"]
    g = _graph(items, [("c", "HAS_COLOR", "color:red", "Red")], histories=[[0], [0, 1], [0, 1], [0, 2]],
               users=["me", "v1", "v2", "v3"])
    ex = g.explain("b", user_id="me", names={"a": "Nitrile Gloves, Large", "b": "Safety Glasses."})
    assert ex.kind == "co_interaction" and ex.text == "2 of the 3 other customers who bought the Nitrile Gloves, Large also bought this"
    assert g.explain("c", user_id="me", names={"a": "Nitrile Gloves"}) is None  # a single co-buyer


def test_real_product_type_and_material():
    titles = {"a": "Mitutoyo Digital Caliper, 6 inch", "b": "Neiko Digital Caliper with LCD",
              "c": "Stainless Steel Ruler 12 inch", "d": "Stainless Steel Tweezers Set"}
    g = _graph(list("abcd"), [("a", "IS_PRODUCT_TYPE", "product_type:digital-caliper", "Digital Calipers"),
                              ("b", "IS_PRODUCT_TYPE", "product_type:digital-caliper", "Digital Calipers"),
                              ("c", "MADE_OF", "material:stainless-steel", "Stainless Steel"),
                              ("d", "MADE_OF", "material:stainless-steel", "Stainless Steel")])
    assert g.explain("b", history=["a"], names=titles).text == \
        "Same kind of product (Digital Calipers) as the Mitutoyo Digital Caliper you bought"
    assert g.explain("d", history=["c"], names=titles).text.startswith("Also made of Stainless Steel")


def test_brand_across_departments_is_weak():
    items, facts = _tree_facts("root")
    titles = {f"i{n}": f"Acme Thing {n}" for n in range(30)}
    facts += [("i0", "HAS_BRAND", "brand:acme", "Acme"), ("i2", "HAS_BRAND", "brand:acme", "Acme"),
              ("i10", "HAS_BRAND", "brand:acme", "Acme")]
    g = _graph(items, facts)
    assert g.explain("i2", history=["i0"], names=titles).text == "By Acme, like the Acme Thing 0 you bought"
    assert g.explain("i10", history=["i0"], names=titles) is None  # "tools" and "lab" share only the root


def test_co_interaction_needs_a_share_of_the_buyers():
    # 2 of the 30 other buyers of "a" also bought "b": chance, not a reason
    histories = [[0]] + [[0, 1]] * 2 + [[0]] * 28
    g = _graph(["a", "b"], [("a", "HAS_COLOR", "color:red", "Red")], histories=histories,
               users=[f"u{n}" for n in range(len(histories))])
    assert g.explain("b", user_id="u0", names={"a": "Nitrile Gloves"}) is None


def test_category_shared_as_one_items_leaf_and_the_others_ancestor():
    items, facts = _tree_facts("root")
    facts = [f for f in facts if not (f[0] == "i0" and f[1] == "IN_CATEGORY")]
    facts += [("i0", "IN_CATEGORY", "category:root/tools/leaf0/digital", "Digital Leaf"),
              ("i0", "IN_PARENT_CATEGORY", "category:root/tools/leaf0", "tools leaf 0")]
    g = _graph(items, facts)
    ex = g.explain("i1", history=["i0"])  # i0 holds "leaf0" as an ancestor of its own leaf, i1 as its leaf
    assert ex.text.startswith("Also in tools leaf 0")
    assert all(g.has_edge(e) for e in ex.edges)


def test_display_names():
    from recommender.explain import _item_phrase, _pretty_category

    assert _pretty_category("chain-and-rope-fittings") == "Chain & Rope Fittings"
    assert _pretty_category("fittings") == "Fittings" and _pretty_category("3D Printers") == "3D Printers"
    assert _item_phrase("The Hillman Group 90293 Machine Screw") == "the Hillman Group 90293 Machine Screw"


def test_root_dropped_by_the_model_still_marks_the_departments():
    # twelve small departments (each < 10% of the items) under a root the model left out
    items, facts = [f"i{n}" for n in range(60)], []
    for n, item in enumerate(items):
        dept = f"category:root/dept{n // 5}"
        facts += [(item, "IN_CATEGORY", f"{dept}/leaf{n % 5 // 2}", f"Leaf {n // 5}.{n % 5 // 2}"),
                  (item, "IN_PARENT_CATEGORY", dept, f"Department {n // 5}")]
    g = _graph(items, facts)
    assert g.explain("i1", history=["i0"]).text.startswith("Also in Leaf 0.0")
    assert g.explain("i2", history=["i0"]) is None  # only "Department 0" in common
