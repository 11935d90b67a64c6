"""The same recorded data judged in-process and over a real Prometheus gives the same verdicts.

``fleet`` records three node-mode exporters; the in-process judge reads their summed
snapshots (what one relay-mode exporter holds), the Prometheus judge reads the exporters'
series backfilled with ``promtool tsdb create-blocks-from openmetrics`` into Debian's
prometheus 2.42, summed there per service and datapath. Verdicts with their evidence
(``to_dict``), the ``/api/v1/verdicts`` body and the ``kpr_verdict`` exposition must be
identical, and the data's known answers must come out (so equality is not that of two
empty or all-inconclusive results).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter.judge.verdict_json import verdicts_body
from exporter.judge.collector import VerdictCollector
from exporter.judge.driver import Judge
from exporter.judge.settings import JudgeSettings
from exporter.judge.source_settings import PrometheusSourceSettings
from exporter.judge.verdict import AFTER_VS_BASELINE, CANARY_VS_CONTROL, CONNECT_DURATION
from exporter.judge_prom import PrometheusEvidence
from tests.judge.samples import BOUNDS
from tests.judge_prom import fleet
from tests.realstack.harness import (
    PROMTOOL, HarnessError, Prometheus, PrometheusOptions, promtool, require_binary,
)

pytestmark = pytest.mark.realstack

# Windows on the scrape grid; the long window's 15 slots are the in-process history's
# resolution, so both sources cut the windows at the same scrapes.
SETTINGS = JudgeSettings(short_window_seconds=300.0, long_window_seconds=900.0,
                         evaluation_interval_seconds=60.0, stale_after_seconds=180.0)


def backfilled(workdir: Path, text: str) -> Prometheus:
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "fleet.om"
    source.write_text(text, encoding="utf-8")
    result = promtool("tsdb", "create-blocks-from", "openmetrics", str(source),
                      str(workdir / "tsdb"), binary=require_binary(PROMTOOL))
    if result.returncode != 0:
        raise HarnessError(f"promtool backfill failed:\n{result.stdout}\n{result.stderr}")
    return Prometheus(workdir, PrometheusOptions(retention="36500d"))


def exposition(judge: Judge) -> bytes:
    registry = CollectorRegistry()
    registry.register(VerdictCollector(judge))
    return generate_latest(registry)


def outcome(verdicts, service: str, comparison: str = CANARY_VS_CONTROL) -> str:
    v = next(v for v in verdicts if v.service == service and v.sli == CONNECT_DURATION
             and v.comparison == comparison)
    return "better" if v.better else v.outcome


async def test_in_process_and_prometheus_judges_agree_on_the_same_data(tmp_path: Path):
    recorded = list(fleet.history())
    baseline = fleet.baseline()
    prom_settings = replace(SETTINGS, source="prometheus")
    async with backfilled(tmp_path / "prometheus", fleet.openmetrics(recorded)) as prometheus:
        prom_settings = replace(prom_settings,
                                prometheus=PrometheusSourceSettings(url=prometheus.url))
        source = PrometheusEvidence(prom_settings, registry=CollectorRegistry(),
                                    default_bounds=BOUNDS)
        checked = []
        for now in (fleet.END, fleet.END - 2 * fleet.STEP):
            local = Judge(SETTINGS)
            for t, snapshots in recorded:
                if t <= now:
                    local.observe(fleet.merged(snapshots))
            expected = local.evaluate(now, baseline=baseline, phase="canary")

            evidence = await source.evidence(now)
            assert evidence.problem is None and evidence.partial == {}
            remote = Judge(prom_settings)
            got = remote.evaluate_evidence(now, evidence, baseline=baseline, phase="canary")

            assert [v.to_dict() for v in got] == [v.to_dict() for v in expected]
            assert verdicts_body(remote) == verdicts_body(local)
            assert exposition(remote) == exposition(local)
            for service, answer in fleet.EXPECTED.items():
                assert outcome(got, service) == answer, service
            assert outcome(got, "cart", AFTER_VS_BASELINE) == "worse"
            checked.append(now)
    assert len(checked) == 2 and source.queries == 50


async def test_stale_missing_and_partial_data_in_a_real_prometheus(tmp_path: Path):
    recorded = list(fleet.history())
    async with backfilled(tmp_path / "prometheus", fleet.openmetrics(recorded)) as prometheus:
        settings = replace(SETTINGS, source="prometheus",
                           prometheus=PrometheusSourceSettings(url=prometheus.url))
        source = PrometheusEvidence(settings, registry=CollectorRegistry(),
                                    default_bounds=BOUNDS)
        stale = await source.evidence(fleet.END + 240.0)  # within the lookback, too old
        assert stale.problem == ("stale source: the newest sample of exporter node-a:9977 in "
                                 "Prometheus is 240 s old (> 180 s)")
        gone = await source.evidence(fleet.END + 600.0)  # beyond the lookback: nothing
        assert gone.problem is not None and gone.problem.startswith("no exporter in Prometheus")
        early = await source.evidence(fleet.T0 + 600.0)  # the long window starts before the data
        assert early.problem is None
        assert early.long.partial and not early.short.partial
