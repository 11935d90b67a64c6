"""The judge on the claims' new SLIs: CPU, programming latency and throughput.

Each kind of evidence, judged with the judge's own statistics and settings, comes out better,
not worse ("same"), worse or inconclusive; missing data is inconclusive, never a pass.
"""

from __future__ import annotations

import math

import pytest

from exporter.judge.settings import JudgeSettings
from exporter.report.claims_judge import (
    FAILURE_TEST, HISTOGRAM_TEST, MEAN_TEST, combined, common_buckets, cumulative_to_counts,
    failures, histograms, means,
)
from exporter.report.model import BETTER, INCONCLUSIVE, NOT_WORSE, WORSE

SETTINGS = JudgeSettings()
#: kube-proxy's and Cilium's own bucket layouts (a subset of kube-proxy's: its real bounds
#: 0 .. 59 in steps of 1 share 0.25, 0.5, 1, 5 and 10 with Cilium's).
KUBE_PROXY_LE = (0.25, 0.5, 1, 2, 3, 4, 5, 10, 30, 60)
CILIUM_LE = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def lognormal(n: int, median: float, p99: float, bounds: tuple[float, ...]) -> dict[float, float]:
    """Cumulative bucket increases of ``n`` log-normal samples (``le -> count``, +Inf last)."""
    sigma = math.log(p99 / median) / 2.3263478740408408
    cdf = {le: 0.5 * (1 + math.erf(math.log(le / median) / (sigma * math.sqrt(2))))
           for le in bounds}
    return {**{le: float(math.floor(n * p)) for le, p in cdf.items()}, math.inf: float(n)}


# --- programming latency (histograms, different layouts) --------------------------------------

@pytest.mark.parametrize(("ebpf", "outcome"), [
    (lognormal(400, 0.005, 0.025, CILIUM_LE), BETTER),  # Services programmed in milliseconds
    (lognormal(400, 1.2, 4.0, CILIUM_LE), NOT_WORSE),  # the same distribution, other buckets
    (lognormal(400, 4.0, 12.0, CILIUM_LE), WORSE),  # slower than kube-proxy
])
def test_programming_latency_is_judged_over_the_bounds_both_layouts_share(ebpf, outcome) -> None:
    reference = lognormal(400, 1.2, 4.0, KUBE_PROXY_LE)
    judged = histograms(ebpf, reference, SETTINGS, unit="changes")
    assert judged.outcome == outcome, judged.why
    assert judged.test == HISTOGRAM_TEST
    assert dict(judged.details)["shared bucket bounds"] == "0.25, 0.5, 1, 5, 10"
    assert judged.why.startswith(outcome if outcome != NOT_WORSE else ("not significant",
                                                                      "below"))
    # The shown quantiles come from each side's own layout, not from the coarser shared one.
    assert judged.reference.startswith("p50 1.")


def test_programming_latency_without_data_is_inconclusive() -> None:
    reference = lognormal(400, 1.2, 4.0, KUBE_PROXY_LE)
    for ebpf, ref in ((None, reference), ({}, reference), (reference, None)):
        judged = histograms(ebpf, ref, SETTINGS, unit="changes")
        assert judged.outcome == INCONCLUSIVE and judged.why.startswith("no data")
        assert judged.change is None
    few = histograms(lognormal(20, 0.005, 0.02, CILIUM_LE), reference, SETTINGS, unit="changes")
    assert few.outcome == INCONCLUSIVE and "20 changes < 100" in few.why
    apart = histograms({0.1: 5.0, math.inf: 5.0}, {0.2: 5.0, math.inf: 5.0}, SETTINGS,
                       unit="changes")
    assert apart.outcome == INCONCLUSIVE and "share no bucket bound" in apart.why


def test_rebinning_keeps_exact_counts_at_shared_bounds() -> None:
    bounds, (a, b) = common_buckets([{0.5: 3, 1: 7, 2.5: 9, math.inf: 10},
                                     {0.25: 1, 0.5: 2, 1: 6, 2: 8, math.inf: 8}])
    assert bounds == (0.5, 1)
    assert a == (3, 4, 3) and b == (2, 4, 2)
    assert cumulative_to_counts([2.0, 1.5, 4.0]) == (2, 0, 2)  # never negative


# --- CPU (counters only: means against the threshold) ------------------------------------------

@pytest.mark.parametrize(("ebpf", "outcome", "change"), [
    (0.035, BETTER, -0.30),
    (0.049, NOT_WORSE, -0.02),
    (0.09, WORSE, 0.80),
])
def test_cpu_per_node_is_compared_with_the_relative_threshold(ebpf, outcome, change) -> None:
    judged = means((ebpf, 3600.0), (0.05, 7200.0), SETTINGS, lower_is_better=True,
                   unit="cores per node", exposure="node time")
    assert judged.outcome == outcome, judged.why
    assert judged.change == pytest.approx(change)
    assert judged.test == MEAN_TEST and "no significance test" in judged.test
    assert judged.ebpf == f"{ebpf:.3g} cores per node"


def test_cpu_without_data_or_with_too_little_is_inconclusive() -> None:
    missing = means(None, (0.05, 7200.0), SETTINGS, lower_is_better=True, unit="cores",
                    exposure="node time")
    assert missing.outcome == INCONCLUSIVE and missing.why == "no data: no eBPF series"
    short = SETTINGS.short_window_seconds
    brief = means((0.01, short / 2), (0.05, 7200.0), SETTINGS, lower_is_better=True,
                  unit="cores", exposure="node time")
    assert brief.outcome == INCONCLUSIVE and brief.why.startswith("too little data")
    zero = means((0.01, 7200.0), (0.0, 7200.0), SETTINGS, lower_is_better=True, unit="cores",
                 exposure="node time")
    assert zero.outcome == INCONCLUSIVE


# --- throughput --------------------------------------------------------------------------------

@pytest.mark.parametrize(("failed", "outcome"), [(0, BETTER), (95, NOT_WORSE), (400, WORSE)])
def test_load_connections_use_the_judge_connect_failure_test(failed, outcome) -> None:
    # 20,000 connections at the load's fixed rate on each side; kube-proxy failed 100 of them.
    judged = failures((20000.0, 20000.0 - failed), (20000.0, 19900.0), SETTINGS)
    assert judged.outcome == outcome, judged.why
    assert judged.test == FAILURE_TEST
    assert judged.reference == "0.500 % of 20,000 failed"


def test_load_connections_without_enough_data_are_inconclusive() -> None:
    assert failures(None, (100.0, 100.0), SETTINGS).outcome == INCONCLUSIVE
    few = failures((50.0, 40.0), (50.0, 50.0), SETTINGS)  # below the judge's 100 attempts
    assert few.outcome == INCONCLUSIVE and "too little eBPF traffic" in few.why
    # A significant rise on fewer failures than the judge's minimum is not a verdict either.
    rare = failures((200.0, 196.0), (20000.0, 20000.0), SETTINGS)
    assert rare.outcome == INCONCLUSIVE and "fewer than 5" in rare.why


@pytest.mark.parametrize(("ebpf", "outcome"), [(1.35e6, BETTER), (1.02e6, NOT_WORSE),
                                               (0.7e6, WORSE)])
def test_bytes_per_second_higher_is_better(ebpf, outcome) -> None:
    judged = means((ebpf, 3600.0), (1e6, 3600.0), SETTINGS, lower_is_better=False,
                   unit="bytes/s", exposure="time under load")
    assert judged.outcome == outcome


# --- combining -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("outcomes", "expected"), [
    ((BETTER, BETTER), BETTER),
    ((BETTER, INCONCLUSIVE), BETTER),  # an inconclusive side adds nothing
    ((BETTER, NOT_WORSE), NOT_WORSE),
    ((BETTER, WORSE, INCONCLUSIVE), WORSE),
    ((INCONCLUSIVE, INCONCLUSIVE), INCONCLUSIVE),
    ((), INCONCLUSIVE),  # nothing measured is never a pass
])
def test_combined_outcome(outcomes, expected) -> None:
    assert combined(outcomes) == expected
