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
