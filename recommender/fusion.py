"""Score fusion: Σ_c w_c · z(score_c), each component's scores z-normalised per user first.

Weights are searched on the validation stage only (coordinate ascent over a grid), so the test
figures stay untouched by the choice.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from recommender.metrics import metrics_from_ranks
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


class _Ranker:
    """Ranks of each user's target under Σ w·normalised, for many weightings of the same matrices.

    What does not depend on the weights (the users' rows of each matrix, their targets, the
    history mask) is gathered once (a copy of those rows: memory of one more score matrix), so one weighting costs a weighted sum and two comparisons per row batch
    instead of ``recommender.metrics.evaluate``'s per-user masking. Ranks are exactly
    ``recommender.metrics.target_ranks``'s (history masked, NaN unrecommendable, ties counted
    against the target, a target inside the history ranked last)."""

    def __init__(self, normalised: dict[str, torch.Tensor], rows_users: np.ndarray, histories: Histories,
                 targets: np.ndarray, users: np.ndarray, batch_size: int = 2048):
        row_of = {int(u): r for r, u in enumerate(rows_users)}
        users = np.asarray(users)
        self.batches = []
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            rows = torch.as_tensor([row_of[int(u)] for u in batch], dtype=torch.long)
            hr = [r for r, u in enumerate(batch) for _ in histories[u]]
            hc = [int(i) for u in batch for i in histories[u]]
            self.batches.append(({n: m[rows].to(torch.float32) for n, m in normalised.items()},
                                 torch.as_tensor(targets[batch], dtype=torch.long),
                                 (torch.as_tensor(hr, dtype=torch.long), torch.as_tensor(hc, dtype=torch.long))))

    def ranks(self, weights: dict[str, float]) -> np.ndarray:
        out = []
        active = [(n, w) for n, w in weights.items() if w > 0]
        for mats, targets, (hr, hc) in self.batches:
            fused = None
            for n, w in active:
                part = mats[n] * w  # w·z, then a plain sum: the same rounding as sum(w * z) (ties decide ranks)
                fused = part if fused is None else fused.add_(part)
            fused = torch.nan_to_num_(fused, nan=float("-inf"))
            r = torch.arange(len(targets))
            target_scores = fused[r, targets].clone()
            fused[hr, hc] = float("-inf")
            masked_target = torch.isneginf(fused[r, targets])  # in the history, or NaN
            # A finite target ties with itself, so 1 + #higher + (#equal - 1) = #(score >= target's).
            ranks = (fused >= target_scores[:, None]).sum(1)
            ranks[masked_target] = fused.shape[1] + 1
            out.append(ranks.numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def metric(self, weights: dict[str, float], metric: str) -> float:
        return metrics_from_ranks(self.ranks(weights), (int(metric.split("@")[1]),))[metric]


def search_weights(
    normalised: dict[str, torch.Tensor],
    users: np.ndarray,
    histories: Histories,
    targets: np.ndarray,
    grid: Sequence[float] = DEFAULT_GRID,
    passes: int = 2,
    metric: str = "ndcg@20",
    log=print,
    ranker: "_Ranker | None" = None,
) -> tuple[FusionWeights, float]:
    """Coordinate ascent over ``grid`` for each weight; ``normalised[name]`` is (len(users), n_items).

    Row r of each matrix belongs to ``users[r]``; ``histories`` and ``targets`` are indexed by
    user. ``ranker``: one already prepared for ``users`` (then only ``normalised``'s names are
    read). Returns the best weights and their validation metric.
    """
    names = list(normalised)
    ranker = ranker or _Ranker(normalised, users, histories, targets, users)

    def value(w: dict[str, float]) -> float:
        if not any(v > 0 for v in w.values()):
            return -1.0
        return ranker.metric(w, metric)

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


def choose_weights(
    normalised: dict[str, torch.Tensor],
    users: np.ndarray,
    histories: Histories,
    targets: np.ndarray,
    seed: int = 0,
    metric: str = "ndcg@20",
    log=print,
) -> tuple[FusionWeights, dict]:
    """Fusion weights that do not lose to the best single component out of sample.

    Weights searched on all of validation can overfit it (seven weights on a grid, chosen on the
    same users they are judged on) and then rank below the best component on test. So the
    validation users are split in two halves: weights are searched on each half and judged on
    the other, and so is the choice of the single best component. The fusion is served only if
    its held-out figure beats the held-out single component's; its weights are then the mean of
    the two halves' weights (each half's search a noisy estimate of the same optimum). Otherwise
    the best single component, chosen on all of validation, is served alone.
    Returns the weights and a record of the decision.
    """
    names = list(normalised)
    if len(names) == 1:
        return FusionWeights({names[0]: 1.0}), {"decision": "single", "component": names[0]}
    perm = np.random.default_rng([seed, 104729]).permutation(len(users))
    halves = [np.sort(users[perm[: len(users) // 2]]), np.sort(users[perm[len(users) // 2:]])]

    rankers: dict[int, _Ranker] = {}

    def ranker(subset: np.ndarray) -> _Ranker:
        if id(subset) not in rankers:
            rankers[id(subset)] = _Ranker(normalised, users, histories, targets, subset)
        return rankers[id(subset)]

    def value(w: dict[str, float], subset: np.ndarray) -> float:
        return ranker(subset).metric(w, metric)

    fused_out, single_out, fold_weights = [], [], []
    for k in (0, 1):
        fit, held = halves[k], halves[1 - k]
        w, _ = search_weights(normalised, fit, histories, targets, metric=metric, log=log, ranker=ranker(fit))
        fold_weights.append(w.weights)
        fused_out.append(value(w.weights, held))
        singles = {n: value({n: 1.0}, fit) for n in names}
        best = max(singles, key=singles.get)
        single_out.append(value({best: 1.0}, held))
    fused_held, single_held = float(np.mean(fused_out)), float(np.mean(single_out))
    record = {"heldout_fusion": fused_held, "heldout_single": single_held, "fold_weights": fold_weights}
    if fused_held > single_held:
        mean = {n: (fold_weights[0][n] + fold_weights[1][n]) / 2 for n in names}
        record.update(decision="fusion")
        log(f"[fusion] held-out {metric}: fusion {fused_held:.4f} > best single {single_held:.4f}; weights {mean}")
        return FusionWeights(mean), record
    singles = {n: value({n: 1.0}, users) for n in names}
    best = max(singles, key=singles.get)
    record.update(decision="single", component=best)
    log(f"[fusion] held-out {metric}: fusion {fused_held:.4f} <= best single {single_held:.4f}; serving {best} alone")
    return FusionWeights({n: float(n == best) for n in names}), record
