import pytest
import torch

from recommender.serving import RecommendationIndex
from recommender.training import TrainConfig, TrainedModel, train

CFG = TrainConfig(components=("popularity", "itemcf", "lightgcn"), fusion=("itemcf", "lightgcn"), dim=16, layers=2,
                  epochs=20, eval_every=10, lr=0.02, device="cpu")


@pytest.fixture(scope="module")
def model():
    from .conftest import synthetic

    return train(synthetic(), CFG, log=lambda s: None)


def test_metrics_and_fusion_weights_recorded(model):
    assert set(model.metrics) == {"valid", "test"}
    assert {"popularity", "itemcf", "lightgcn", "fusion"} <= set(model.metrics["test"])
    assert model.weights.active()
    assert model.metrics["test"]["fusion"]["ndcg@20"] > model.metrics["test"]["popularity"]["ndcg@20"]


def test_save_load_round_trip(model, tmp_path):
    model.save(tmp_path / "m")
    loaded = TrainedModel.load(tmp_path / "m")
    assert loaded.user_ids == model.user_ids and loaded.item_ids == model.item_ids
    assert loaded.weights.weights == model.weights.weights and loaded.history == model.history
    users = torch.arange(10)
    hist = [model.history[u] for u in range(10)]
    torch.testing.assert_close(loaded.score(users, hist), model.score(users, hist))


def test_serving_never_returns_seen_or_excluded(model):
    index = RecommendationIndex.from_model(model, top_k=30)
    for u, uid in enumerate(model.user_ids):
        seen = {model.item_ids[i] for i in model.history[u]}
        exclude = {model.item_ids[(u * 7) % model.n_items]}
        recs = index.recommend(uid, k=10, exclude=exclude)
        assert len(recs) == 10
        assert not ({i for i, _ in recs} & (seen | exclude))
    # A request that excludes most items must fall back to live scoring and still obey the rules.
    big = set(model.item_ids[:35])
    recs = index.recommend(model.user_ids[0], k=5, exclude=big)
    assert not ({i for i, _ in recs} & (big | {model.item_ids[i] for i in model.history[0]}))


def test_unknown_user_history_and_popular(model):
    index = RecommendationIndex.from_model(model, top_k=30)
    recs = index.recommend("nobody", k=5, history=["i0", "i4"])
    assert len(recs) == 5 and not ({"i0", "i4"} & {i for i, _ in recs})
    assert [i for i, _ in index.recommend("nobody", k=3)] == [i for i, _ in index.popular(3)]
    only = index.popular(2, candidates=["i1", "i2", "i3"])
    assert {i for i, _ in only} <= {"i1", "i2", "i3"}
    sim = index.similar("i0", k=5)
    assert len(sim) == 5 and "i0" not in {i for i, _ in sim}


def test_fusion_search_ranks_at_most_fusion_users_and_a_loose_cap_changes_nothing(monkeypatch):
    """The weight search's dense score matrices have ``fusion_users`` rows at most (memory linear
    in the catalogue); a cap above the validation users is the search over all of them."""
    from recommender import training

    from .conftest import synthetic

    rows = []
    real = training._normalised_matrix

    def recording(component, users, histories):
        rows.append(len(users))
        return real(component, users, histories)

    monkeypatch.setattr(training, "_normalised_matrix", recording)
    cfg = TrainConfig(components=("popularity", "itemcf", "usercf"), fusion=("itemcf", "usercf"), device="cpu")
    data = synthetic()
    uncapped = train(data, TrainConfig(**{**cfg.__dict__, "fusion_users": 0}), log=lambda s: None)
    n_valid = rows[-1]
    loose = train(data, TrainConfig(**{**cfg.__dict__, "fusion_users": n_valid + 1}), log=lambda s: None)
    assert rows[-1] == n_valid and loose.weights.weights == uncapped.weights.weights
    capped = train(data, TrainConfig(**{**cfg.__dict__, "fusion_users": n_valid // 3}), log=lambda s: None)
    assert rows[-1] == n_valid // 3 < n_valid
    assert capped.weights.active() and capped.metrics["test"]["served"]["ndcg@20"] > 0
