"""The registry names every gate the spec knows, and the builder refuses missing collaborators."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exporter.config import Settings
from exporter.judge.settings import JudgeSettings
from exporter.judge.source_settings import PrometheusSourceSettings
from exporter.migrate.gates.base import BatchContext
from exporter.sources.probes_settings import ProbeSourceSettings

from exporter.judge.evidence import InProcessEvidence
from exporter.migrate.gates.alerts import AlertsGate, PrometheusAlerts
from exporter.migrate.gates.judge import JudgeGate
from exporter.migrate.gates.registry import (
    GATES, Collaborators, GateSetupError, build_gates, from_settings,
)
from exporter.migrate.gates.verify import StaticProbes, VerifyGate
from exporter.migrate.model import KNOWN_GATES


def test_the_registry_holds_the_known_gates_in_order() -> None:
    assert tuple(GATES) == KNOWN_GATES


def test_every_gate_is_built_in_the_order_asked() -> None:
    deps = Collaborators(probes=StaticProbes(["http://127.0.0.1:9978"]),
                         alerts=PrometheusAlerts("http://127.0.0.1:9090"),
                         evidence=InProcessEvidence, wait_seconds=30.0)
    gates = build_gates(("alerts", "verify", "judge"), deps)
    assert [type(g) for g in gates] == [AlertsGate, VerifyGate, JudgeGate]
    assert [g.name for g in gates] == ["alerts", "verify", "judge"]
    assert gates[1].wait_seconds == 30.0
    assert build_gates((), Collaborators()) == []


def test_missing_collaborators_are_all_named() -> None:
    with pytest.raises(GateSetupError) as err:
        build_gates(("verify", "judge", "alerts", "smoke"), Collaborators())
    assert str(err.value) == (
        "verify: no probes to read (probes.enabled or probes.static); "
        "judge: no evidence source (judge.prometheus.url); "
        "alerts: no Prometheus or Alertmanager URL to read alerts from; "
        "smoke: unknown gate (known: verify, judge, alerts)")


def test_collaborators_from_the_exporters_settings(tmp_path) -> None:
    plain = from_settings(Settings(), 120.0)
    assert (plain.probes, plain.alerts, plain.evidence) == (None, None, None)
    with pytest.raises(GateSetupError, match="^verify: .*; judge: .*; alerts: "):
        build_gates(KNOWN_GATES, plain)

    prom = PrometheusSourceSettings(url="http://127.0.0.1:9", bearer_token_file=str(
        tmp_path / "missing-token"))
    settings = replace(
        Settings(), probes=ProbeSourceSettings(static={"b": "http://127.0.0.1:2/metrics",
                                                       "a": "http://127.0.0.1:1/metrics"}),
        judge=replace(JudgeSettings(), prometheus=prom))
    deps = from_settings(settings, 120.0)
    gates = build_gates(KNOWN_GATES, deps)
    assert [g.name for g in gates] == list(KNOWN_GATES)
    assert deps.match_labels == {"kpr_action": "rollback"} and deps.node_label == "node"
    assert deps.evidence(JudgeSettings()).settings.source == "prometheus"
    assert isinstance(deps.probes, StaticProbes)
    assert gates[0].wait_seconds == 120.0


async def test_an_unreadable_prometheus_secret_makes_the_alerts_gate_inconclusive(
        tmp_path) -> None:
    prom = PrometheusSourceSettings(url="http://127.0.0.1:9",
                                    bearer_token_file=str(tmp_path / "missing-token"))
    settings = replace(Settings(), judge=replace(JudgeSettings(), prometheus=prom))
    (gate,) = build_gates(("alerts",), from_settings(settings, 60.0))
    result = await gate.evaluate(BatchContext(("n1",), ("n1",), (), 0.0, 0.0))
    assert result.result == "inconclusive"
    assert "cannot read the bearer token file" in result.reason
