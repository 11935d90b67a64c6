"""The gates by name (one line each) and the builder that makes them from collaborators.

``Collaborators`` holds what the gates need from outside: where the probes are, where the
alerts are read, how judge evidence is fetched, the judge's settings and baseline, the
clock and the sleep. ``build_gates(names, deps)`` makes the named gates in order, and
raises ``GateSetupError`` naming every gate whose collaborator is missing, so a
migration never starts with a gate that cannot run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import aiohttp

from exporter.judge.driver import BaselineView
from exporter.judge.settings import JudgeSettings
from exporter.judge_prom.source import PrometheusEvidence, SecretError
from exporter.migrate.gates.alerts import (
    ROLLBACK_MATCH, AlertsGate, AlertSource, AlertSourceError, PrometheusAlerts,
)
from exporter.migrate.gates.base import Gate
from exporter.migrate.gates.judge import EvidenceFactory, JudgeGate
from exporter.migrate.gates.verify import ClusterProbes, ProbeReader, StaticProbes, VerifyGate
from exporter.verify.verify_cmd import Sleep


class GateSetupError(ValueError):
    """A named gate cannot be built (unknown, or a collaborator is missing)."""


@dataclass(frozen=True)
class Collaborators:
    probes: ProbeReader | None = None  # the verify gate's reader
    alerts: AlertSource | None = None  # the alerts gate's source
    evidence: EvidenceFactory | None = None  # the judge gate's evidence, for given windows
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    baseline: Callable[[], BaselineView | None] = lambda: None
    wait_seconds: float = 300.0  # the verify gate's --wait
    min_judged: int = 1
    match_labels: Mapping[str, str] = field(default_factory=lambda: dict(ROLLBACK_MATCH))
    node_label: str = "node"
    clock: Callable[[], float] = time.time
    sleep: Sleep = asyncio.sleep


def _verify(d: Collaborators) -> Gate:
    if d.probes is None:
        raise GateSetupError("verify: no probes to read (probes.enabled or probes.static)")
    return VerifyGate(d.probes, d.wait_seconds, clock=d.clock, sleep=d.sleep)


def _judge(d: Collaborators) -> Gate:
    if d.evidence is None:
        raise GateSetupError("judge: no evidence source (judge.prometheus.url)")
    return JudgeGate(d.judge, d.evidence, baseline=d.baseline, clock=d.clock,
                     min_judged=d.min_judged)


def _alerts(d: Collaborators) -> Gate:
    if d.alerts is None:
        raise GateSetupError("alerts: no Prometheus or Alertmanager URL to read alerts from")
    return AlertsGate(d.alerts, match_labels=d.match_labels, node_label=d.node_label)


#: Gate name -> its builder, in the order the gates run.
GATES: Final[Mapping[str, Callable[[Collaborators], Gate]]] = {
    "verify": _verify,
    "judge": _judge,
    "alerts": _alerts,
}


def build_gates(names: Sequence[str], deps: Collaborators) -> list[Gate]:
    """The named gates, in ``names``' order; raises GateSetupError with every problem."""
    gates: list[Gate] = []
    problems: list[str] = []
    for name in names:
        builder = GATES.get(name)
        if builder is None:
            problems.append(f"{name}: unknown gate (known: {', '.join(GATES)})")
            continue
        try:
            gates.append(builder(deps))
        except GateSetupError as exc:
            problems.append(str(exc))
    if problems:
        raise GateSetupError("; ".join(problems))
    return gates


def from_settings(settings: Any, wait_seconds: float, *, kube: object | None = None,
                  baseline: Callable[[], BaselineView | None] = lambda: None,
                  clock: Callable[[], float] = time.time,
                  sleep: Sleep = asyncio.sleep) -> Collaborators:
    """The collaborators the exporter's settings (``exporter.config.Settings``) provide:
    the probes of ``probes.static``, or those discovered with ``probes.enabled`` (needs
    ``kube``); judge evidence and alerts from ``judge.prometheus`` (its auth and TLS);
    the webhook's match labels and node label. What is not configured stays None, and
    ``build_gates`` names it."""
    probes = settings.probes
    reader: ProbeReader | None = None
    if probes.static:
        reader = StaticProbes([probes.static[k] for k in sorted(probes.static)])
    elif probes.enabled and kube is not None:
        reader = ClusterProbes(kube, probes)
    judge = settings.judge
    evidence: EvidenceFactory | None = None
    alerts: AlertSource | None = None
    if judge.prometheus.url:
        evidence = _prometheus_evidence
        alerts = PrometheusAlerts(judge.prometheus.url, session=_authorised(judge))
    webhook = settings.webhook
    return Collaborators(probes=reader, alerts=alerts, evidence=evidence, judge=judge,
                         baseline=baseline, wait_seconds=wait_seconds,
                         match_labels=dict(webhook.match_labels), node_label=webhook.node_label,
                         clock=clock, sleep=sleep)


def _prometheus_evidence(windows: JudgeSettings) -> PrometheusEvidence:
    return PrometheusEvidence(replace(windows, source="prometheus"))


def _authorised(judge: JudgeSettings) -> Callable[[], aiohttp.ClientSession]:
    """Sessions with the judge's Prometheus auth and TLS (the judge's own session builder)."""
    source = PrometheusEvidence(judge)

    def session() -> aiohttp.ClientSession:
        try:
            return source.session()
        except SecretError as exc:
            raise AlertSourceError(str(exc)) from None

    return session
