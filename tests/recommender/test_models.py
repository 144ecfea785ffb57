import numpy as np
import torch

from recommender.data import leave_last_out
from recommender.lightgcn import GraphRecommender
from recommender.scoring import FitContext, Knowledge


def _ctx(data):
    k = Knowledge(len(data.entity_ids), len(data.relations), data.item_entity)
    return FitContext(data.n_users, data.n_items, k, torch.device("cpu"), seed=0, log=lambda s: None), k


def test_lightgcn_trains_and_beats_random(data):
    torch.manual_seed(0)
    split = leave_last_out(data)
    ctx, _ = _ctx(data)
    model = GraphRecommender(data.n_users, data.n_items, dim=16, layers=2, epochs=40, eval_every=10,
                             patience=10, lr=0.02, device="cpu")
    info = model.fit(split, ctx)
    hist = split.history("test")
    m = model.evaluate(hist, split.targets("test"))
    # Random ranking hits the top 10 of ~41 unmasked items about 10/41 of the time.
    assert m["recall@10"] > 0.45, m
    assert info["best_epoch"] > 0


def test_knowledge_model_scores_cold_item_from_entities(data):
    split = leave_last_out(data)
    ctx, knowledge = _ctx(data)
    model = GraphRecommender(data.n_users, data.n_items, dim=16, layers=2, use_knowledge=True,
                             knowledge=knowledge, epochs=20, eval_every=10, device="cpu")
    model.fit(split, ctx)
    cold = 5
    hist = [[i for i in h if i != cold] for h in split.history("test")]
    model.prepare(hist)  # no retraining: the cold item only reaches the graph through its entities
    assert model.item_emb[cold].abs().sum() > 0
    s = model.score(torch.arange(data.n_users), hist)[:, cold]
    assert (s != 0).all()
    # Its nearest warm items share its group (brand / category).
    emb = torch.nn.functional.normalize(model.item_emb, dim=1)
    nearest = (emb @ emb[cold]).topk(6).indices.tolist()[1:]
    assert np.mean([n % 4 == cold % 4 for n in nearest]) >= 0.5


def test_sequential_trains_and_scores_cold_item_from_entities(data, tmp_path):
    from recommender.sequential import SequentialRecommender

    split = leave_last_out(data)
    ctx, knowledge = _ctx(data)
    cold = 5
    split.train = [[i for i in h if i != cold] for h in split.train]
    model = SequentialRecommender(data.n_items, dim=16, max_len=10, layers=1, heads=1, dropout=0.1,
                                  knowledge=knowledge, name="kgsasrec", lr=0.01, batch_size=32, epochs=30,
                                  eval_every=10, patience=5, device="cpu")
    model.fit(split, ctx)
    hist = [[i for i in h if i != cold] for h in split.history("test")]
    m = model.evaluate(hist, split.targets("test"))
    assert m["recall@10"] > 0.4, m
    model.prepare(hist)
    assert model.encoder.id_mask[cold + 1] == 0  # never trained: id part off, entities only
    s = model.score(torch.arange(data.n_users), hist)
    assert (s[:, cold] != 0).all()
    # Users of the cold item's group rank it above users of other groups, on average.
    own = [u for u in range(data.n_users) if u % 4 == cold % 4]
    other = [u for u in range(data.n_users) if u % 4 != cold % 4]
    rank = (s > s[:, [cold]]).sum(1).float()
    assert rank[own].mean() < rank[other].mean()
    # Round trip through the saved state.
    loaded = SequentialRecommender.from_state(model.state())
    loaded.prepare(hist)
    torch.testing.assert_close(loaded.score(torch.arange(5), hist[:5]), model.score(torch.arange(5), hist[:5]))


def test_entitycf_scores_item_without_interactions(data):
    from recommender.knowledge import item_entity_matrix
    from recommender.neighbourhood import EntityCF

    cold = 5
    hist = [[i for i in h if i != cold] for h in data.sequences]
    cf = EntityCF(data.n_items, item_entity_matrix(data.item_entity, data.n_items, len(data.entity_ids)), 10)
    cf.prepare(hist)
    s = cf.score(torch.arange(data.n_users), hist)[:, cold]
    own = [u for u in range(data.n_users) if u % 4 == cold % 4]
    assert (s[own] > 0).all()


def test_sequential_sampled_softmax_learns_with_fewer_candidates_than_items(data, monkeypatch):
    """Above ``softmax_items`` items an epoch scores each target against the batch's targets and a
    sample, not every item (its cost linear in the shop), and still learns the sequences."""
    import torch.nn.functional as F

    from recommender import sequential
    from recommender.sequential import SequentialRecommender

    widths = []
    real = F.cross_entropy

    def recording(logits, target, *a, **kw):
        widths.append(logits.shape[1])
        return real(logits, target, *a, **kw)

    monkeypatch.setattr(sequential.F, "cross_entropy", recording)
    split = leave_last_out(data)
    ctx, _ = _ctx(data)
    model = SequentialRecommender(data.n_items, dim=16, max_len=10, layers=1, heads=1, dropout=0.1, lr=0.01,
                                  batch_size=8, epochs=30, eval_every=10, patience=5, device="cpu",
                                  softmax_items=data.n_items // 4)
    model.fit(split, ctx)
    assert widths and max(widths) <= data.n_items and np.mean(widths) < 0.9 * data.n_items, np.mean(widths)
    m = model.evaluate(split.history("test"), split.targets("test"))
    assert m["recall@10"] > 0.4, m
