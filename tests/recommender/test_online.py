"""recommender.online against known values (scipy, hand computation) and its false-positive rate
under continuous monitoring (the property the test is chosen for)."""
import math

import numpy as np
import pytest
from scipy import stats

from recommender.online import (compare, msprt_p_value, normal_quantile, ratio_estimate, sequential_test,
                                users_per_arm)


@pytest.mark.parametrize("p", [1e-6, 0.001, 0.02, 0.025, 0.3, 0.5, 0.8, 0.975, 0.99, 0.999999])
def test_normal_quantile_matches_scipy(p):
    assert normal_quantile(p) == pytest.approx(stats.norm.ppf(p), abs=1e-9)


def test_ratio_with_one_list_per_user_is_the_mean_and_its_standard_error():
    rng = np.random.default_rng(0)
    y = rng.binomial(1, 0.2, 500).astype(float)
    est = ratio_estimate(y, np.ones_like(y))
    assert est.value == pytest.approx(y.mean())
    assert est.variance == pytest.approx(y.var(ddof=1) / len(y))


def test_ratio_delta_method_by_hand():
    # users: (clicks, lists) = (1, 2), (0, 1), (3, 3); R = 4/6
    y, x = np.array([1.0, 0, 3]), np.array([2.0, 1, 3])
    r, n, mx = 4 / 6, 3, 2.0
    vy, vx = np.var(y, ddof=1), np.var(x, ddof=1)
    cxy = np.cov(x, y, ddof=1)[0, 1]
    est = ratio_estimate(y, x)
    assert est.value == pytest.approx(r)
    assert est.variance == pytest.approx((vy - 2 * r * cxy + r * r * vx) / (n * mx * mx))


def test_ratio_variance_is_honest_for_correlated_lists():
    """Users with several correlated lists: the delta-method sd matches the spread of the ratio
    over repeated experiments (a binomial over lists would be far too small)."""
    rng = np.random.default_rng(1)
    ratios, variances = [], []
    for _ in range(400):
        lists = rng.integers(1, 8, 300)
        p = rng.beta(1, 6, 300)  # per-user click propensity: a user's lists are correlated
        clicks = rng.binomial(lists, p)
        est = ratio_estimate(clicks, lists)
        ratios.append(est.value)
        variances.append(est.variance)
    assert math.sqrt(np.mean(variances)) == pytest.approx(np.std(ratios), rel=0.1)


def test_fixed_horizon_comparison_matches_scipy_welch_for_large_samples():
    rng = np.random.default_rng(2)
    a, b = rng.binomial(1, 0.10, 4000).astype(float), rng.binomial(1, 0.12, 4000).astype(float)
    c = compare(ratio_estimate(a, np.ones_like(a)), ratio_estimate(b, np.ones_like(b)), tau=0.01)
    t = stats.ttest_ind(b, a, equal_var=False)
    assert c.difference == pytest.approx(b.mean() - a.mean())
    assert c.z_p_value == pytest.approx(t.pvalue, rel=0.01)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert c.ci95[0] == pytest.approx(c.difference - 1.959964 * se, abs=1e-6)


def test_users_per_arm_by_hand():
    # p0 = 0.10, p1 = 0.12, alpha 0.05 two-sided, power 0.8
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    expected = math.ceil(z * z * (0.1 * 0.9 + 0.12 * 0.88) / 0.02 ** 2)
    assert users_per_arm(0.10, 0.2, 0.05, 0.8) == expected == 3839


def test_msprt_by_hand():
    d, v, tau = 0.02, 0.0001, 0.01
    lam = math.sqrt(v / (v + tau ** 2)) * math.exp(tau ** 2 * d ** 2 / (2 * v * (v + tau ** 2)))
    assert msprt_p_value(d, v, tau) == pytest.approx(1 / lam)
    assert msprt_p_value(0.0, v, tau) == 1.0  # no evidence: capped at 1


def _stream(rng, n, p_control, p_variant):
    arm = rng.integers(0, 2, n)
    clicks = rng.binomial(1, np.where(arm == 1, p_variant, p_control)).astype(float)
    return arm, np.arange(n), clicks


def test_always_valid_p_keeps_its_false_positive_rate_when_peeked_at_every_100_lists():
    """A/A: 200 streams of 3,000 lists looked at 30 times each. The mSPRT's rate stays under
    alpha; the fixed-horizon z-test read at the same looks ("stop at the first p < 0.05") does not."""
    rng = np.random.default_rng(3)
    msprt_hits = naive_hits = 0
    for _ in range(200):
        arm, user, y = _stream(rng, 3000, 0.1, 0.1)
        res = sequential_test(arm, user, y, tau=0.02, alpha=0.05, look_every=100)
        msprt_hits += res.decided_at is not None
        naive = False
        for t in range(100, 3001, 100):
            a, yy = arm[:t], y[:t]
            c = compare(ratio_estimate(yy[a == 0], np.ones((a == 0).sum())),
                        ratio_estimate(yy[a == 1], np.ones((a == 1).sum())), tau=0.02)
            naive |= c.z_p_value < 0.05
        naive_hits += naive
    assert msprt_hits / 200 <= 0.05 + 0.03  # nominal plus sampling error of 200 runs
    assert naive_hits / 200 > 0.12  # peeking breaks the fixed-horizon test


def test_sequential_test_detects_a_real_lift_and_says_when():
    rng = np.random.default_rng(4)
    arm, user, y = _stream(rng, 6000, 0.10, 0.15)
    res = sequential_test(arm, user, y, tau=0.02, alpha=0.05, look_every=100)
    assert res.decided_at is not None and res.decided_at < 6000
    assert res.final.difference > 0 and res.p_values[-1] < 0.05
    assert all(a >= b for a, b in zip(res.p_values, res.p_values[1:]))  # always-valid p never goes up
