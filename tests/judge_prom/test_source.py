"""The Prometheus evidence source against a local stand-in for Prometheus' HTTP API.

Matrix: healthy answers -> the same cohorts the fake holds, and a regression judged worse;
unreachable, never answering (short client timeout), an error body, response warnings, an
answer that cannot be read, an unreadable token file -> every verdict inconclusive with the reason, services kept, the
error counted; a datapath's attempts or a bucket missing, a datapath only in the short
window, a NaN -> that service inconclusive, the others judged (``__other__`` never); a dead
Hubble stream, a vanished or stale exporter, no exporter at all -> inconclusive; a
late-starting exporter marks the window partial; bearer token and basic auth are sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.judge.driver import Judge
from exporter.judge.history import Cohort
from exporter.judge.settings import JudgeSettings
from exporter.judge.source_settings import PrometheusBasicAuthSettings, PrometheusSourceSettings
from exporter.judge.verdict import CANARY_VS_CONTROL, CONNECT_DURATION, INCONCLUSIVE, SLIS, WORSE
from exporter.judge_prom import PrometheusEvidence
from exporter.demo.processes import free_port
from exporter.snapshot import SliKey
from tests.judge.samples import BOUNDS, add, lognormal
from tests.judge_prom.fakeprom import FakePrometheus

NOW = 1_764_000_000.0
SHORT, LONG = 300.0, 1800.0
CART_KP, CART_EB = SliKey("shop", "cart", "kube-proxy"), SliKey("shop", "cart", "ebpf")
LEDGER_KP, LEDGER_EB = SliKey("pay", "ledger", "kube-proxy"), SliKey("pay", "ledger", "ebpf")


def cohort(buckets: tuple[int, ...], refused: int = 0, drops: int = 0, kpr: int = 0) -> Cohort:
    n = sum(buckets)
    return Cohort(buckets, n + refused, n, 4 * n, drops, kpr)


def fleet(scale: int) -> dict[SliKey, Cohort]:
    """Cart slower on eBPF (twice the handshake time), ledger the same on both datapaths."""
    same = lognormal(3, 500 * scale)
    return {
        CART_KP: cohort(add(lognormal(1, 500 * scale), lognormal(2, 500 * scale)), 1, 4, 0),
        CART_EB: cohort(lognormal(4, 500 * scale, scale=2.0), 1, 2, 0),
        LEDGER_KP: cohort(same, 0, 3, 1), LEDGER_EB: cohort(same, 0, 3, 1),
    }


def settings(url: str = "http://127.0.0.1:1", **prom: object) -> JudgeSettings:
    return JudgeSettings(source="prometheus",
                         prometheus=PrometheusSourceSettings(url=url, **prom))  # type: ignore[arg-type]


@pytest.fixture
async def prom() -> AsyncIterator[FakePrometheus]:
    async with FakePrometheus(JudgeSettings(), NOW, BOUNDS) as fake:
        fake.set_window(SHORT, fleet(1))
        fake.set_window(LONG, fleet(6))
        yield fake


def source_for(url: str, **prom: object) -> tuple[PrometheusEvidence, CollectorRegistry]:
    registry = CollectorRegistry()
    return PrometheusEvidence(settings(url, **prom), registry=registry,
                              default_bounds=BOUNDS), registry


async def judged(source: PrometheusEvidence):
    judge = Judge(source.settings)
    evidence = await source.evidence(NOW)
    return evidence, judge.evaluate_evidence(NOW, evidence, baseline=None, phase="canary")


def pick(verdicts, service: str, sli: str = CONNECT_DURATION, comparison=CANARY_VS_CONTROL):
    return next(v for v in verdicts
                if v.service == service and v.sli == sli and v.comparison == comparison)


def errors(registry: CollectorRegistry, kind: str) -> float:
    return registry.get_sample_value("kpr_judge_source_errors_total", {"kind": kind}) or 0.0


async def test_healthy_answers_give_the_fleet_cohorts_and_verdicts(prom):
    source, registry = source_for(prom.url)
    evidence, verdicts = await judged(source)
    assert evidence.problem is None and evidence.partial == {}
    assert evidence.short.start == NOW - SHORT and evidence.short.end == NOW
    assert evidence.long.start == NOW - LONG and not evidence.long.partial
    assert evidence.short.bounds == BOUNDS
    for key, expected in fleet(1).items():
        assert evidence.short.cohort(key) == expected
    for key, expected in fleet(6).items():
        assert evidence.long.cohort(key) == expected
    assert evidence.services == {("shop", "cart"), ("pay", "ledger")}
    assert pick(verdicts, "cart").outcome == WORSE
    assert pick(verdicts, "ledger").outcome != INCONCLUSIVE
    assert source.queries == 25  # 4 service, 3 probe and 3 loss parts per window, 5 health
    assert all(errors(registry, k) == 0 for k in ("unreachable", "partial"))


async def _all_inconclusive(source: PrometheusEvidence, reason: str) -> None:
    evidence, verdicts = await judged(source)
    assert evidence.problem is not None and reason in evidence.problem
    assert verdicts, "the services known before the failure keep a verdict"
    assert {v.outcome for v in verdicts} == {INCONCLUSIVE}
    assert all(reason in v.reason for v in verdicts)


async def test_unreachable_prometheus_is_inconclusive_for_every_known_service(prom):
    source, registry = source_for(prom.url)
    await source.evidence(NOW)  # a good round first: the services are known
    source.prom = PrometheusSourceSettings(url=f"http://127.0.0.1:{free_port()}")
    await _all_inconclusive(source, "Prometheus unreachable: cannot connect")
    assert errors(registry, "unreachable") == 1


async def test_a_prometheus_that_never_answers_times_out_inconclusive(prom):
    prom.mode = "hang"
    source, registry = source_for(prom.url, timeout_seconds=0.2)
    evidence = await source.evidence(NOW)
    assert evidence.problem == f"Prometheus unreachable: {prom.url} did not answer in time"
    assert errors(registry, "unreachable") == 1


@pytest.mark.parametrize(("mode", "reason", "kind"), [
    ("error", "Prometheus query failed: Prometheus refused the query (execution): query timed "
              "out", "query_error"),
    ("warnings", "Prometheus answered with warnings, the data may be partial: partial response",
     "warnings"),
])
async def test_error_and_warning_answers_are_inconclusive(prom, mode, reason, kind):
    source, registry = source_for(prom.url)
    await source.evidence(NOW)
    prom.mode = mode
    await _all_inconclusive(source, reason)
    assert errors(registry, kind) == 1


async def test_an_unreadable_token_file_is_inconclusive(prom, tmp_path: Path):
    source, registry = source_for(prom.url, bearer_token_file=str(tmp_path / "missing"))
    evidence = await source.evidence(NOW)
    assert "cannot read the bearer token file" in evidence.problem
    assert errors(registry, "config") == 1
    assert prom.authorization == []  # nothing was sent


async def test_bearer_token_and_basic_auth_are_sent(prom, tmp_path: Path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    source, _ = source_for(prom.url, bearer_token_file=str(token))
    assert (await source.evidence(NOW)).problem is None
    assert set(prom.authorization) == {"Bearer s3cret"}
    prom.authorization.clear()
    password = tmp_path / "password"
    password.write_text("pw")
    source, _ = source_for(prom.url, basic_auth=PrometheusBasicAuthSettings("judge", str(password)))
    assert (await source.evidence(NOW)).problem is None
    assert set(prom.authorization) == {"Basic anVkZ2U6cHc="}  # judge:pw


@pytest.mark.parametrize(("drop", "reason"), [
    (lambda expr, labels: "attempts" in expr and labels.get("datapath") == "ebpf"
     and labels.get("service") == "cart",
     "partial data: shop/cart on ebpf has handshake buckets but no "
     "kpr_service_connect_attempts_total"),
    (lambda expr, labels: labels.get("le") == "0.001" and labels.get("service") == "cart"
     and labels.get("datapath") == "kube-proxy" and "[300s]" in expr,
     "partial data: kpr_service_connect_duration_seconds_bucket of shop/cart on kube-proxy "
     "lacks le=0.001"),
    (lambda expr, labels: "[1800s]" in expr and labels.get("datapath") == "ebpf"
     and labels.get("service") == "cart",
     "partial data: shop/cart on ebpf is in the short window but missing from the long one"),
])
async def test_a_series_missing_for_one_datapath_makes_that_service_inconclusive(
        prom, drop, reason):
    prom.drop = drop
    source, registry = source_for(prom.url)
    evidence, verdicts = await judged(source)
    assert evidence.problem is None
    assert evidence.partial == {("shop", "cart"): reason}
    cart = [v for v in verdicts if v.service == "cart"]
    assert len(cart) == 2 * len(SLIS)
    assert {v.outcome for v in cart} == {INCONCLUSIVE}
    assert all(reason in v.reason for v in cart)
    assert pick(verdicts, "ledger").outcome != INCONCLUSIVE
    assert errors(registry, "partial") == 1


async def test_a_nan_from_prometheus_is_partial_data(prom):
    prom.set_window(SHORT, {**fleet(1), LEDGER_EB: Cohort((0,) * len(BOUNDS) + (0,), 0, 0,
                                                          0, 0, 0)})
    prom.drop = lambda expr, labels: False
    source, _ = source_for(prom.url)
    original = prom.answer

    def with_nan(expr: str):
        found = original(expr)
        if "flows" in expr and "[300s]" in expr:
            return [(labels, float("nan") if labels["service"] == "ledger" else value)
                    for labels, value in found]
        return found

    prom.answer = with_nan  # type: ignore[method-assign]
    evidence, _ = await judged(source)
    assert evidence.partial[("pay", "ledger")].startswith("Prometheus returned nan for pay/ledger")


@pytest.mark.parametrize(("change", "reason"), [
    (lambda p: setattr(p, "up", [({"job": "kpr-exporter", "instance": "node-b:9977"}, 0.0)]),
     "stale or dead source: the Hubble stream of exporter node-b:9977 is down"),
    (lambda p: setattr(p, "vanished", [({"job": "kpr-exporter", "instance": "node-c:9977"}, 1.0)]),
     "stale or dead source: exporter node-c:9977 reported within the short window but has no "
     "current sample in Prometheus"),
    (lambda p: setattr(p, "newest", [({"job": "kpr-exporter", "instance": "node-a:9977"},
                                      NOW - 200.0)]),
     "stale source: the newest sample of exporter node-a:9977 in Prometheus is 200 s old"),
    (lambda p: setattr(p, "up", []), "no exporter in Prometheus"),
])
async def test_dead_stale_or_missing_exporters_are_inconclusive(prom, change, reason):
    change(prom)
    source, _ = source_for(prom.url)
    await _all_inconclusive(source, reason)


async def test_an_exporter_started_within_the_window_marks_it_partial(prom):
    prom.late = [({"job": "kpr-exporter", "instance": "node-d:9977"}, 1.0)]
    evidence, _ = await judged(source_for(prom.url)[0])
    assert evidence.short.partial and evidence.long.partial
    assert evidence.problem is None


async def test_the_overflow_service_is_neither_judged_nor_partial(prom):
    other = SliKey("shop", "__other__", "ebpf")
    prom.set_window(SHORT, {**fleet(1), other: cohort(lognormal(5, 200))})
    prom.drop = lambda expr, labels: "attempts" in expr and labels.get("service") == "__other__"
    source, registry = source_for(prom.url)
    evidence, verdicts = await judged(source)
    assert evidence.partial == {} and evidence.short.cohort(other) is None
    assert verdicts and all(v.service != "__other__" for v in verdicts)
    assert errors(registry, "partial") == 0


@pytest.mark.parametrize(("raw", "reason"), [
    ([{"metric": {}, "value": [NOW, "many"]}], "Prometheus query failed: malformed sample"),
    ([{"metric": ["job"], "value": [NOW, "1"]}],
     "Prometheus' answer could not be read: AttributeError"),
])
async def test_an_answer_that_cannot_be_read_is_inconclusive(prom, raw, reason):
    source, registry = source_for(prom.url)
    await source.evidence(NOW)
    prom.raw_result = raw
    await _all_inconclusive(source, reason)
    assert errors(registry, "query_error") == 1


async def test_the_probes_pseudo_services_come_from_prometheus_too(prom):
    """The probe queries' answers (relabelled to kpr-probe/<check>) join the window: the
    same cohorts, judged like any service, without partial data for their missing flows."""
    slow, fast = lognormal(5, 400, scale=2.0), lognormal(6, 400)
    probe_eb, probe_kp = SliKey("kpr-probe", "hostport", "ebpf"), SliKey("kpr-probe", "hostport",
                                                                          "kube-proxy")
    for seconds, times in ((SHORT, 1), (LONG, 6)):
        prom.probe_windows[seconds] = {
            probe_eb: Cohort(tuple(c * times for c in slow), sum(slow) * times + 3,
                             sum(slow) * times),
            probe_kp: Cohort(tuple(c * times for c in fast), sum(fast) * times,
                             sum(fast) * times)}
    source, _ = source_for(prom.url)
    evidence, verdicts = await judged(source)
    assert evidence.problem is None and evidence.partial == {}
    assert evidence.short.cohort(probe_eb) == Cohort(slow, sum(slow) + 3, sum(slow))
    assert ("kpr-probe", "hostport") in evidence.services
    assert pick(verdicts, "hostport").outcome == WORSE
    assert pick(verdicts, "cart").outcome == WORSE  # the services are judged as before
