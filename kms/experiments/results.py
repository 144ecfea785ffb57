"""An experiment's result per arm: lists served, CTR@k, add-to-cart rate, conversion and revenue
per list with 95% intervals, and the primary metric's always-valid mSPRT p-value (looked at after
every ``LOOK_EVERY`` lists in serving order), from the impressions and the attributions.

Statistics are ``recommender.online``'s. With several variants each is compared to control at
alpha / (number of variants) (Bonferroni), so the experiment-wide false-positive rate stays alpha.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from recommender.online import compare, ratio_estimate, sequential_test

from .models import Attribution, Experiment, Impression
from .services import CONTROL

METRICS = ("ctr", "cart", "conversion", "revenue")
LOOK_EVERY = 100


def _outcomes(e: Experiment):
    """Per list (serving order): impression id, user, arm, created_at; and per-list outcomes."""
    rows = list(Impression.objects.filter(experiment=e).order_by("id").values_list("id", "user", "arm", "created_at"))
    pos = {r[0]: n for n, r in enumerate(rows)}
    out = {m: np.zeros(len(rows)) for m in METRICS}
    for imp, etype, position, value in (Attribution.objects.filter(
            impression__experiment=e, state=Attribution.State.ATTRIBUTED)
            .values_list("impression_id", "type", "position", "value")):
        n = pos.get(imp)
        if n is None:
            continue
        if etype == "click" and position is not None and position <= e.k:
            out["ctr"][n] += 1
        elif etype == "cart":
            out["cart"][n] += 1
        elif etype == "purchase":
            out["conversion"][n] += 1
            out["revenue"][n] += value
    return rows, out


def _bucket(ts, hourly: bool) -> str:
    return ts.strftime("%Y-%m-%d %H:00" if hourly else "%Y-%m-%d")


def experiment_results(e: Experiment) -> dict:
    rows, outcome = _outcomes(e)
    arms = list(e.arms.order_by("id").values_list("name", "version_id"))
    users = {u: n for n, u in enumerate(dict.fromkeys(r[1] for r in rows))}
    user_ix = np.array([users[r[1]] for r in rows], dtype=int)
    arm_of = np.array([r[2] for r in rows], dtype=object)
    per_arm, estimates = {}, {}
    for name, version in arms:
        mask = arm_of == name
        lists = np.bincount(user_ix[mask], minlength=len(users))
        seen = lists > 0
        estimates[name] = {}
        entry = {"version": version, "users": int(seen.sum()), "impressions": int(mask.sum()), "metrics": {}}
        for m in METRICS:
            gain = np.bincount(user_ix[mask], weights=outcome[m][mask], minlength=len(users))
            est = ratio_estimate(gain[seen], lists[seen])
            estimates[name][m] = est
            entry["metrics"][m] = {"value": est.value, "ci95": list(est.ci95), "total": est.numerator}
        per_arm[name] = entry
    variants = [n for n, _ in arms if n != CONTROL]
    alpha = e.alpha / max(len(variants), 1)
    comparisons = {}
    for name in variants:
        c = {}
        for m in METRICS:
            cmp_ = compare(estimates[CONTROL][m], estimates[name][m], e.tau)
            c[m] = {"difference": cmp_.difference, "ci95": list(cmp_.ci95), "lift": cmp_.lift,
                    "z_p_value": cmp_.z_p_value}
        mask = (arm_of == CONTROL) | (arm_of == name)
        seq = sequential_test((arm_of[mask] == name).astype(int), user_ix[mask], outcome[e.metric][mask], e.tau,
                              alpha, LOOK_EVERY)
        primary = c[e.metric]
        primary["always_valid_p"] = seq.p_values[-1] if seq.p_values else 1.0
        significant = seq.decided_at is not None
        comparisons[name] = {
            "metrics": c, "primary": e.metric, "alpha": alpha, "significant": significant,
            "decided_at_impressions": seq.decided_at,
            "better": (name if primary["difference"] > 0 else CONTROL) if significant else None}
    winners = [v["better"] for v in comparisons.values() if v["significant"]]
    winner = None
    if winners:  # the best significant variant, else control if every significant one lost
        better = [n for n in winners if n != CONTROL]
        winner = (max(better, key=lambda n: comparisons[n]["metrics"][e.metric]["difference"]) if better
                  else CONTROL)
    # over time: per bucket and arm, lists and the primary metric's rate in that bucket
    hourly = bool(rows) and (rows[-1][3] - rows[0][3]).total_seconds() < 3 * 86400
    series: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
    for n, (_, _, arm, ts) in enumerate(rows):
        cell = series[arm][_bucket(ts, hourly)]
        cell[0] += 1
        cell[1] += outcome[e.metric][n]
    over_time = {arm: [{"bucket": b, "impressions": v[0], e.metric: v[1] / v[0] if v[0] else 0.0}
                       for b, v in sorted(cells.items())] for arm, cells in series.items()}
    return {"experiment": e.pk, "name": e.name, "state": e.state, "primary_metric": e.metric, "k": e.k,
            "planned_users_per_arm": e.users_per_arm, "arms": per_arm, "comparisons": comparisons,
            "winner": winner, "over_time": over_time, "bucket": "hour" if hourly else "day",
            "test": "mSPRT (always-valid p-value, normal mixture, tau fixed at the start) on the per-user "
                    "ratio metric with delta-method variance; intervals are fixed-horizon 95%"}
