"""The seam between the statistics and where the counts come from (``Evidence``).

Matrix: a window rebuilt from its cohorts is the same window; a wrong bucket count is
refused; the in-process source's async and sync answers agree and carry its sources'
problem; a per-service partial reason makes only that service inconclusive; a problem makes
every verdict inconclusive; the API body does not depend on the configured source.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from exporter.judge.verdict_json import verdicts_body
from exporter.judge.driver import Judge
from exporter.judge.evidence import Evidence, InProcessEvidence
from exporter.judge.history import Cohort, Window
from exporter.judge.settings import JudgeSettings
from exporter.judge.source_settings import PrometheusSourceSettings
from exporter.judge.verdict import INCONCLUSIVE, SLIS
from exporter.snapshot import SliKey
from tests.judge.samples import BOUNDS, Feed, add, lognormal, sli

CART_KP, CART_EB = ("shop", "cart", "kube-proxy"), ("shop", "cart", "ebpf")
LEDGER_KP, LEDGER_EB = ("pay", "ledger", "kube-proxy"), ("pay", "ledger", "ebpf")
BASE = lognormal(11, 100)


def _fed(settings: JudgeSettings = JudgeSettings()) -> tuple[InProcessEvidence, float]:
    source, feed = InProcessEvidence(settings), Feed()
    step = {CART_KP: sli(add(BASE, BASE), flows=400), CART_EB: sli(BASE, flows=200),
            LEDGER_KP: sli(BASE, flows=200), LEDGER_EB: sli(BASE, flows=200)}
    for _ in range(70):
        source.observe(feed.step(30.0, step))
    return source, feed.time


def test_a_window_rebuilt_from_its_cohorts_is_the_same():
    source, now = _fed()
    window = source.evidence_at(now).long
    cohorts = {key: window.cohort(key) for key in window.keys()}
    assert len(cohorts) == 4
    again = Window.of_cohorts(window.start, window.end, window.bounds, cohorts, window.partial)
    assert again.index == window.index and np.array_equal(again.data, window.data)
    with pytest.raises(ValueError, match="expected 16"):
        Window.of_cohorts(0.0, 1.0, BOUNDS, {SliKey(*CART_KP): Cohort((1, 2))})


async def test_the_in_process_source_reports_its_sources_problem():
    settings = JudgeSettings()
    source, now = _fed(settings)
    source._problem_of = lambda: "Hubble stream at relay:80 is down"
    evidence = await source.evidence(now)
    assert evidence.problem == "stale or dead source: Hubble stream at relay:80 is down"
    assert evidence.services == {("shop", "cart"), ("pay", "ledger")}
    healthy = source.evidence_at(now)
    assert healthy.problem is None and healthy.short.seconds == 300.0


def test_a_partial_service_is_inconclusive_and_the_others_are_judged():
    source, now = _fed()
    evidence = replace(source.evidence_at(now), partial={("shop", "cart"): "partial data: x"})
    verdicts = Judge(JudgeSettings()).evaluate_evidence(now, evidence, baseline=None,
                                                        phase="canary")
    cart = [v for v in verdicts if v.service == "cart"]
    ledger = [v for v in verdicts if v.service == "ledger"]
    assert len(cart) == len(ledger) == 2 * len(SLIS)
    assert {v.outcome for v in cart} == {INCONCLUSIVE}
    assert all("partial data: x" in v.reason for v in cart)
    assert any(v.outcome != INCONCLUSIVE for v in ledger)


def test_a_problem_makes_every_verdict_inconclusive():
    judge = Judge(JudgeSettings())
    evidence = Evidence(None, None, frozenset({("shop", "cart")}), "Prometheus unreachable: x")
    verdicts = judge.evaluate_evidence(1.0, evidence, baseline=None, phase="canary")
    assert len(verdicts) == 2 * len(SLIS)
    assert {v.outcome for v in verdicts} == {INCONCLUSIVE}
    assert all("Prometheus unreachable: x" in v.reason for v in verdicts)
    assert judge.problem == "Prometheus unreachable: x"


def test_the_api_body_does_not_depend_on_the_source():
    source, now = _fed()
    evidence = source.evidence_at(now)
    local = Judge(JudgeSettings())
    remote = Judge(JudgeSettings(source="prometheus", prometheus=PrometheusSourceSettings(
        url="http://127.0.0.1:9090", bearer_token_file="token")))
    for judge in (local, remote):
        judge.evaluate_evidence(now, evidence, baseline=None, phase="canary")
    body = verdicts_body(remote)
    assert body == verdicts_body(local)
    assert "source" not in body["settings"] and body["settings"]["alpha"] == 0.0001
