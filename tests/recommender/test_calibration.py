"""Cold-start blending: calibrated hit probabilities put items without interactions into the
ranking of the users whose history shares their entities, learned on validation only."""
import numpy as np
import torch

from recommender.calibration import Calibration, _pav
from recommender.training import TrainConfig, TrainedModel, train


def test_pav_is_monotone_and_keeps_weighted_mean():
    values, weights = np.array([0.1, 0.5, 0.2, 0.9, 0.3]), np.array([1.0, 1.0, 3.0, 1.0, 1.0])
    fitted = _pav(values, weights)
    assert np.all(np.diff(fitted) >= -1e-12)
    assert np.isclose((fitted * weights).sum(), (values * weights).sum())


def test_calibration_learns_hit_rate_by_score():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(200_000, generator=gen)
    # hits get likelier with the score: P(hit) = sigmoid(3 * (score - 2))
    hits = torch.rand(200_000, generator=gen) < torch.sigmoid(3 * (scores - 2))
    cal = Calibration.fit(scores, hits)
    p = cal(torch.tensor([-1.0, 0.0, 1.0, 2.0, 3.0]))
    assert torch.all(p[1:] >= p[:-1])
    assert abs(float(p[3]) - 0.5) < 0.15 and float(p[0]) < 0.01


def _without(data, item):
    from dataclasses import replace

    return replace(data, sequences=[[i for i in h if i != item] for h in data.sequences])


def test_item_without_interactions_is_recommended_to_its_group(tmp_path):
    from tests.recommender.conftest import synthetic

    data = synthetic(n_users=800)  # enough validation targets to calibrate (MIN_HITS per side)
    cold = 5  # group 1: users u with u % 4 == 1 buy it
    cfg = TrainConfig(components=("itemcf", "entitycf"), fusion=("itemcf",), epochs=1, seed=0)
    model = train(_without(data, cold), cfg, log=lambda *_: None)
    assert model.cold_blend is not None and bool(model.cold_items[cold])
    assert model.cold_blend.fallback_scale is None  # the calibrated path, not the small-data fallback
    users = torch.arange(data.n_users)
    blended = model.score(users, model.history)
    for r, h in enumerate(model.history):
        blended[r, torch.as_tensor(h, dtype=torch.long)] = float("-inf")
    top = blended.topk(10, dim=1).indices
    has = (top == cold).any(dim=1).numpy()
    rank = (blended > blended[:, [cold]]).sum(1).numpy()
    own = np.array([u % 4 == cold % 4 for u in range(data.n_users)])
    # With the plain fusion an item nobody bought never ranks (item-CF gives it nothing) ...
    plain = model.components["itemcf"].score(users, model.history)
    assert float(plain[:, cold].abs().max()) == 0.0
    # ... with the blend it reaches the users of its own group, not the others
    assert has[own].mean() > 0.9 and rank[own].mean() < rank[~own].mean() / 2
    # and the blend survives save/load
    loaded = TrainedModel.load(model.save(tmp_path / "m"))
    assert loaded.cold_blend is not None
    assert torch.allclose(loaded.score(users[:8], model.history[:8]), model.score(users[:8], model.history[:8]))


def _drop_item(data, item_id: str):
    """The data as if ``item_id`` did not exist yet, and its entity uids."""
    from recommender.data import InteractionData
    from recommender.knowledge import with_entities

    drop = data.item_ids.index(item_id)
    keep = [i for i in range(data.n_items) if i != drop]
    remap = {old: new for new, old in enumerate(keep)}
    triples = [(data.item_ids[i], data.relations[r], data.entity_ids[e], data.entity_names[e])
               for i, r, e in data.item_entity.tolist()]
    smaller = InteractionData(user_ids=list(data.user_ids), item_ids=[data.item_ids[i] for i in keep],
                              sequences=[[remap[i] for i in h if i != drop] for h in data.sequences])
    return (with_entities(smaller, [t for t in triples if t[0] != item_id]),
            [(t[1], t[2]) for t in triples if t[0] == item_id])


def test_item_added_after_training_is_recommended_and_has_similar_items(data):
    from recommender.serving import RecommendationIndex

    new_id = "i5"  # group 1
    trained_on, entities = _drop_item(data, new_id)
    cfg = TrainConfig(components=("itemcf", "entitycf"), fusion=("itemcf",), epochs=1, seed=0)
    model = train(trained_on, cfg, log=lambda *_: None)
    trained_index = RecommendationIndex.from_model(model)
    index = trained_index.with_new_items({new_id: entities, "i-unknown": [("HAS_BRAND", "brand:never-seen")]})
    assert index.new_item_ids == [new_id] and new_id in index.item_index
    assert new_id not in trained_index.item_index  # the original is untouched
    group = [u for u in range(data.n_users) if u % 4 == 1]
    others = [u for u in range(data.n_users) if u % 4 != 1]
    got = lambda users: np.mean([new_id in dict(index.recommend(f"u{u}", 10)) for u in users])
    assert got(group) > 0.9 and got(others) < got(group) / 2  # precomputed lists + the new item
    live = index.recommend(None, 10, history=[trained_on.item_ids[h] for h in trained_on.sequences[1][-3:]])
    assert new_id in dict(live)  # live scoring from a fresh history covers it too
    similar = [iid for iid, _ in index.similar(new_id, 6)]
    assert len(similar) == 6 and all(int(iid[1:]) % 4 == 1 for iid in similar)  # its own group
    from recommender.explain import ExplanationGraph

    why = ExplanationGraph.from_model(index.model).explain(new_id, user_id="u1")
    assert why.kind == "shared_entity" and why.nodes[-1].id == f"item:{new_id}"
    assert new_id not in index.with_new_items({}).item_index  # replaced, not appended


def test_refit_trains_on_train_plus_valid_for_the_best_epochs(data):
    cfg = TrainConfig(components=("itemcf", "lightgcn", "sasrec"), fusion=("itemcf", "lightgcn", "sasrec"), dim=8,
                      layers=1, epochs=10, seq_epochs=6, eval_every=2, patience=2, seed=0, refit=True)
    model = train(data, cfg, log=lambda *_: None)
    for name in ("lightgcn", "sasrec"):
        info = model.components[name].fit_info
        assert info["best_epoch"] > 0 and info["refit"]["epochs_run"] == info["best_epoch"], (name, info)
        assert f"{name}_refit" in model.timings
    assert model.metrics["test"]["fusion"]["ndcg@20"] > 0


def test_too_little_validation_evidence_falls_back_to_scaled_entity_scores():
    from recommender.calibration import MIN_HITS, fit_cold_blend

    n = 40
    scores = lambda u, h: torch.randn(len(u), n, generator=torch.Generator().manual_seed(int(u[0])))
    few = fit_cold_blend(scores, scores, [[1, 2]] * 10, np.arange(10) % n, n, fusion_weight=1.5)
    assert few.fallback_scale == 1.5  # 10 targets cannot calibrate anything
    fused, inductive = torch.randn(2, n), torch.randn(2, n)
    cold = torch.zeros(n, dtype=torch.bool)
    cold[:5] = True
    out = few.blend(fused, inductive, cold)
    assert torch.allclose(out[:, 5:], fused[:, 5:].double())
    from recommender.scoring import normalise_rows

    assert torch.allclose(out[:, :5], 1.5 * normalise_rows(inductive)[:, :5].double())
    assert MIN_HITS > 10


def test_exposure_floor_places_the_jth_best_cold_item_by_position_j_times_every():
    from recommender.calibration import exposure_floor

    gen = torch.Generator().manual_seed(0)
    n = 300
    cold = torch.zeros(n, dtype=torch.bool)
    cold[250:] = True
    scores = torch.rand(4, n, generator=gen, dtype=torch.float64)
    scores[:, 250:] -= 2.0  # every cold item below every warm one: without the floor none is shown
    histories = [[], [0, 1, 2], [], []]
    scores[1, [0, 1, 2]] = 5.0  # the user's own items, which the ranking drops, do not count as places
    out = exposure_floor(scores, cold, 10, histories, share=0.1)
    for r, h in enumerate(histories):
        s = out[r].clone()
        if h:
            s[h] = float("-inf")
        ranking = s.argsort(descending=True).tolist()
        cold_positions = [p + 1 for p, i in enumerate(ranking) if cold[i]][:5]
        assert cold_positions == [10, 20, 30, 40, 50], (r, cold_positions)
        # each side keeps its own order
        warm_order = [i for i in ranking if not cold[i]]
        assert warm_order == [i for i in s.argsort(descending=True).tolist() if not cold[i]]
        cold_order = [i for i in ranking if cold[i]][:20]
        assert cold_order == (250 + scores[r, 250:].argsort(descending=True)).tolist()[:20]
    # by default the spacing is the cold items' share of the columns: 50 of 300 = 1 in 6
    ranking = exposure_floor(scores, cold, 2)[0].argsort(descending=True).tolist()
    assert [p + 1 for p, i in enumerate(ranking) if cold[i]][:3] == [6, 12, 18]
    # a cold item that already ranks high stays where it is; off and no-cold leave scores alone
    scores[0, 260] = 10.0
    assert exposure_floor(scores, cold, 10)[0].argsort(descending=True)[0] == 260
    assert torch.equal(exposure_floor(scores, cold, 0), scores)
    assert torch.equal(exposure_floor(scores, torch.zeros(n, dtype=torch.bool), 10), scores)
