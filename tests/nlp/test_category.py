from nlp.category import CategoryClassifier

ROOT = "industrial-and-scientific/medical/diagnostics"
TRAIN = [
    ("Medical LED Otoscope for Nurses, White.", "Bright LED light.", f"{ROOT}/otoscopes"),
    ("Medical Otoscope Kit with LED, White.", "Diagnostic set.", f"{ROOT}/otoscopes"),
    ("Nurse Penlight, Reusable, Pack of 2.", "", f"{ROOT}/pen-lights"),
    ("Digital Thermometer, Oral, Fast Reading.", "", f"{ROOT}/thermometers/digital-thermometers"),
    ("Glass Thermometer, Mercury Free.", "", f"{ROOT}/thermometers"),
    ("Thermometer Holder for Wall.", "", f"{ROOT}/thermometers"),
]


def test_leaf_name_in_the_title_picks_that_leaf():
    plain = CategoryClassifier().fit(TRAIN)
    named = CategoryClassifier(name_weight=0.4, name_specificity=0.2).fit(TRAIN)
    title = ("Pen Light, Medical.", "")
    top = lambda clf, item: max(clf.predict([item])[0].items(), key=lambda kv: kv[1])[0]
    assert top(plain, title) == f"{ROOT}/otoscopes"  # the only neighbour word is "medical"
    assert top(named, title) == f"{ROOT}/pen-lights"
    # the more specific of parent and child leaf wins when the title names both
    assert top(named, ("Thermometer Digital Probe.", "")).endswith("/digital-thermometers")
    # the words must be in the title's head, not in what it is "for"
    item = [("Batteries for Pen Light.", "")]
    assert named.predict(item) == plain.predict(item)


def test_name_bonus_and_tree_weight_survive_persistence(tmp_path):
    named = CategoryClassifier(name_weight=0.3, name_specificity=0.2, tree_weight=0.5).fit(TRAIN)
    named.to_disk(tmp_path / "category")
    loaded = CategoryClassifier.from_disk(tmp_path / "category")
    assert (loaded.name_weight, loaded.name_specificity, loaded.tree_weight) == (0.3, 0.2, 0.5)
    item = [("Pen Light, Medical.", "")]
    assert loaded.predict(item) == named.predict(item)


def test_tree_smoothing_prefers_the_branch_whose_leaves_share_the_votes():
    train = [
        ("Brass Ball Valve Lever.", "", "p/valves/ball-valves"),
        ("Brass Gate Valve Lever.", "", "p/valves/gate-valves"),
        ("Brass Check Valve Lever.", "", "p/valves/check-valves"),
        ("Lever Handle Set.", "", "h/handles/lever-handles"),
        ("Steel Pull Handle.", "", "h/handles/pull-handles"),
        ("Steel Knob.", "", "h/knobs"),
    ]
    item = [("Brass Valve Lever Handle.", "")]
    top = lambda clf: max(clf.predict(item)[0].items(), key=lambda kv: kv[1])[0]
    # one close neighbour outvotes three siblings that split the votes ...
    assert top(CategoryClassifier().fit(train)) == "h/handles/lever-handles"
    # ... unless each path also counts its branch
    smoothed = CategoryClassifier(tree_weight=0.5).fit(train)
    assert top(smoothed).startswith("p/valves/")
