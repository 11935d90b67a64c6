"""Pure assembly: raw query results -> report model, no network.

Matrix: windows (switch inside / before the range / none), phase segments on the grid with
gaps, switch direction and stale overlaps, rollback counting (pre-initialised, appearing,
reset), PromQL-compatible quantiles, cohort "no data" vs 0, verdict words and merging,
changes ranking, and an empty result set.
"""

from __future__ import annotations

import math

import pytest

from exporter.report import assemble, cohorts, timeline, verdicts
from exporter.report.data import RawData, Sample, Series, Window
from exporter.report.model import (
    AFTER_VS_BASELINE,
    BETTER,
    CANARY_VS_CONTROL,
    INCONCLUSIVE,
    NOT_WORSE,
    WORSE,
    Event,
)

T = 1_000_000.0
STEP = 30.0


def series(points: list[tuple[float, float]], **labels: str) -> Series:
    return Series(labels, tuple(points))


def grid(start: float, end: float, value: float = 1.0) -> list[tuple[float, float]]:
    n = int((end - start) // STEP)
    return [(start + i * STEP, value) for i in range(n + 1)]


# --- timeline ---------------------------------------------------------------------------------

def test_windows_split_at_first_switch_to_ebpf_inside_the_range() -> None:
    events = [Event(T + 600, "switch-back", "x"), Event(T + 900, "switch", "b"),
              Event(T + 300 - 1, "switch", "early")]
    assert timeline.plan_windows(T + 300, T + 3600, events) == (
        Window("before", T + 300, T + 900), Window("after", T + 900, T + 3600))
    assert timeline.plan_windows(T + 1000, T + 3600, events) == (Window("range", T + 1000, T + 3600),)
    assert timeline.plan_windows(T, T + 3600, []) == (Window("range", T, T + 3600),)


def test_switch_direction_comes_from_the_datapath_after_it() -> None:
    datapath = [
        series(grid(T, T + 570), node="b", datapath="kube-proxy", source="feature-gauge"),
        series(grid(T + 600, T + 1170), node="b", datapath="ebpf", source="feature-gauge"),
        series(grid(T + 1200, T + 1800), node="b", datapath="kube-proxy", source="feature-gauge"),
        series(grid(T, T + 1800), node="c", datapath="unknown", source="none"),
    ]
    switches = [series([(t, T + 600) for t, _ in grid(T + 600, T + 1170)]
                       + [(t, T + 1200) for t, _ in grid(T + 1200, T + 1800)], node="b"),
                series([(T + 900, T + 890), (T + 930, T - 50)], node="c")]
    events = timeline.switch_events(switches, datapath, T, T + 1800)
    assert [(e.at, e.kind, e.text) for e in events] == [
        (T + 600, "switch", "b switched to eBPF"),
        (T + 890, "switch-other", "c changed datapath (now unknown)"),
        (T + 1200, "switch-back", "b switched back to kube-proxy"),
    ]


def test_a_sample_just_after_the_switch_with_the_old_datapath_does_not_flip_its_direction() -> None:
    # The query step right after the switch still evaluates the last scrape before it.
    datapath = [series(grid(T, T + 630), node="b", datapath="kube-proxy", source="feature-gauge"),
                series(grid(T + 660, T + 900), node="b", datapath="ebpf", source="feature-gauge")]
    switches = [series([(t, T + 620) for t, _ in grid(T + 630, T + 900)], node="b")]
    events = timeline.switch_events(switches, datapath, T, T + 900)
    assert [(e.at, e.kind) for e in events] == [(T + 620, "switch")]


def test_a_series_visible_after_it_ended_does_not_hide_the_new_datapath() -> None:
    # Without staleness markers the old series stays visible for the lookback period.
    old = series(grid(T, T + 900), node="b", datapath="kube-proxy", source="s")
    new = series(grid(T + 600, T + 1200), node="b", datapath="ebpf", source="s")
    history = timeline.node_history([new, old])["b"]
    assert {dp for t, dp, _ in history if t >= T + 600} == {"ebpf"}
    lane, = timeline.node_lanes({"b": history}, T, T + 1200, STEP)
    assert [(s.phase, s.start, s.end) for s in lane.segments] == [
        ("kube-proxy", T, T + 600), ("ebpf", T + 600, T + 1200)]


def test_phase_segments_follow_the_grid_and_show_gaps() -> None:
    phases = [series([(T, 1), (T + 30, 1), (T + 60, 0), (T + 150, 0)], phase="before"),
              series([(T, 0), (T + 30, 0), (T + 60, 1), (T + 150, 1)], phase="canary")]
    segments = timeline.phase_segments(phases, T, T + 150, STEP)
    assert [(s.phase, s.start - T, s.end - T) for s in segments] == [
        ("before", 0, 60), ("canary", 60, 90), (None, 90, 150), ("canary", 150, 150)]
    assert timeline.phase_segments([], T, T + 150, STEP) == ()


def test_rollbacks_count_increases_not_values() -> None:
    rollbacks = [
        series([(T, 0), (T + 30, 0), (T + 60, 1), (T + 90, 1), (T + 120, 3)],
               result="succeeded", mode="enforce"),
        series([(T, 5), (T + 30, 5), (T + 60, 1)], result="failed", mode="enforce"),  # reset
        series([(T + 90, 1)], result="planned", mode="dry-run"),  # appeared inside the range
        series([(T, 2), (T + 30, 2)], result="refused", mode="dry-run"),  # before the range
    ]
    events, counts = timeline.rollback_events(rollbacks, T, STEP)
    assert [(e.at - T, e.text) for e in events] == [
        (60, "rollback succeeded (enforce)"), (60, "rollback failed (enforce)"),
        (90, "rollback planned (dry-run)"), (120, "rollback succeeded (enforce) x2")]
    assert [(c.label, c.datapath, c.value) for c in counts] == [
        ("succeeded", "enforce", 3), ("failed", "enforce", 1), ("planned", "dry-run", 1)]


# --- histograms and cohorts ------------------------------------------------------------------------

@pytest.mark.parametrize(("q", "expected"), [
    (0.25, 0.05),  # linear inside the first bucket, which starts at 0
    (0.5, 0.1),
    (0.75, 0.15),
    (0.99, 0.2),  # rank in the +Inf bucket -> the highest finite bound
])
def test_quantile_interpolates_like_promql(q: float, expected: float) -> None:
    bounds = (0.1, 0.2)
    cumulative = (50.0, 90.0, 100.0)
    value = cohorts.quantile(q, bounds, cumulative)
    if q == 0.99:
        assert value == 0.2
    elif q == 0.75:
        assert value == pytest.approx(0.1 + 0.1 * (75 - 50) / 40)
    else:
        assert value == pytest.approx(expected)


def test_quantile_without_samples_is_no_data() -> None:
    assert cohorts.quantile(0.5, (0.1,), (0.0, 0.0)) is None
    assert cohorts.quantile(0.5, (), (3.0,)) is None


def window_raw(samples: dict[str, list[Sample]], windows: tuple[Window, ...] | None = None,
               **extra: list[Sample] | list[Series]) -> RawData:
    windows = windows or (Window("range", T, T + 3600),)
    merged: dict[str, tuple[Sample, ...]] = {f"range:{k}": tuple(v) for k, v in samples.items()}
    ranged = {k: tuple(v) for k, v in extra.items() if v and isinstance(v[0], Series)}
    merged |= {k: tuple(v) for k, v in extra.items() if k not in ranged}
    return RawData(start=T, end=T + 3600, step=STEP, rate_window=120, windows=windows,
                   series=ranged, samples=merged)


def s(value: float, **labels: str) -> Sample:
    return Sample(labels, value)


def svc(datapath: str, **labels: str) -> dict[str, str]:
    return {"namespace": "shop", "service": "cart", **labels, "datapath": datapath}


def test_cohort_no_data_and_zero_are_different() -> None:
    raw = window_raw({
        "buckets": [s(8, **svc("ebpf", le="0.001")), s(10, **svc("ebpf", le="0.01")),
                    s(10, **svc("ebpf", le="+Inf"))],
        "attempts": [s(10, **svc("ebpf", result="established")),
                     s(12, **svc("kube-proxy", result="established")),
                     s(3, **svc("kube-proxy", result="refused"))],
        "flows": [s(100, **svc("ebpf"))],
        "drops": [s(2, **svc("kube-proxy", reason="SERVICE_BACKEND_NOT_FOUND")),
                  s(1, **svc("kube-proxy", reason="POLICY_DENIED"))],
    })
    found = cohorts.window_cohorts(raw, raw.windows[0], (0.001, 0.01))
    ebpf, kube = found[("shop", "cart", "ebpf")], found[("shop", "cart", "kube-proxy")]
    assert ebpf.handshakes == 10 and ebpf.shares == pytest.approx((0.8, 0.2, 0.0))
    assert ebpf.p50 == pytest.approx(0.001 * 5 / 8)
    assert ebpf.failures == 0 and ebpf.failure_ratio == 0  # attempts seen, none failed
    assert ebpf.drops == 0 and ebpf.drop_ratio == 0  # flows seen, no drop series
    assert kube.handshakes is None and kube.p99 is None and kube.shares is None
    assert kube.failure_ratio == pytest.approx(3 / 15)
    assert kube.drops == 3 and kube.sensitive_drops == 2
    assert kube.flows is None and kube.drop_ratio is None  # no flows: no ratio, not 0


# --- verdicts and the whole report -------------------------------------------------------------

@pytest.mark.parametrize(("value", "word"), [
    (1.0, WORSE), (0.0, NOT_WORSE), (-1.0, BETTER), (math.nan, INCONCLUSIVE)])
def test_verdict_words(value: float, word: str) -> None:
    assert verdicts.verdict_word(value) == word


def verdict(value: float, sli: str, comparison: str, **labels: str) -> Sample:
    return s(value, namespace="shop", service="cart", sli=sli, comparison=comparison, **labels)


def test_report_merges_verdicts_of_several_exporters_to_the_most_severe() -> None:
    raw = window_raw({}, verdicts=[
        verdict(0, "drops", CANARY_VS_CONTROL, instance="a"),
        verdict(math.nan, "drops", CANARY_VS_CONTROL, instance="b"),
        verdict(-1, "connect_duration", CANARY_VS_CONTROL, instance="a"),
        verdict(1, "connect_duration", CANARY_VS_CONTROL, instance="b"),
        verdict(-1, "connect_duration", AFTER_VS_BASELINE, instance="a"),
    ], effects=[verdict(0.4, "connect_duration", CANARY_VS_CONTROL, instance="b")])
    report = assemble.build_report(raw, prometheus="http://p", generated_at=T)
    service, = report.services
    assert [(c.sli, c.comparison, c.word, c.effect) for c in service.verdicts] == [
        ("connect_duration", CANARY_VS_CONTROL, WORSE, 0.4),
        ("connect_duration", AFTER_VS_BASELINE, BETTER, None),
        ("drops", CANARY_VS_CONTROL, INCONCLUSIVE, None),
    ]
    assert report.verdict_counts == {WORSE: 1, INCONCLUSIVE: 1, NOT_WORSE: 0, BETTER: 1}
    explanation = service.verdicts[0].explanation
    assert "no data in the range for eBPF and kube-proxy (same time)" in explanation
    assert "p99 eBPF no data vs kube-proxy no data" in explanation


def test_changes_rank_worse_verdicts_first_and_skip_small_ones() -> None:
    buckets = []
    for dp, fast in (("ebpf", 20), ("kube-proxy", 80)):
        buckets += [s(fast, **svc(dp, le="0.001")), s(100, **svc(dp, le="0.01")),
                    s(100, **svc(dp, le="+Inf"))]
    for dp, fast in (("ebpf", 0), ("kube-proxy", 100)):  # a larger change, not judged worse
        buckets += [s(fast, **svc(dp, le="0.001", service="other")),
                    s(100, **svc(dp, le="0.01", service="other")),
                    s(100, **svc(dp, le="+Inf", service="other"))]
    raw = window_raw({"buckets": buckets, "flows": [s(1000, **svc("ebpf")), s(1000, **svc("kube-proxy"))],
                      "drops": [s(10, **svc("ebpf", reason="POLICY_DENIED")),
                                s(10.2, **svc("kube-proxy", reason="POLICY_DENIED"))]},
                     verdicts=[verdict(1, "connect_duration", CANARY_VS_CONTROL)],
                     baseline_quantiles=[s(0.02, namespace="shop", service="cart", q="0.99")])
    report = assemble.build_report(raw, prometheus="http://p", generated_at=T)
    # p50 0.63 ms -> 4.4 ms; p99 9.55 ms -> 9.99 ms (+4.6 %) and the drop ratio (-2 %) are
    # below the 5 % a change needs to be listed.
    assert [(c.service, c.metric, c.comparison, c.verdict) for c in report.regressions] == [
        ("cart", "handshake p50", CANARY_VS_CONTROL, WORSE),
        ("other", "handshake p50", CANARY_VS_CONTROL, "no data"),  # +1000 %
        ("other", "handshake p99", CANARY_VS_CONTROL, "no data"),  # +900 %
    ]
    assert [(c.metric, c.comparison, c.verdict) for c in report.improvements] == [
        ("handshake p99", AFTER_VS_BASELINE, "no data")]


def test_empty_results_make_a_report_of_no_data() -> None:
    raw = window_raw({})
    report = assemble.build_report(raw, prometheus="http://p", generated_at=T)
    assert not report.has_data
    assert report.notes[0].startswith("Prometheus returned no kpr-exporter series")
    assert report.phase is None and report.phases == () and report.services == ()
    assert report.rollbacks is None and report.rollback_total is None
    assert report.service_drop_counts is None and report.node_drop_counts is None
    assert report.hubble_uptime is None and report.lost_events is None


def test_lines_fold_the_smallest_into_other() -> None:
    many = [series([(T, float(i)), (T + 30, float(i))], reason=f"R{i}", datapath="ebpf")
            for i in range(1, 11)]
    lines = assemble.lines(many, ("reason", "datapath"), limit=4)
    assert [line.label for line in lines] == ["R10 / ebpf", "R8 / ebpf", "R9 / ebpf",
                                              "7 other series"]
    assert lines[-1].points == ((T, 28.0), (T + 30, 28.0))
    nan_only = [series([(T, math.nan)], datapath="ebpf")]
    assert assemble.lines(nan_only, ("datapath",)) == ()
