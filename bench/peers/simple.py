"""Non-RecBole peers: item popularity and implicit's ALS, scored with the project's evaluator."""
from __future__ import annotations

import itertools
import time

import numpy as np
import torch

from recommender.data import history_matrix
from recommender.metrics import evaluate


def popularity(split, log=print) -> dict:
    out = {}
    t0 = time.perf_counter()
    for stage in ("valid", "test"):
        hist = split.history(stage)
        counts = np.bincount([i for h in hist for i in h], minlength=split.n_items).astype(np.float32)
        scores = torch.as_tensor(counts)
        out[stage] = evaluate(lambda u: scores.expand(len(u), -1), hist, split.targets(stage))
    secs = time.perf_counter() - t0
    log(f"[Pop] valid ndcg@20 {out['valid']['ndcg@20']:.5f} test ndcg@20 {out['test']['ndcg@20']:.5f}")
    return {
        **out["test"],
        "valid_ndcg@20": out["valid"]["ndcg@20"],
        "train_seconds": 0.0,
        "seconds_to_best_valid": 0.0,
        "valid_curve": [[0.0, out["valid"]["ndcg@20"]]],
        "eval_seconds": secs,
        "hyper_parameters": {"score": "interaction count in the stage's history"},
    }


def _als(factors: int, reg: float, alpha: float, iterations: int, threads: int, seed: int):
    from implicit.cpu.als import AlternatingLeastSquares

    return AlternatingLeastSquares(
        factors=factors,
        regularization=reg,
        alpha=alpha,
        iterations=iterations,
        num_threads=threads,
        random_state=seed,
        calculate_training_loss=False,
    )


def _als_scores(model):
    uf = torch.as_tensor(np.asarray(model.user_factors))
    itf = torch.as_tensor(np.asarray(model.item_factors))
    return lambda u: uf[u] @ itf.T


def als(split, threads: int = 2, iterations: int = 15, seed: int = 2020, log=print,
        grid: dict | None = None) -> dict:
    """Grid over factors × regularization × alpha on validation (fit on train), then refit on
    train + validation with the chosen setting for the test. The best setting is refit once more
    on train with a per-iteration callback to log its validation curve (timings exclude scoring)."""
    grid = grid or {"factors": [64, 128], "regularization": [0.1, 1.0], "alpha": [1.0, 10.0]}
    train_m = split.matrix("valid")
    test_m = split.matrix("test")
    hist_v, hist_t = split.history("valid"), split.history("test")
    results = []
    grid_t0 = time.perf_counter()
    for f, r, a in itertools.product(grid["factors"], grid["regularization"], grid["alpha"]):
        m = _als(f, r, a, iterations, threads, seed)
        t = time.perf_counter()
        m.fit(train_m, show_progress=False)
        fit_s = time.perf_counter() - t
        res = evaluate(_als_scores(m), hist_v, split.valid_target)
        results.append(((f, r, a), res["ndcg@20"], fit_s))
        log(f"[ALS] factors={f} reg={r} alpha={a}: valid ndcg@20 {res['ndcg@20']:.5f} ({fit_s:.1f}s)")
    grid_seconds = time.perf_counter() - grid_t0
    (f, r, a), best_valid, _ = max(results, key=lambda x: x[1])

    # Validation curve of the chosen setting, per ALS iteration (scoring time excluded).
    curve = []
    m = _als(f, r, a, iterations, threads, seed)
    spent = {"eval": 0.0}
    t_start = time.perf_counter()

    def cb(iteration, elapsed, loss):
        t = time.perf_counter()
        res = evaluate(_als_scores(m), hist_v, split.valid_target)
        spent["eval"] += time.perf_counter() - t
        curve.append([round(time.perf_counter() - t_start - spent["eval"], 3), round(res["ndcg@20"], 6)])

    m.fit(train_m, show_progress=False, callback=cb)
    train_seconds = time.perf_counter() - t_start - spent["eval"]
    best_pt = max(curve, key=lambda c: c[1])

    # Test: refit on train + validation.
    m = _als(f, r, a, iterations, threads, seed)
    t = time.perf_counter()
    m.fit(test_m, show_progress=False)
    refit_seconds = time.perf_counter() - t
    test = evaluate(_als_scores(m), hist_t, split.test_target)
    log(f"[ALS] best factors={f} reg={r} alpha={a}: valid {best_valid:.5f} test ndcg@20 {test['ndcg@20']:.5f}")
    return {
        **test,
        "valid_ndcg@20": best_valid,
        "train_seconds": train_seconds,
        "seconds_to_best_valid": best_pt[0],
        "valid_curve": curve,
        "refit_train_valid_seconds": refit_seconds,
        "grid_seconds": grid_seconds,
        "grid": [{"factors": g[0], "regularization": g[1], "alpha": g[2], "valid_ndcg@20": v, "fit_seconds": s}
                 for g, v, s in results],
        "hyper_parameters": {"factors": f, "regularization": r, "alpha": a, "iterations": iterations,
                             "fit_for_test": "train + validation"},
    }
