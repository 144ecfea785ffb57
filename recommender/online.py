"""Online-experiment statistics: plain functions over per-user sums, no Django.

The unit of randomisation is the user (``kms.experiments`` assigns users, not requests), so every
rate is a *ratio metric*: sum over users of what they did (clicks at positions <= k, carts,
purchases, revenue) over the sum of the lists they were shown. A user's lists are correlated, so
the variance of a ratio comes from the delta method over users (Deng, Knoblich, Lu 2018,
"Applying the delta method in metric analytics"), not from a binomial over lists.

The decision test is the mixture sequential probability ratio test (mSPRT, Johari, Pekelis, Walsh
2017, "Always valid inference"; the test Optimizely's stats engine uses): with a normal mixing
distribution N(0, tau^2) over the effect, 1 / Lambda_n is an always-valid p-value, so a result
page that is looked at after every request still rejects a true null at most alpha of the time.
That is why it is the test here: a shop *will* look at the page every day. 95% intervals are the
fixed-horizon (delta-method, normal) intervals, and the planned sample size (``users_per_arm``)
is the usual two-proportion power calculation, stored when an experiment starts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z_975 = 1.959963984540054  # the 97.5% normal quantile: two-sided 95% intervals


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_quantile(p: float) -> float:
    """Inverse of ``normal_cdf`` (Acklam's rational approximation refined by one Newton step;
    absolute error < 1e-12 over (0, 1))."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    a = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
         -3.066479806614716e+01, 2.506628277459239e+00)
    b = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
         -1.328068155288572e+01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
         4.374664141464968e+00, 2.938163982698783e+00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
    lo = 0.02425
    if p < lo:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    elif p <= 1 - lo:
        q = p - 0.5
        r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    else:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    e = normal_cdf(x) - p  # one Newton step
    return x - e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)


@dataclass(frozen=True)
class RatioEstimate:
    """sum(numerator) / sum(denominator) over users, with its delta-method variance."""

    value: float
    variance: float
    users: int
    numerator: float
    denominator: float

    @property
    def ci95(self) -> tuple[float, float]:
        half = Z_975 * math.sqrt(max(self.variance, 0.0))
        return self.value - half, self.value + half


def ratio_estimate(numerators, denominators) -> RatioEstimate:
    """Per-user sums -> the pooled ratio and Var(ratio) by the delta method:
    Var(Y/X) ~ (s_y^2 - 2 R s_xy + R^2 s_x^2) / (n * mean(x)^2), sample (co)variances over users."""
    y = np.asarray(numerators, dtype=float)
    x = np.asarray(denominators, dtype=float)
    n = len(x)
    sx, sy = float(x.sum()), float(y.sum())
    if n == 0 or sx <= 0:
        return RatioEstimate(0.0, math.inf, n, sy, sx)
    r = sy / sx
    if n < 2:
        return RatioEstimate(r, math.inf, n, sy, sx)
    mx = sx / n
    vy, vx = float(y.var(ddof=1)), float(x.var(ddof=1))
    cxy = float(((x - mx) * (y - sy / n)).sum() / (n - 1))
    var = max(vy - 2 * r * cxy + r * r * vx, 0.0) / (n * mx * mx)
    return RatioEstimate(r, var, n, sy, sx)


@dataclass(frozen=True)
class Comparison:
    """variant - control for one metric: absolute and relative difference, 95% interval of the
    absolute one, the fixed-horizon two-sided z-test p-value and the always-valid mSPRT p-value
    at this look (``always_valid_p`` of a sequence of looks is the running minimum)."""

    control: float
    variant: float
    difference: float
    ci95: tuple[float, float]
    lift: float | None  # (variant - control) / control
    z_p_value: float
    msprt_p_value: float


def compare(control: RatioEstimate, variant: RatioEstimate, tau: float) -> Comparison:
    diff = variant.value - control.value
    var = control.variance + variant.variance
    if not math.isfinite(var):
        return Comparison(control.value, variant.value, diff, (-math.inf, math.inf),
                          diff / control.value if control.value else None, 1.0, 1.0)
    se = math.sqrt(var)
    z_p = 2 * (1 - normal_cdf(abs(diff) / se)) if se > 0 else (0.0 if diff else 1.0)
    return Comparison(control.value, variant.value, diff, (diff - Z_975 * se, diff + Z_975 * se),
                      diff / control.value if control.value else None, z_p, msprt_p_value(diff, var, tau))


def msprt_p_value(difference: float, variance: float, tau: float) -> float:
    """1 / Lambda of the normal-mixture SPRT for H0: effect = 0, given the estimated difference,
    its variance ``variance`` (= sigma_c^2/n_c + sigma_v^2/n_v) and the mixing sd ``tau``:

        Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 * d^2 / (2 V (V + tau^2)))

    (Johari et al. 2017, eq. 11, written for a difference of means with V its variance). Capped at 1.
    """
    if variance <= 0 or not math.isfinite(variance):
        return 1.0 if variance > 0 or difference == 0 else 0.0
    t2 = tau * tau
    log_lambda = 0.5 * math.log(variance / (variance + t2)) + t2 * difference * difference / (
        2 * variance * (variance + t2))
    return float(min(1.0, math.exp(-log_lambda)))


def always_valid_p(p_values) -> list[float]:
    """Running minimum of per-look mSPRT p-values: the always-valid p-value after each look."""
    out, best = [], 1.0
    for p in p_values:
        best = min(best, float(p))
        out.append(best)
    return out


def users_per_arm(baseline: float, relative_mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Fixed-horizon sample size of a two-sided two-proportion z-test (users per arm, one list each):
    n = (z_{1-alpha/2} + z_{power})^2 (p0 (1-p0) + p1 (1-p1)) / (p1 - p0)^2, p1 = p0 (1 + mde)."""
    if not 0 < baseline < 1 or relative_mde == 0 or not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("baseline and alpha, power in (0, 1); relative_mde non-zero")
    p1 = min(max(baseline * (1 + relative_mde), 1e-9), 1 - 1e-9)
    z = normal_quantile(1 - alpha / 2) + normal_quantile(power)
    return int(math.ceil(z * z * (baseline * (1 - baseline) + p1 * (1 - p1)) / (p1 - baseline) ** 2))


def mixing_sd(baseline: float, relative_mde: float) -> float:
    """The mSPRT's tau: the absolute effect the experiment was planned to detect (the choice only
    moves power between small and large effects; the false-positive rate holds for any tau)."""
    return abs(baseline * relative_mde)


# --- the sequential test over a stream of lists --------------------------------------------------
@dataclass(frozen=True)
class SequentialResult:
    looks: list[int]  # lists served so far at each look
    p_values: list[float]  # always-valid p-value after each look
    decided_at: int | None  # lists served when the always-valid p first fell below alpha
    final: Comparison | None


def sequential_test(arm: np.ndarray, user: np.ndarray, outcome: np.ndarray, tau: float, alpha: float = 0.05,
                    look_every: int = 100) -> SequentialResult:
    """The mSPRT on the ratio metric, looked at after every ``look_every`` lists (in serving order).

    ``arm[i]`` is 0 (control) or 1 (variant) for the i-th list, ``user[i]`` its user (dense ints),
    ``outcome[i]`` what the list earned (e.g. clicks at positions <= k). At each look the per-user
    sums of the lists so far feed ``ratio_estimate`` per arm, then ``msprt_p_value``.
    """
    arm = np.asarray(arm, dtype=int)
    user = np.asarray(user, dtype=int)
    outcome = np.asarray(outcome, dtype=float)
    n_users = int(user.max()) + 1 if len(user) else 0
    looks, ps, decided, last = [], [], None, None
    best = 1.0
    marks = list(range(look_every, len(arm), look_every)) + [len(arm)] if len(arm) else []
    for t in marks:
        a, u, y = arm[:t], user[:t], outcome[:t]
        est = []
        for side in (0, 1):
            mask = a == side
            lists = np.bincount(u[mask], minlength=n_users)
            gain = np.bincount(u[mask], weights=y[mask], minlength=n_users)
            seen = lists > 0
            est.append(ratio_estimate(gain[seen], lists[seen]))
        last = compare(est[0], est[1], tau)
        best = min(best, last.msprt_p_value)
        looks.append(t)
        ps.append(best)
        if decided is None and best < alpha:
            decided = t
    return SequentialResult(looks, ps, decided, last)
