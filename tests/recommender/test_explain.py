from recommender.explain import ExplanationGraph


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


def test_brand_preferred_and_sentence():
    import numpy as np

    g = ExplanationGraph(["u"], ["a", "b", "c"], [[0]], np.array([[0, 0, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1], [2, 1, 1]]),
                         ["brand:stanley", "category:tools"], ["Stanley", "Tools"], ["HAS_BRAND", "IN_CATEGORY"],
                         item_names={"a": "Staple gun"})
    ex = g.explain("b", user_id="u")
    assert ex.kind == "shared_entity"
    assert ex.text == "Same brand (Stanley) as Staple gun you bought"
    assert g.explain("b", history=["c"]).text.startswith("Also in Tools")
