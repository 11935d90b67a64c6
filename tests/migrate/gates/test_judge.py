"""The ``judge`` gate over a real Prometheus holding a recorded fleet, good and bad.

node-c (the batch) switches to eBPF at ``SWITCH``; the gate judges, at the end of the
recording, windows that start after the switch. With the bad datapath shop/cart is worse
(fail); with the good one every judged service is not worse and the sparse one is listed as
unjudged (pass); past the data the source is stale (inconclusive). The decision on verdicts
that are suspect or too few is checked on the judge's own records.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from exporter.judge.evidence import InProcessEvidence
from exporter.judge.settings import JudgeSettings
from exporter.judge.source_settings import PrometheusSourceSettings
from exporter.judge.verdict import INCONCLUSIVE as V_INCONCLUSIVE
from exporter.judge.verdict import NOT_WORSE, WORSE, Verdict, WindowVerdict
from exporter.judge_prom import PrometheusEvidence
from exporter.migrate.gates.base import FAIL, INCONCLUSIVE, PASS, BatchContext
from exporter.migrate.gates.judge import JudgeGate, judge, windows_for
from tests.judge.samples import BOUNDS
from tests.judge_prom.fleet import merged, openmetrics
from tests.judge_prom.test_realstack import SETTINGS, backfilled
from tests.migrate.gates import recorded

CTX = BatchContext(batch=("node-c",), migrated=("node-b", "node-c"), control=("node-a",),
                   batch_started=recorded.SWITCH, soak_seconds=900.0)


def gate(url: str, now: float) -> JudgeGate:
    def source(settings: JudgeSettings) -> PrometheusEvidence:
        settings = replace(settings, source="prometheus",
                           prometheus=PrometheusSourceSettings(url=url))
        return PrometheusEvidence(settings, registry=None, default_bounds=BOUNDS)

    return JudgeGate(SETTINGS, source, clock=lambda: now)


@pytest.mark.realstack
@pytest.mark.parametrize("bad", [True, False], ids=["bad-datapath", "good-datapath"])
async def test_the_gate_judges_the_batch_over_prometheus(tmp_path: Path, bad: bool) -> None:
    text = openmetrics(list(recorded.history(bad)))
    async with backfilled(tmp_path / "prometheus", text) as prometheus:
        result = await gate(prometheus.url, recorded.END).evaluate(CTX)
        assert result.gate == "judge"
        assert result.evidence[0] == ("windows 300s / 900s ending 1020s after the batch "
                                      "started")
        if bad:
            assert result.result == FAIL, result
            assert result.reason == "1 service(s) judged worse"
            assert result.evidence[1:] and all(e.startswith("shop/cart ")
                                               for e in result.evidence[1:])
            assert any(" connect_duration canary-vs-control: worse (" in e
                       for e in result.evidence)
        else:
            assert result.result == PASS, result
            assert result.reason == "2 service(s) judged not worse, none worse"
            assert result.evidence[1:] == ("web/sparse: too little traffic to judge",)

        stale = await gate(prometheus.url, recorded.END + 240.0).evaluate(CTX)
        assert stale.result == INCONCLUSIVE
        assert stale.reason.startswith("no evidence: stale source: ")


async def test_an_unreachable_prometheus_is_inconclusive() -> None:
    result = await gate("http://127.0.0.1:9", recorded.END).evaluate(CTX)
    assert result.result == INCONCLUSIVE
    assert result.reason.startswith("no evidence: Prometheus unreachable")


async def test_no_time_since_the_batch_is_inconclusive() -> None:
    result = await gate("http://127.0.0.1:9", recorded.SWITCH).evaluate(CTX)
    assert (result.result, result.reason) == (INCONCLUSIVE,
                                              "no time has passed since the batch started")


def test_windows_start_after_the_batch() -> None:
    fitted = windows_for(SETTINGS, 120.0)
    assert (fitted.short_window_seconds, fitted.long_window_seconds) == (120.0, 120.0)
    assert fitted.problems() == []
    long = windows_for(SETTINGS, 5000.0)
    assert (long.short_window_seconds, long.long_window_seconds) == (300.0, 900.0)


def _window(name: str, outcome: str) -> WindowVerdict:
    return WindowVerdict(name, 0.0, 300.0, False, outcome, False, f"{name} {outcome}")


def _verdict(service: str, outcome: str, short: str, long: str) -> Verdict:
    return Verdict("shop", service, "drops", "canary-vs-control", outcome, False, outcome,
                   float("nan"), 300.0, (_window("short", short), _window("long", long)))


def test_a_suspect_verdict_holds_and_too_few_judged_services_are_inconclusive() -> None:
    suspect = _verdict("cart", V_INCONCLUSIVE, WORSE, V_INCONCLUSIVE)
    fine = _verdict("ledger", NOT_WORSE, NOT_WORSE, NOT_WORSE)
    quiet = _verdict("sparse", V_INCONCLUSIVE, V_INCONCLUSIVE, V_INCONCLUSIVE)
    held = judge([suspect, fine], None, "w")
    assert held.result == INCONCLUSIVE
    assert held.reason == "1 service(s) worse in one window while the other is inconclusive"
    assert held.evidence == ("w", "shop/cart drops canary-vs-control: inconclusive "
                                  "(inconclusive)")
    too_few = judge([quiet], None, "w")
    assert too_few.result == INCONCLUSIVE
    assert too_few.reason == "too little evidence: 0 service(s) with a conclusive verdict, 1 needed"
    assert judge([], None, "w").result == INCONCLUSIVE  # nothing judged is never a pass
    assert judge([fine, quiet], None, "w", min_judged=2).result == INCONCLUSIVE
    assert judge([fine, quiet], None, "w").result == PASS


@pytest.mark.parametrize(("bad", "expected"), [(True, FAIL), (False, PASS)])
async def test_the_same_data_judged_in_process_gives_the_same_answer(
        bad: bool, expected: str) -> None:
    recorded_history = list(recorded.history(bad))

    def source(settings: JudgeSettings) -> InProcessEvidence:
        evidence = InProcessEvidence(settings)
        for _, snapshots in recorded_history:
            evidence.observe(merged(snapshots))
        return evidence

    result = await JudgeGate(SETTINGS, source, clock=lambda: recorded.END).evaluate(CTX)
    assert result.result == expected, result
    assert result.evidence[0] == "windows 300s / 900s ending 1020s after the batch started"
