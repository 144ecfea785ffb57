"""Cold-start blending by calibrated hit probability.

A fused model scores items with interactions well and items without any badly: its CF and
graph components say "unknown", which reads as "bad". The knowledge-graph component
(entity-CF: the user's history items and the candidate share brand, category, ...) scores both
kinds the same way. ``ColdStartBlend`` ranks every item by one comparable quantity, the
probability that it is the user's next item given its score, learned on the validation stage:

* warm items: P(hit | fused score), from validation users' targets among items with interactions;
* cold items: P(hit | entity-CF score), from a random *pseudo-cold* share of the items (entity-CF
  never looks at a candidate's interactions, so its scores for them behave as for truly new items).

Both maps are monotone (pool-adjacent-violators over score bins, interpolated between bin
centres), so each side keeps its own order and only the interleaving between cold and warm
items is learned. Nothing here looks at test data.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from recommender.scoring import Histories, normalise_rows

ScoreFn = Callable[[torch.Tensor, Histories], torch.Tensor]


def _pav(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Non-decreasing least-squares fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [value, weight, size]
    for v, w in zip(values.tolist(), weights.tolist()):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            wt = w1 + w2
            blocks.append([(v1 * w1 + v2 * w2) / wt if wt > 0 else (v1 + v2) / 2, wt, n1 + n2])
    return np.concatenate([np.full(n, v) for v, _, n in blocks]) if blocks else values


@dataclass
class Calibration:
    """Monotone map score -> P(item is the target), piecewise linear between bin centres.

    Strictly increasing (a 1e-9 ramp over the fitted values, edge segments extended beyond the
    outer centres) and evaluated in float64, so it never merges two differently scored items
    into a tie: the ranking of one side is exactly its score's ranking.
    """

    centres: torch.Tensor
    probs: torch.Tensor

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        s = scores.double()
        x, y = self.centres.double(), self.probs.double()
        if len(x) == 1:
            return y[0] + 1e-9 * s
        idx = torch.bucketize(s, x).clamp(1, len(x) - 1)
        x0, x1, y0, y1 = x[idx - 1], x[idx], y[idx - 1], y[idx]
        return y0 + (y1 - y0) / (x1 - x0).clamp(min=1e-12) * (s - x0)

    @classmethod
    def fit(cls, scores: torch.Tensor, hits: torch.Tensor, n_bins: int = 24) -> "Calibration":
        """``scores``: candidate scores (1-D); ``hits``: bool, the candidate was the target.

        Bins are finer towards the top (quantiles 1 - 2^-k), where rankings are decided.
        """
        if scores.numel() == 0:
            return cls(torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
        levels = torch.tensor([1 - 0.5 ** k for k in range(1, n_bins + 1)], dtype=torch.float64)
        sample = scores if scores.numel() <= 2_000_000 else scores[torch.randperm(scores.numel())[:2_000_000]]
        edges = torch.unique(torch.quantile(sample.double(), levels).float())
        bins = torch.bucketize(scores, edges)
        n = len(edges) + 1
        count = torch.bincount(bins, minlength=n).double()
        hit = torch.bincount(bins[hits], minlength=n).double()
        total = torch.bincount(bins, weights=scores.double(), minlength=n)
        keep = count > 0
        centres = total[keep] / count[keep]
        probs = _pav((hit[keep] / count[keep]).numpy(), count[keep].numpy()) + 1e-9 * np.arange(int(keep.sum()))
        return cls(centres, torch.as_tensor(probs, dtype=torch.float64))

    def state(self) -> dict:
        return {"centres": self.centres, "probs": self.probs}

    @classmethod
    def from_state(cls, state: dict) -> "Calibration":
        return cls(state["centres"], state["probs"])


MIN_HITS = 30  # validation targets each side needs before its calibration is trusted
MAX_FLOORED = 20  # exposure_floor places at most this many cold items per list (positions up to 20 x every)


def exposure_floor(scores: torch.Tensor, cold: torch.Tensor, every: int, histories: Histories | None = None,
                   share: float | None = None) -> torch.Tensor:
    """New items' exposure: in each row the j-th best-scored cold item (j = 1..MAX_FLOORED) ranks
    no lower than position ``j * spacing`` (lifted just above the warm item it must pass when its
    own score would put it lower), where ``spacing = max(every, round(1 / share))`` and ``share``
    is the cold items' share of the catalogue (default: of ``scores``' columns). So cold items get
    at most their catalogue share of the places, and never more than one in ``every``: a shop that
    added one item in a hundred shows it near position 100, not in everybody's top 10.

    Why: the calibrated blend ranks cold items where their probability of being next puts them,
    and a model that is good on items with interactions leaves them few places (issue #12: 0.49x
    warm recall for ``best``); a shop wants what it just added seen, and this is the exploration
    Gorse's ``explore_recommend`` does by reserving a share of each list. Each side keeps its own
    order. ``histories`` (one per row): items the ranking will drop (a user's history) do not count
    as places. ``every`` <= 1 (or no cold item): ``scores`` unchanged."""
    if every <= 1 or not bool(cold.any()) or bool(cold.all()):
        return scores
    n_warm, n_cold = int((~cold).sum()), int(cold.sum())
    spacing = max(every, int(round(1.0 / (share if share else n_cold / len(cold)))))
    at = torch.arange(1, min(n_cold, MAX_FLOORED) + 1) * (spacing - 1)  # the warm rank (0-based) each must pass
    at = at[at < n_warm]
    if not len(at):
        return scores
    view = scores
    if histories is not None and any(len(h) for h in histories):
        view = scores.clone()
        rows = [r for r, h in enumerate(histories) for _ in h]
        view[torch.as_tensor(rows, dtype=torch.long),
             torch.as_tensor([i for h in histories for i in h], dtype=torch.long)] = float("-inf")
    warm_top = view[:, ~cold].topk(int(at[-1]) + 1, dim=1).values
    passing = warm_top[:, at]
    passing = torch.nextafter(passing, torch.full_like(passing, float("inf")))
    cold_idx = torch.nonzero(cold).squeeze(1)
    best, order = scores[:, cold_idx].topk(len(at), dim=1)
    out = scores.clone()
    out.scatter_(1, cold_idx[order], torch.maximum(best, passing))
    return out


@dataclass
class ColdStartBlend:
    warm: Calibration
    cold: Calibration
    component: str = "entitycf"  # the inductive component that scores cold items
    # Too few validation targets to calibrate (a small shop): cold items get their inductive
    # z-score times this (the fusion's total weight), as if that one component spoke for all.
    fallback_scale: float | None = None

    def cold_scores(self, inductive_z: torch.Tensor) -> torch.Tensor:
        """Scores of cold items from the inductive component's per-user z-scores."""
        if self.fallback_scale is not None:
            return self.fallback_scale * inductive_z.double()
        return self.cold(inductive_z)

    def warm_scores(self, fused: torch.Tensor) -> torch.Tensor:
        return fused.double() if self.fallback_scale is not None else self.warm(fused)

    def blend(self, fused: torch.Tensor, inductive: torch.Tensor, cold: torch.Tensor) -> torch.Tensor:
        """(B, n) scores: calibrated fused score for warm items, calibrated inductive z-score for cold ones."""
        return torch.where(cold.unsqueeze(0), self.cold_scores(normalise_rows(inductive)), self.warm_scores(fused))

    def scores(self, components: dict, weights, users: torch.Tensor, histories: Histories,
               cold: torch.Tensor) -> torch.Tensor:
        """The blend of ``components`` fused with ``weights`` and of this blend's inductive component."""
        from recommender.fusion import fused_scores

        return self.blend(fused_scores(components, weights, users, histories),
                          components[self.component].score(users, histories), cold)

    def state(self) -> dict:
        return {"warm": self.warm.state(), "cold": self.cold.state(), "component": self.component,
                "fallback_scale": self.fallback_scale}

    @classmethod
    def from_state(cls, state: dict) -> "ColdStartBlend":
        return cls(Calibration.from_state(state["warm"]), Calibration.from_state(state["cold"]), state["component"],
                   state.get("fallback_scale"))


def fit_cold_blend(fused: ScoreFn, inductive: ScoreFn, histories: Histories, targets: np.ndarray,
                   n_items: int, exclude: torch.Tensor | None = None, fraction: float = 0.1, seed: int = 0,
                   batch: int = 512, component: str = "entitycf", fusion_weight: float = 1.0) -> ColdStartBlend:
    """Learn both calibrations on one stage (validation): ``fused``/``inductive`` score users.

    A random ``fraction`` of the items plays "cold": their calibration uses only the inductive
    scores, the rest's only the fused scores. ``exclude`` (bool, n_items) marks items that are
    neither (e.g. truly cold items, which can never be validation targets).
    """
    usable = torch.ones(n_items, dtype=torch.bool) if exclude is None else ~exclude
    pool = np.flatnonzero(usable.numpy())
    rng = np.random.default_rng([seed, 7919])  # its own stream: never the same draw as a cold split's
    pseudo = torch.zeros(n_items, dtype=torch.bool)
    pseudo[torch.as_tensor(rng.choice(pool, size=max(1, int(round(fraction * len(pool)))), replace=False))] = True
    users = np.flatnonzero(np.asarray(targets) >= 0)
    warm_s, warm_h, cold_s, cold_h = [], [], [], []
    with torch.no_grad():
        for s in range(0, len(users), batch):
            u = torch.as_tensor(users[s:s + batch])
            hist = [histories[i] for i in u.tolist()]
            f, z = fused(u, hist), normalise_rows(inductive(u, hist))
            cand = usable.unsqueeze(0).expand_as(f).clone()
            for r, h in enumerate(hist):
                if len(h):
                    cand[r, torch.as_tensor(list(h), dtype=torch.long)] = False
            hit = torch.zeros_like(cand)
            hit[torch.arange(len(u)), torch.as_tensor(np.asarray(targets)[users[s:s + batch]])] = True
            wm, cm = cand & ~pseudo, cand & pseudo
            warm_s.append(f[wm]), warm_h.append(hit[wm]), cold_s.append(z[cm]), cold_h.append(hit[cm])
    warm_h, cold_h = torch.cat(warm_h), torch.cat(cold_h)
    blend = ColdStartBlend(Calibration.fit(torch.cat(warm_s), warm_h), Calibration.fit(torch.cat(cold_s), cold_h),
                           component)
    if int(warm_h.sum()) < MIN_HITS or int(cold_h.sum()) < MIN_HITS:
        blend.fallback_scale = float(fusion_weight)
    return blend
