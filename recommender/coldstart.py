"""Cold-start experiment: 10% of the items never appear in any training interaction.

Those items are removed from every train history (and from validation targets and test
inputs); models are trained on the rest, then the test targets are split into cold and warm
items. Cold items can only be reached through their knowledge-graph entities (``kgcn``:
propagation from entities with a zero id embedding; ``kgsasrec``: mean entity embedding), with
no retraining after they appear.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from recommender.calibration import fit_cold_blend
from recommender.data import InteractionData, Split, leave_last_out
from recommender.fusion import fused_scores, search_weights
from recommender.metrics import evaluate
from recommender.scoring import FitContext, Knowledge, pick_device, seed_everything
from recommender.training import TrainConfig, _normalised_matrix, build_component

COLD_COMPONENTS = ("popularity", "itemcf_recent", "entitycf", "kgcn", "kgsasrec")


def cold_split(data: InteractionData, fraction: float = 0.1, seed: int = 0) -> tuple[Split, np.ndarray]:
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(data.n_items, size=int(round(fraction * data.n_items)), replace=False))
    is_cold = np.zeros(data.n_items, dtype=bool)
    is_cold[cold] = True
    split = leave_last_out(data)
    train = [[i for i in h if not is_cold[i]] for h in split.train]
    valid = np.where((split.valid_target >= 0) & is_cold[np.maximum(split.valid_target, 0)], -1, split.valid_target)
    return replace(split, train=train, valid_target=valid), cold


def cold_start_experiment(data: InteractionData, cfg: TrainConfig, fraction: float = 0.1,
                          components: tuple[str, ...] = COLD_COMPONENTS, log=print) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    split, cold = cold_split(data, fraction, cfg.seed)
    is_cold = np.zeros(data.n_items, dtype=bool)
    is_cold[cold] = True
    knowledge = Knowledge(len(data.entity_ids), len(data.relations), np.asarray(data.item_entity, dtype=np.int64))
    ctx = FitContext(data.n_users, data.n_items, knowledge, pick_device(cfg.device), cfg.seed, log)
    models = {n: build_component(n, cfg, data.n_users, data.n_items, knowledge) for n in components}
    timings = {}
    for n, m in models.items():
        t = time.perf_counter()
        m.fit(split, ctx)
        timings[n] = round(time.perf_counter() - t, 1)

    valid_hist, valid_t = split.history("valid"), split.valid_target
    valid_users = np.flatnonzero(valid_t >= 0)
    fusable = [n for n in components if n != "popularity"]
    normalised = {}
    for n in fusable:
        models[n].prepare(valid_hist)
        normalised[n] = _normalised_matrix(models[n], valid_users, valid_hist)
    weights, _ = search_weights(normalised, valid_users, valid_hist, valid_t, log=log)
    del normalised
    cold_mask = torch.as_tensor(is_cold)
    blend = None
    if "entitycf" in models:  # what serving does (TrainConfig.cold_blend), learned on validation only
        t = time.perf_counter()
        blend = fit_cold_blend(lambda u, h: fused_scores(models, weights, u, h), models["entitycf"].score,
                               valid_hist, valid_t, data.n_items, exclude=cold_mask, seed=cfg.seed)
        timings["cold_blend_fit"] = round(time.perf_counter() - t, 1)

    test_hist = [[i for i in h if not is_cold[i]] for h in split.history("test")]  # cold items stay unseen
    test_t = split.test_target
    for m in models.values():
        m.prepare(test_hist)
    groups = {
        "cold": np.flatnonzero((test_t >= 0) & is_cold[np.maximum(test_t, 0)]),
        "warm": np.flatnonzero((test_t >= 0) & ~is_cold[np.maximum(test_t, 0)]),
    }
    scorers = {n: (lambda m: lambda u: m.score(u, [test_hist[i] for i in u.tolist()]))(m) for n, m in models.items()}
    scorers["fusion"] = lambda u: fused_scores(models, weights, u, [test_hist[i] for i in u.tolist()])
    scorers["fusion_cold_aware"] = lambda u: fused_scores(models, weights, u, [test_hist[i] for i in u.tolist()],
                                                          cold=cold_mask)
    if blend is not None:
        scorers["fusion_calibrated"] = lambda u: blend.scores(models, weights, u, [test_hist[i] for i in u.tolist()],
                                                              cold_mask)
    results = {}
    for n, fn in scorers.items():
        results[n] = {g: evaluate(fn, test_hist, test_t, ks=(20,), users=users) for g, users in groups.items()}
        r = results[n]
        ratio = r["cold"]["recall@20"] / max(r["warm"]["recall@20"], 1e-12)
        r["cold_over_warm"] = ratio
        log(f"[cold-start] {n:14s} cold recall@20 {r['cold']['recall@20']:.4f}  warm {r['warm']['recall@20']:.4f}"
            f"  ratio {ratio:.2f}")
    return {"cold_items": int(len(cold)), "cold_targets": int(len(groups["cold"])),
            "warm_targets": int(len(groups["warm"])), "fusion_weights": weights.weights,
            "train_seconds": timings, "models": results}
