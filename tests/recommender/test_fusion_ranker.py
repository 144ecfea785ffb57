"""The fusion search's vectorised ranker scores exactly as recommender.metrics.evaluate does."""
import numpy as np
import pytest
import torch

from recommender.fusion import _Ranker
from recommender.metrics import evaluate


@pytest.mark.parametrize("seed", [0, 1])
def test_ranker_matches_evaluate(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 300, 40
    mats = {n: torch.as_tensor(rng.normal(size=(n_users, n_items)).round(1), dtype=torch.float32) for n in "abc"}
    mats["a"][3, :] = float("nan")  # a NaN row: unrecommendable
    mats["b"][:, 5] = 0.0  # ties
    histories = [list(rng.choice(n_items, size=rng.integers(0, 6), replace=False)) for _ in range(n_users)]
    targets = rng.integers(0, n_items, size=n_users)
    targets[7] = -1  # no target
    histories[9] = histories[9] + [int(targets[9])]  # target inside the history: ranked last
    users = np.flatnonzero(targets >= 0)
    rows_users = np.arange(n_users)
    for weights in ({"a": 1.0}, {"a": 0.5, "b": 2.0}, {"b": 1.0, "c": 0.1}, {"a": 0.0, "c": 3.0}):
        def score_fn(batch):
            return sum(w * mats[n][batch] for n, w in weights.items() if w > 0)
        expected = evaluate(score_fn, histories, targets, users=users)
        ranker = _Ranker(mats, rows_users, histories, targets, users, batch_size=64)
        for metric in ("ndcg@20", "recall@10", "ndcg@10"):
            assert ranker.metric(weights, metric) == pytest.approx(expected[metric], abs=1e-12), (weights, metric)
