"""The periodic judge over a snapshot history.

Matrix: sustained regression -> worse; a one-minute blip -> worse in the short window only,
not worse overall; stale snapshot / dead source / one snapshot -> inconclusive; after phase
without kube-proxy nodes -> canary-vs-control inconclusive, after-vs-baseline judged;
missing baseline / other buckets -> inconclusive; __other__ never judged; history stays
bounded and windows keep their length; a counter reset counts from zero.
"""

from __future__ import annotations

import pytest

from exporter.baseline.model import Baseline
from exporter.judge.driver import Judge
from exporter.judge.history import Cohort, SnapshotHistory
from exporter.judge.settings import JudgeSettings
from exporter.judge.verdict import (
    AFTER_VS_BASELINE,
    CANARY_VS_CONTROL,
    CONNECT_DURATION,
    DROPS,
    INCONCLUSIVE,
    NOT_WORSE,
    SLIS,
    WORSE,
)
from tests.judge.samples import BOUNDS, Feed, add, counts_at, lognormal, sli, snap

KP = ("shop", "cart", "kube-proxy")
EB = ("shop", "cart", "ebpf")
BASE = lognormal(11, 100)  # one step's handshakes of one node, the same every step
STEP = 30.0


def normal_step(ebpf_scale: float = 1.0) -> dict:
    ebpf = BASE if ebpf_scale == 1.0 else lognormal(12, 100, scale=ebpf_scale)
    return {KP: sli(add(BASE, BASE), flows=400), EB: sli(ebpf, flows=200)}


def feed_steps(judge: Judge, feed: Feed, steps: int, increments: dict) -> None:
    for _ in range(steps):
        judge.observe(feed.step(STEP, increments))


def pick(verdicts, sli=CONNECT_DURATION, comparison=CANARY_VS_CONTROL):
    return next(v for v in verdicts if v.sli == sli and v.comparison == comparison)


def test_a_sustained_regression_is_worse():
    judge, feed = Judge(JudgeSettings()), Feed()
    feed_steps(judge, feed, 70, normal_step(ebpf_scale=2.0))
    verdicts = judge.evaluate(feed.time, baseline=None, phase="canary")
    v = pick(verdicts)
    assert v.outcome == WORSE
    assert [w.outcome for w in v.windows] == [WORSE, WORSE]
    assert v.windows[0].end - v.windows[0].start == pytest.approx(300.0)
    assert v.windows[1].end - v.windows[1].start >= 1800.0
    assert len(verdicts) == len(SLIS) * 2  # one service, every SLI, both comparisons


def test_a_blip_in_the_short_window_only_is_not_worse():
    judge, feed = Judge(JudgeSettings()), Feed()
    feed_steps(judge, feed, 60, normal_step())
    blip = normal_step()
    blip[EB] = sli(add(BASE, counts_at(15, 1.2)), flows=215)  # 15 handshakes needed a SYN retry
    judge.observe(feed.step(STEP, blip))
    feed_steps(judge, feed, 2, normal_step())
    v = pick(judge.evaluate(feed.time, baseline=None, phase="canary"))
    assert [w.outcome for w in v.windows] == [WORSE, NOT_WORSE]
    assert v.outcome == NOT_WORSE
    assert "short window only" in v.reason


def test_stale_snapshot_dead_source_and_short_history_are_inconclusive():
    judge, feed = Judge(JudgeSettings()), Feed()
    judge.observe(feed.step(STEP, normal_step(2.0)))
    assert {v.outcome for v in judge.evaluate(feed.time, baseline=None, phase="canary")} == {
        INCONCLUSIVE}
    assert "not enough history" in judge.problem
    feed_steps(judge, feed, 70, normal_step(2.0))
    stale = judge.evaluate(feed.time + 200, baseline=None, phase="canary")
    assert {v.outcome for v in stale} == {INCONCLUSIVE}
    assert "stale source" in pick(stale).reason
    dead = judge.evaluate(feed.time, baseline=None, phase="canary", sources_ok=False,
                          sources_reason="hubble stream down")
    assert {v.outcome for v in dead} == {INCONCLUSIVE}
    assert "hubble stream down" in pick(dead).reason
    assert pick(judge.evaluate(feed.time, baseline=None, phase="canary")).outcome == WORSE


def _baseline(bounds=BOUNDS, connect=None) -> Baseline:
    counts = connect if connect is not None else tuple(c * 120 for c in add(BASE, BASE))
    cohort = Cohort(counts, attempts=sum(counts), established=sum(counts), flows=48_000)
    return Baseline(1.0, 0.0, 3600.0, tuple(bounds), {("shop", "cart"): cohort})


def test_after_phase_has_no_control_group_but_a_baseline():
    judge, feed = Judge(JudgeSettings()), Feed()
    feed_steps(judge, feed, 70, {EB: sli(BASE, flows=200)})
    verdicts = judge.evaluate(feed.time, baseline=_baseline(), phase="after")
    control = pick(verdicts)
    assert control.outcome == INCONCLUSIVE and "no control group" in control.reason
    after = pick(verdicts, comparison=AFTER_VS_BASELINE)
    assert after.outcome == NOT_WORSE
    assert after.windows[0].inputs["control"]["connections"] == sum(BASE) * 240
    assert pick(verdicts, DROPS, AFTER_VS_BASELINE).outcome == NOT_WORSE


def test_after_vs_baseline_detects_a_regression():
    judge, feed = Judge(JudgeSettings()), Feed()
    feed_steps(judge, feed, 70, {EB: sli(lognormal(12, 100, scale=2.0), flows=200)})
    v = pick(judge.evaluate(feed.time, baseline=_baseline(), phase="after"),
             comparison=AFTER_VS_BASELINE)
    assert v.outcome == WORSE


@pytest.mark.parametrize("baseline,reason", [
    (None, "no frozen pre-switch baseline"),
    (_baseline(bounds=BOUNDS[:-1], connect=(1,) * len(BOUNDS)), "buckets differ"),
    (Baseline(1.0, 0.0, 3600.0, BOUNDS, {}), "has no baseline"),
])
def test_after_vs_baseline_without_a_usable_baseline_is_inconclusive(baseline, reason):
    judge, feed = Judge(JudgeSettings()), Feed()
    feed_steps(judge, feed, 20, normal_step())
    v = pick(judge.evaluate(feed.time, baseline=baseline, phase="canary"),
             comparison=AFTER_VS_BASELINE)
    assert v.outcome == INCONCLUSIVE
    assert reason in v.reason


def test_overflow_service_is_never_judged():
    judge, feed = Judge(JudgeSettings()), Feed()
    other = {("shop", "__other__", "ebpf"): sli(BASE), ("shop", "__other__", "kube-proxy"): sli(BASE)}
    feed_steps(judge, feed, 5, {**normal_step(), **other})
    assert {v.service for v in judge.evaluate(feed.time, baseline=None, phase="canary")} == {"cart"}


def test_history_stays_bounded_and_windows_keep_their_length():
    settings = JudgeSettings()
    judge, feed = Judge(settings), Feed()
    feed_steps(judge, feed, 400, normal_step())  # 200 minutes at 30 s
    assert len(judge.history) <= 45
    long = judge.history.window(settings.long_window_seconds)
    short = judge.history.window(settings.short_window_seconds)
    assert long is not None and short is not None and not long.partial
    assert 1800.0 <= long.seconds <= 1800.0 + judge.history.resolution
    assert short.seconds == pytest.approx(300.0)


def test_a_counter_reset_counts_from_zero():
    history = SnapshotHistory(3600.0)
    history.add(snap(100.0, {KP: sli(counts_at(500, 0.001), flows=900)}))
    history.add(snap(130.0, {KP: sli(counts_at(20, 0.001), flows=30)}))  # pipeline restarted
    cohort = history.window(30.0).cohort(KP)
    assert (cohort.connections, cohort.flows) == (20, 30)


def test_a_snapshot_not_newer_than_the_newest_is_ignored():
    history = SnapshotHistory(3600.0)
    assert history.add(snap(100.0, {KP: sli(flows=1)}))
    assert not history.add(snap(100.0, {KP: sli(flows=2)}))
    assert len(history) == 1
