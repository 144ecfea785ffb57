"""Score fusion: Σ_c w_c · z(score_c), each component's scores z-normalised per user first.

Weights are searched on the validation stage only (coordinate ascent over a grid), so the test
figures stay untouched by the choice.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from recommender.metrics import evaluate
from recommender.scoring import Histories, Scorer, normalise_rows

DEFAULT_GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


@dataclass
class FusionWeights:
    weights: dict[str, float] = field(default_factory=dict)

    def active(self) -> dict[str, float]:
        return {k: v for k, v in self.weights.items() if v > 0}


INDUCTIVE = ("kgcn", "kgsasrec", "entitycf")  # components that can score an item with no interactions


def fused_scores(components: dict[str, Scorer], weights: FusionWeights, users: torch.Tensor, histories: Histories,
                 cold: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted sum of per-user z-scores.

    ``cold`` (bool, n_items) marks items with no interactions: for them, components that can
    only score from interactions would say "unknown", not "bad", so their z-scores there are
    replaced by the mean z-score of the knowledge-based (inductive) components.
    """
    z = {name: normalise_rows(components[name].score(users, histories)) for name in weights.active()}
    inductive = [n for n in z if n in INDUCTIVE]
    if cold is not None and cold.any() and inductive:
        imputed = torch.stack([z[n][:, cold] for n in inductive]).mean(0)
        for n in z:
            if n not in INDUCTIVE:
                z[n][:, cold] = imputed
    out = None
    for name, w in weights.active().items():
        s = w * z[name]
        out = s if out is None else out + s
    if out is None:
        raise ValueError("fusion has no component with a positive weight")
    return out


def search_weights(
    normalised: dict[str, torch.Tensor],
    users: np.ndarray,
    histories: Histories,
    targets: np.ndarray,
    grid: Sequence[float] = DEFAULT_GRID,
    passes: int = 2,
    metric: str = "ndcg@20",
    log=print,
) -> tuple[FusionWeights, float]:
    """Coordinate ascent over ``grid`` for each weight; ``normalised[name]`` is (len(users), n_items).

    Row r of each matrix belongs to ``users[r]``; ``histories`` and ``targets`` are indexed by
    user. Returns the best weights and their validation metric.
    """
    names = list(normalised)
    row_of = {int(u): r for r, u in enumerate(users)}

    def value(w: dict[str, float]) -> float:
        if not any(v > 0 for v in w.values()):
            return -1.0

        def score_fn(batch: torch.Tensor) -> torch.Tensor:
            rows = torch.as_tensor([row_of[int(u)] for u in batch])
            return sum(w[n] * normalised[n][rows] for n in names if w[n] > 0)

        return evaluate(score_fn, histories, targets, users=users)[metric]

    singles = {n: value({m: float(m == n) for m in names}) for n in names}
    best_name = max(singles, key=singles.get)
    weights = {n: float(n == best_name) for n in names}
    best = singles[best_name]
    log(f"[fusion] single components: { {k: round(v, 4) for k, v in singles.items()} }")
    for _ in range(passes):
        improved = False
        for n in names:
            for g in grid:
                if g == weights[n]:
                    continue
                trial = dict(weights, **{n: g})
                v = value(trial)
                if v > best + 1e-6:
                    best, weights, improved = v, trial, True
        if not improved:
            break
    log(f"[fusion] weights {weights} valid {metric} {best:.4f}")
    return FusionWeights(weights), best
