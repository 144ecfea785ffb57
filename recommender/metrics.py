"""Ranking metrics, computed one way everywhere (bench, training, tests).

Full ranking over all items; every item in the user's history is masked; one relevant item
per user. rank = 1 + number of unmasked items scoring strictly higher than the target plus the
number tying with it (ties are counted against the model, so constant scores earn nothing).
Recall@K = hit@K; NDCG@K = 1/log2(rank + 1) when rank ≤ K, else 0.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

ScoreFn = Callable[[torch.Tensor], torch.Tensor]  # user indices (B,) -> scores (B, n_items)


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, histories: Sequence[Sequence[int]]) -> torch.Tensor:
    """1-based rank of each row's target among its unmasked items (history masked)."""
    scores = scores.detach().to(torch.float32).clone()
    # NaN compares false with everything and would rank first: count it as unrecommendable.
    scores = torch.nan_to_num(scores, nan=float("-inf"))
    rows = torch.arange(scores.shape[0], device=scores.device)
    target_scores = scores[rows, targets]
    for r, hist in enumerate(histories):
        if len(hist):
            scores[r, torch.as_tensor(list(hist), dtype=torch.long, device=scores.device)] = float("-inf")
    # A target that also appears in the history stays masked: it cannot be recommended.
    masked_target = torch.isneginf(scores[rows, targets])
    target_scores = torch.where(masked_target, torch.full_like(target_scores, float("-inf")), target_scores)
    higher = (scores > target_scores[:, None]).sum(1)
    ties = (scores == target_scores[:, None]).sum(1) - 1  # the target itself
    ranks = 1 + higher + ties.clamp(min=0)
    ranks[masked_target] = scores.shape[1] + 1
    return ranks


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (10, 20)) -> dict[str, float]:
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks <= k
        out[f"recall@{k}"] = float(hit.mean()) if len(ranks) else 0.0
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0).mean()) if len(ranks) else 0.0
    return out


def evaluate(
    score_fn: ScoreFn,
    histories: Sequence[Sequence[int]],
    targets: np.ndarray,
    ks: Sequence[int] = (10, 20),
    batch_size: int = 1024,
    users: np.ndarray | None = None,
) -> dict[str, float]:
    """Recall@K and NDCG@K averaged over users with a target (target ≥ 0)."""
    targets = np.asarray(targets)
    if users is None:
        users = np.flatnonzero(targets >= 0)
    all_ranks = []
    with torch.no_grad():
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            scores = score_fn(torch.as_tensor(batch, dtype=torch.long))
            t = torch.as_tensor(targets[batch], dtype=torch.long, device=scores.device)
            all_ranks.append(target_ranks(scores, t, [histories[u] for u in batch]).cpu().numpy())
    ranks = np.concatenate(all_ranks) if all_ranks else np.zeros(0)
    return metrics_from_ranks(ranks, ks)


def evaluate_multi(
    score_fn: ScoreFn,
    histories: Sequence[Sequence[int]],
    test_items: Sequence[Sequence[int]],
    ks: Sequence[int] = (20,),
    batch_size: int = 1024,
) -> dict[str, float]:
    """Several relevant items per user (the KGAT/KGIN Amazon-Book protocol).

    History masked, full ranking. Recall@K = hits / |test items|; NDCG@K = DCG@K / IDCG@K with
    the ideal list holding min(|test items|, K) hits (as in KGIN's ``ndcg_at_k``). Averaged
    over users with at least one test item. Ties are broken by ``torch.topk``.
    """
    users = np.asarray([u for u, t in enumerate(test_items) if len(t)], dtype=np.int64)
    kmax = max(ks)
    discounts = 1.0 / np.log2(np.arange(2, kmax + 2))
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    with torch.no_grad():
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            scores = torch.nan_to_num(score_fn(torch.as_tensor(batch, dtype=torch.long)).to(torch.float32),
                                      nan=float("-inf"))
            for r, u in enumerate(batch):
                if len(histories[u]):
                    scores[r, torch.as_tensor(list(histories[u]), dtype=torch.long, device=scores.device)] = float("-inf")
            top = scores.topk(kmax, dim=1).indices.cpu().numpy()
            for r, u in enumerate(batch):
                truth = set(test_items[u])
                hits = np.fromiter((i in truth for i in top[r]), dtype=bool, count=kmax)
                for k in ks:
                    h = hits[:k]
                    sums[f"recall@{k}"] += h.sum() / len(truth)
                    idcg = discounts[:min(len(truth), k)].sum()
                    sums[f"ndcg@{k}"] += (discounts[:k] * h).sum() / idcg
    return {key: float(v / max(len(users), 1)) for key, v in sums.items()}
