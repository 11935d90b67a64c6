"""One window, one SLI, known answers.

Latency: identical -> not worse (effect 0); shifted x2 -> worse; heavy tail with the same
median -> worse (tail test); improvement -> not worse and better; 0.3 ms -> 0.4 ms with lots
of data -> not worse (absolute floor); too few handshakes / no control -> inconclusive.
Ratios: all-zero drops -> not worse; a few drops vs none -> not worse (not significant);
many drops vs none -> worse; a significant rise with fewer than min_events events ->
inconclusive; fewer drops -> better; KPR-sensitive drops and connect failures likewise.
"""

from __future__ import annotations

import json
import math

import pytest

from exporter.judge.compare import Span, judge
from exporter.judge.history import Cohort
from exporter.judge.settings import JudgeSettings
from exporter.judge.verdict import (
    CONNECT_DURATION,
    CONNECT_FAILURES,
    DROPS,
    INCONCLUSIVE,
    KPR_SENSITIVE_DROPS,
    MANN_WHITNEY,
    NOT_WORSE,
    SIGNAL_WORSE,
    TAIL,
    WORSE,
)
from tests.judge.samples import BOUNDS, WIDTH, add, counts_at, lognormal

SETTINGS = JudgeSettings()
SPAN = Span("short", 0.0, 300.0)


def latency(counts, **kw) -> Cohort:
    n = sum(counts)
    return Cohort(counts, attempts=n, established=n, flows=n, **kw)


def rates(*, flows=10_000, drops=0, kpr=0, attempts=0, failures=0) -> Cohort:
    return Cohort((0,) * WIDTH, attempts=attempts, established=attempts - failures,
                  flows=flows, drops=drops, kpr_drops=kpr)


def run(sli, t, c, settings=SETTINGS):
    verdict = judge(sli, t, c, BOUNDS, SPAN, settings)
    json.dumps(verdict.to_dict(), allow_nan=False)  # always explainable as strict JSON
    return verdict


# --- latency ----------------------------------------------------------------------------


def test_identical_distributions_are_not_worse():
    counts = lognormal(1, 3000)
    v = run(CONNECT_DURATION, latency(counts), latency(counts))
    assert (v.outcome, v.better) == (NOT_WORSE, False)
    assert v.effect_size == pytest.approx(0.0)
    assert {t.name for t in v.tests} == {MANN_WHITNEY, TAIL}


def test_a_doubled_handshake_time_is_worse():
    v = run(CONNECT_DURATION, latency(lognormal(1, 3000, scale=2.0)), latency(lognormal(2, 6000)))
    assert v.outcome == WORSE
    assert v.effect_size > 0.5
    test = next(t for t in v.tests if t.signal == SIGNAL_WORSE)
    assert test.p_worse < SETTINGS.alpha / 2
    assert "p=" in v.reason


def test_a_heavy_tail_with_the_same_median_is_worse():
    body = lognormal(3, 3000)
    retransmitted = counts_at(150, 1.2)  # 5 % needed one SYN retransmission (~1 s)
    control = lognormal(4, 6000)
    v = run(CONNECT_DURATION, latency(add(body, retransmitted)), latency(control))
    assert v.outcome == WORSE
    assert any(t.signal == SIGNAL_WORSE for t in v.tests if t.name == TAIL)
    location = next(t for t in v.tests if t.name == MANN_WHITNEY)
    assert location.signal != SIGNAL_WORSE  # the location test alone would have missed it


def test_an_improvement_is_not_worse_and_better():
    v = run(CONNECT_DURATION, latency(lognormal(5, 3000, scale=0.6)), latency(lognormal(6, 6000)))
    assert (v.outcome, v.better) == (NOT_WORSE, True)
    assert v.effect_size < -0.2


def test_absolute_floor_keeps_a_harmless_shift_not_worse():
    # Handshakes around 0.3 ms -> around 0.4 ms: +33 %, hugely significant, and harmless.
    t = latency(lognormal(9, 20_000, median=0.0004, sigma=0.3))
    c = latency(lognormal(10, 20_000, median=0.0003, sigma=0.3))
    v = run(CONNECT_DURATION, t, c)
    assert v.outcome == NOT_WORSE
    assert all(test.p_worse < 1e-6 for test in v.tests)  # significant, yet below the floor
    # With no floor the same data is worse: the floor is what decides.
    v0 = run(CONNECT_DURATION, t, c, JudgeSettings(absolute_floor_seconds=0.0))
    assert v0.outcome == WORSE


@pytest.mark.parametrize("t_n,c_n,reason", [
    (50, 5000, "too little eBPF traffic"),
    (5000, 50, "too little kube-proxy traffic"),
    (0, 5000, "no eBPF traffic"),
    (5000, 0, "no control group"),
])
def test_low_counts_and_missing_sides_are_inconclusive(t_n, c_n, reason):
    t = latency(lognormal(7, t_n, scale=3.0)) if t_n else None
    c = latency(lognormal(8, c_n)) if c_n else None
    v = run(CONNECT_DURATION, t, c)
    assert v.outcome == INCONCLUSIVE
    assert reason in v.reason
    assert math.isnan(v.effect_size)


# --- ratios -----------------------------------------------------------------------------


def test_all_zero_drops_are_not_worse():
    v = run(DROPS, rates(flows=5000), rates(flows=9000))
    assert (v.outcome, v.better) == (NOT_WORSE, False)
    assert v.effect_size == 0.0


def test_a_few_drops_against_none_are_not_significant():
    v = run(DROPS, rates(flows=5000, drops=2), rates(flows=10_000))
    assert v.outcome == NOT_WORSE
    assert v.tests[0].p_worse > SETTINGS.alpha


def test_many_drops_against_none_are_worse():
    v = run(DROPS, rates(flows=5000, drops=40), rates(flows=10_000))
    assert v.outcome == WORSE
    assert v.effect_size == math.inf
    assert json.loads(json.dumps(v.to_dict()))["effect_size"] == "+Inf"


def test_a_significant_rise_on_too_few_events_is_inconclusive():
    # 2 drops in 300 flows against none in a million: p is tiny, but two events are two events.
    v = run(DROPS, rates(flows=300, drops=2), rates(flows=1_000_000))
    assert v.tests[0].p_worse < SETTINGS.alpha
    assert v.outcome == INCONCLUSIVE
    assert f"fewer than {SETTINGS.min_events}" in v.reason


def test_fewer_drops_are_better():
    v = run(DROPS, rates(flows=10_000, drops=5), rates(flows=10_000, drops=120))
    assert (v.outcome, v.better) == (NOT_WORSE, True)


def test_a_rise_below_the_floor_is_not_worse():
    # 0.10 % -> 0.15 %: significant with this much traffic, but below the 0.2 pp floor.
    v = run(DROPS, rates(flows=2_000_000, drops=3000), rates(flows=2_000_000, drops=2000))
    assert v.tests[0].p_worse < 1e-6
    assert v.outcome == NOT_WORSE


def test_kpr_sensitive_drops_rising_from_zero_are_worse():
    t = rates(flows=6000, drops=60, kpr=50)
    c = rates(flows=12_000, drops=10, kpr=0)
    assert run(KPR_SENSITIVE_DROPS, t, c).outcome == WORSE


def test_connect_failures_use_attempts_as_exposure():
    worse = run(CONNECT_FAILURES, rates(attempts=4000, failures=80), rates(attempts=8000, failures=8))
    assert worse.outcome == WORSE
    assert worse.inputs["treatment"]["exposure"] == 4000
    few = run(CONNECT_FAILURES, rates(attempts=40, failures=10), rates(attempts=8000, failures=8))
    assert few.outcome == INCONCLUSIVE
