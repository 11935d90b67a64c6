"""Bucket statistics against hand computations and scipy on the expanded samples.

Matrix: histogram_quantile (interpolation, first bucket from 0, +Inf bucket, empty, q out of
range) x Mann-Whitney U (both directions, ties) x Hodges-Lehmann (estimate, interval) x
tail split (pooled edge, nothing to split).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from exporter.judge.histogram import (
    hodges_lehmann,
    histogram_quantile,
    mann_whitney,
    midpoints,
    tail_quantile,
    tail_split,
)
from tests.judge.samples import BOUNDS, lognormal

SMALL = (0.001, 0.002, 0.004)


def test_quantile_interpolates_within_the_bucket_like_promql():
    # 10 in (0, 1ms], 30 in (1, 2ms], 50 in (2, 4ms], 10 in +Inf; total 100.
    counts = (10, 30, 50, 10)
    # p50: rank 50; cumulative 10, 40, 90 -> third bucket, 10 of its 50 -> 2ms + 2ms * 10/50
    assert histogram_quantile(0.5, SMALL, counts) == pytest.approx(0.0024)
    # p90: rank 90 is the last sample of the third bucket -> its upper bound
    assert histogram_quantile(0.9, SMALL, counts) == pytest.approx(0.004)
    # p5: rank 5, first bucket starts at 0 -> 0 + 1ms * 5/10
    assert histogram_quantile(0.05, SMALL, counts) == pytest.approx(0.0005)
    # p99: rank 99 lands in +Inf -> the highest finite bound
    assert histogram_quantile(0.99, SMALL, counts) == pytest.approx(0.004)


def test_quantile_edges():
    assert math.isnan(histogram_quantile(0.5, SMALL, (0, 0, 0, 0)))
    assert histogram_quantile(-0.1, SMALL, (1, 0, 0, 0)) == -math.inf
    assert histogram_quantile(1.1, SMALL, (1, 0, 0, 0)) == math.inf
    # empty buckets before the rank are skipped: 4 samples in (2, 4ms] -> p50 = 2ms + 2ms * 2/4
    assert histogram_quantile(0.5, SMALL, (0, 0, 4, 0)) == pytest.approx(0.003)
    with pytest.raises(ValueError):
        histogram_quantile(0.5, SMALL, (1, 2))


def test_tail_quantile_interpolates_a_power_law_inside_the_bucket():
    counts = (0, 50, 45, 5)  # above 2 ms: 50 %, above 4 ms: 5 %
    # p90: survival 10 % between 50 % at 2 ms and 5 % at 4 ms on log-log axes:
    # x = 2 ms * (0.5 / 0.1) ** (ln 2 / ln 10)
    expected = 0.002 * (0.5 / 0.1) ** (math.log(2) / math.log(10))
    assert tail_quantile(0.9, SMALL, counts) == pytest.approx(expected)
    assert histogram_quantile(0.9, SMALL, counts) == pytest.approx(0.002 + 0.002 * 40 / 45)
    # below p75, in the first bucket, and with nothing above the bucket: PromQL's answer
    assert tail_quantile(0.5, SMALL, counts) == histogram_quantile(0.5, SMALL, counts)
    assert tail_quantile(0.9, SMALL, (95, 5, 0, 0)) == histogram_quantile(0.9, SMALL, (95, 5, 0, 0))
    assert tail_quantile(0.99, SMALL, (0, 50, 50, 0)) == histogram_quantile(0.99, SMALL, (0, 50, 50, 0))


def _expand(counts):
    return np.repeat(np.arange(len(counts)), counts)


@pytest.mark.parametrize("scale", [0.8, 1.0, 1.07, 1.3])
def test_mann_whitney_matches_scipy_on_expanded_samples(scale):
    a = lognormal(1, 400, scale=scale)
    b = lognormal(2, 900)
    ours = mann_whitney(a, b)
    for alternative, p in (("greater", ours.p_greater), ("less", ours.p_less)):
        ref = mannwhitneyu(_expand(a), _expand(b), alternative=alternative,
                           method="asymptotic", use_continuity=True)
        assert ours.u == pytest.approx(ref.statistic)
        assert p == pytest.approx(ref.pvalue, rel=1e-9)


def test_mann_whitney_all_tied_and_empty():
    tied = mann_whitney((0, 5, 0, 0), (0, 7, 0, 0))
    assert (tied.p_greater, tied.p_less) == (1.0, 1.0)
    assert tied.cles == pytest.approx(0.5)
    empty = mann_whitney((0, 0, 0, 0), (0, 7, 0, 0))
    assert (empty.p_greater, empty.p_less) == (1.0, 1.0)


def test_hodges_lehmann_is_the_median_of_pairwise_midpoint_differences():
    a = lognormal(3, 60, scale=2.0)
    b = lognormal(4, 80)
    mids = np.array(midpoints(BOUNDS))
    diffs = (mids[_expand(a)][:, None] - mids[_expand(b)][None, :]).ravel()
    shift = hodges_lehmann(a, b, midpoints(BOUNDS), 0.95)
    assert shift.estimate == pytest.approx(float(np.median(diffs)))
    assert shift.low <= shift.estimate <= shift.high
    assert shift.low > 0  # a doubling of every handshake is a clear positive shift


def test_hodges_lehmann_interval_shrinks_with_more_data():
    few = hodges_lehmann(lognormal(5, 50, scale=1.5), lognormal(6, 50), midpoints(BOUNDS), 0.98)
    many = hodges_lehmann(lognormal(5, 5000, scale=1.5), lognormal(6, 5000), midpoints(BOUNDS),
                          0.98)
    assert many.high - many.low <= few.high - few.low


def test_midpoints():
    assert midpoints(SMALL) == pytest.approx((0.0005, 0.0015, 0.003, 0.005))


def test_tail_split_uses_the_pooled_p99_bucket_edge():
    a = (50, 40, 8, 2)  # 100 samples
    b = (60, 38, 2, 0)  # 100 samples; pooled 200 -> rank 198 falls in the third bucket
    split = tail_split(SMALL, a, b, 0.99)
    assert split is not None
    assert (split.index, split.threshold, split.treatment, split.control) == (2, 0.002, 10, 2)
    assert tail_split(SMALL, (10, 0, 0, 0), (10, 0, 0, 0), 0.99) is None
    assert tail_split(SMALL, (0, 0, 0, 0), (0, 0, 0, 0), 0.99) is None
