"""The probes' pseudo-services judged over a real Prometheus equal the in-process ones.

Four probes (two on kube-proxy nodes, two on eBPF nodes, where ``nodeport-remote`` is twice
as slow and ``hostport`` fails a third of the time) are recorded every 60 s as the exporter
serves them (label ``probe``), one probe restarting half way (its counters back at zero).
The in-process judge reads them through ``ProbeTotals``; the Prometheus judge reads the
same series backfilled into Debian's prometheus 2.42 through the probe queries
(``label_replace`` into ``kpr-probe/<check>``). Their verdicts must be identical, and the
known answers must come out.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from exporter.judge.driver import Judge
from exporter.judge.probes import NAMESPACE, ProbeReading, ProbeTotals, with_probes
from exporter.judge.source_settings import PrometheusSourceSettings
from exporter.judge.verdict import CANARY_VS_CONTROL, CONNECT_DURATION, CONNECT_FAILURES
from exporter.judge_prom import PrometheusEvidence
from tests.judge.samples import BOUNDS, snap
from tests.judge_prom.test_realstack import SETTINGS, backfilled

pytestmark = pytest.mark.realstack

T0, STEP, STEPS = 1_764_000_000.0, 60.0, 25
END = T0 + STEP * STEPS
NODES = {"w1": "kube-proxy", "w2": "kube-proxy", "w3": "ebpf", "w4": "ebpf"}
CHECKS = ("nodeport-remote", "hostport")
RESTART = ("kpr-probe-w4", 12)  # this probe restarts before this step


class Recorder:
    """Every probe's cumulative counters, as it would serve them, step by step."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(5)
        self.counts: dict[str, dict[tuple[str, str, str, str], float]] = {}
        self.buckets: dict[str, dict[tuple[str, str, str], list[float]]] = {}
        self.lines: dict[str, list[str]] = {}

    def step(self, index: int) -> dict[str, ProbeReading]:
        t = T0 + index * STEP
        for node, dp in NODES.items():
            probe = f"kpr-probe-{node}"
            if (probe, index) == RESTART:
                self.counts[probe], self.buckets[probe] = {}, {}
            counts = self.counts.setdefault(probe, {})
            rows = self.buckets.setdefault(probe, {})
            for check in CHECKS:
                slow = 2.0 if dp == "ebpf" and check == "nodeport-remote" else 1.0
                failed = 10 if dp == "ebpf" and check == "hostport" and index else 0
                done = 30 if index else 0  # every series exists from the first scrape
                for result, n in (("pass", done - failed), ("fail", failed), ("error", 1)):
                    key = (check, node, dp, result)
                    counts[key] = counts.get(key, 0.0) + n
                row = rows.setdefault((check, node, dp), [0.0] * (len(BOUNDS) + 1))
                for value in self.rng.lognormal(math.log(0.0008 * slow), 0.4, done):
                    row[int(np.searchsorted(BOUNDS, value))] += 1
            self._record(probe, t)
        return {probe: ProbeReading(dict(self.counts[probe]), {
            key: [*zip((*BOUNDS, math.inf), np.cumsum(row).tolist())]
            for key, row in self.buckets[probe].items()}) for probe in self.counts}

    def _record(self, probe: str, t: float) -> None:
        def add(name: str, labels: dict[str, str], value: float) -> None:
            shown = ",".join(f'{k}="{v}"' for k, v in {**labels, "probe": probe,
                                                        "job": "kpr-exporter",
                                                        "instance": "exporter:9977"}.items())
            self.lines.setdefault(name.split("{")[0] + "|" + shown, []).append(
                f"{name}{{{shown}}} {value:g} {t:.0f}")

        for (check, node, dp, result), value in self.counts[probe].items():
            add("kpr_probe_checks_total", {"check": check, "node": node, "datapath": dp,
                                           "result": result}, value)
        for (check, node, dp), row in self.buckets[probe].items():
            base = {"check": check, "node": node, "datapath": dp}
            for le, total in zip((*BOUNDS, math.inf), np.cumsum(row).tolist()):
                add("kpr_probe_duration_seconds_bucket",
                    {**base, "le": "+Inf" if le == math.inf else repr(le)}, total)
            add("kpr_probe_duration_seconds_count", base, sum(row))
            add("kpr_probe_duration_seconds_sum", base, sum(row) * 0.0008)

    def openmetrics(self) -> str:
        out = ["# TYPE kpr_probe_checks counter", "# TYPE kpr_probe_duration_seconds histogram"]
        checks = [k for k in self.lines if k.startswith("kpr_probe_checks_total|")]
        out[1:1] = [line for k in checks for line in self.lines[k]]
        out += [line for k, v in self.lines.items() if k not in checks for line in v]
        out.append("# TYPE kpr_hubble_up gauge")
        out += [f'kpr_hubble_up{{job="kpr-exporter",instance="exporter:9977"}} 1 '
                f"{T0 + i * STEP:.0f}" for i in range(STEPS + 1)]
        return "\n".join(out) + "\n# EOF\n"


def outcome(verdicts, service: str, sli: str) -> str:
    v = next(v for v in verdicts if (v.namespace, v.service, v.sli, v.comparison) ==
             (NAMESPACE, service, sli, CANARY_VS_CONTROL))
    return v.outcome


async def test_probe_verdicts_agree_in_process_and_over_prometheus(tmp_path: Path) -> None:
    recorder, totals, local = Recorder(), ProbeTotals(BOUNDS), Judge(SETTINGS)
    for index in range(STEPS + 1):
        totals.observe(recorder.step(index))
        local.observe(with_probes(snap(T0 + index * STEP, {}), totals.services()))
    expected = local.evaluate(END, baseline=None, phase="canary")

    async with backfilled(tmp_path / "prometheus", recorder.openmetrics()) as prometheus:
        settings = replace(SETTINGS, source="prometheus",
                           prometheus=PrometheusSourceSettings(url=prometheus.url))
        source = PrometheusEvidence(settings, registry=CollectorRegistry(), default_bounds=BOUNDS)
        evidence = await source.evidence(END)
    assert evidence.problem is None and evidence.partial == {}
    got = Judge(settings).evaluate_evidence(END, evidence, baseline=None, phase="canary")

    assert [v.to_dict() for v in got] == [v.to_dict() for v in expected]
    assert outcome(got, "nodeport-remote", CONNECT_DURATION) == "worse"
    assert outcome(got, "hostport", CONNECT_DURATION) == "not_worse"
    assert outcome(got, "hostport", CONNECT_FAILURES) == "worse"
    assert outcome(got, "nodeport-remote", CONNECT_FAILURES) == "not_worse"
