"""The conditional rate test against scipy.stats.binomtest, and its zero-heavy edges."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest

from exporter.judge.counts import clopper_pearson, rate_test


@pytest.mark.parametrize("e_t,x_t,e_c,x_c", [
    (7, 1000, 3, 2000), (0, 500, 4, 500), (12, 100, 0, 10_000), (1, 10, 1, 10), (40, 900, 35, 1100),
])
def test_p_values_and_interval_match_binomtest(e_t, x_t, e_c, x_c):
    ours = rate_test(e_t, x_t, e_c, x_c, 0.98)
    share = x_t / (x_t + x_c)
    n = e_t + e_c
    assert ours.p_greater == pytest.approx(binomtest(e_t, n, share, alternative="greater").pvalue)
    assert ours.p_less == pytest.approx(binomtest(e_t, n, share, alternative="less").pvalue)
    low, high = binomtest(e_t, n, share).proportion_ci(0.98, method="exact")
    assert clopper_pearson(e_t, n, 0.98) == pytest.approx((low, high))


def test_no_events_on_either_side_is_no_evidence():
    t = rate_test(0, 1000, 0, 1000, 0.99)
    assert (t.p_greater, t.p_less) == (1.0, 1.0)
    assert math.isnan(t.rate_ratio)


def test_events_against_none_give_an_infinite_ratio_and_an_honest_p():
    t = rate_test(3, 1000, 0, 2000, 0.99)
    assert t.rate_ratio == math.inf
    assert t.p_greater == pytest.approx((1 / 3) ** 3)  # every one of 3 events on the 1/3 side
    assert t.low > 0


def test_rejects_empty_exposure():
    with pytest.raises(ValueError):
        rate_test(1, 0, 0, 10, 0.99)
