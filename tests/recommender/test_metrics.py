import math

import numpy as np
import torch

from recommender.metrics import evaluate, metrics_from_ranks, target_ranks


def test_ranks_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.8, 0.1]])
    # row 0: target 2 (0.5) -> only item 0 higher -> rank 2; row 1: target 1 ties with item 2 -> rank 2
    ranks = target_ranks(scores, torch.tensor([2, 1]), [[], []])
    assert ranks.tolist() == [2, 2]


def test_history_masked_and_masked_target():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.9, 0.1, 0.5, 0.3]])
    ranks = target_ranks(scores, torch.tensor([2, 0]), [[0], [0]])
    assert ranks[0].item() == 1  # item 0 masked away
    assert ranks[1].item() == 5  # a target in the history can never be recommended


def test_constant_scores_earn_nothing():
    ranks = target_ranks(torch.zeros(1, 100), torch.tensor([3]), [[]])
    assert ranks.item() == 100


def test_recall_ndcg_values():
    m = metrics_from_ranks(np.array([1, 3, 30]), ks=(10, 20))
    assert math.isclose(m["recall@10"], 2 / 3)
    assert math.isclose(m["ndcg@10"], (1.0 + 1 / math.log2(4)) / 3)
    assert math.isclose(m["recall@20"], 2 / 3)


def test_evaluate_skips_users_without_target():
    scores = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    m = evaluate(lambda u: scores[u], [[], [], []], np.array([0, -1, 0]), ks=(1,))
    assert math.isclose(m["recall@1"], 0.5)


def test_nan_scores_earn_nothing():
    scores = torch.tensor([[float("nan"), 0.5, 0.1]])
    assert target_ranks(scores, torch.tensor([0]), [[]]).item() == 4
    assert target_ranks(scores, torch.tensor([2]), [[]]).item() == 2


def test_evaluate_multi_by_hand():
    from recommender.metrics import evaluate_multi

    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]])
    # history masks item 0; ranking 1,2,3,4; truth {2, 4} -> hits at ranks 2 and 4 for K=3: one hit
    m = evaluate_multi(lambda u: scores[u], [[0]], [[2, 4]], ks=(3,))
    assert math.isclose(m["recall@3"], 0.5)
    idcg = 1 + 1 / math.log2(3)
    assert math.isclose(m["ndcg@3"], (1 / math.log2(3)) / idcg)
