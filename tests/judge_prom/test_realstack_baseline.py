"""The baseline captured from a real Prometheus (node mode) equals the one kept in-process.

``fleet``'s three exporters are backfilled into Debian's prometheus 2.42. A baseline service
reading its pre-switch window from Prometheus (``PrometheusEvidence.window_at``, the judge's
own queries) and one fed the summed snapshots of the same scrapes freeze the same baseline
at node-c's switch; a Prometheus that cannot answer freezes nothing and leaves the switch
to be read again.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.baseline.keeper import BaselineKeeper
from exporter.baseline.service import BaselineService
from exporter.baseline.settings import BaselineSettings
from exporter.baseline.store import FileStore
from exporter.judge.source_settings import PrometheusSourceSettings
from exporter.judge_prom import PrometheusEvidence
from tests.judge.samples import BOUNDS
from tests.judge_prom import fleet
from tests.judge_prom.test_realstack import SETTINGS, backfilled

pytestmark = pytest.mark.realstack

BASELINE = BaselineSettings(window_seconds=300.0)


def phase(t: float) -> str:
    return "before" if t <= fleet.SWITCH else "canary"


class Clock:
    def __init__(self) -> None:
        self.now = fleet.T0

    def __call__(self) -> float:
        return self.now


async def run(service: BaselineService, clock: Clock, recorded):
    await service.start()
    frozen = []
    for t, snapshots in recorded:
        clock.now = t
        if (got := await service.observe(fleet.merged(snapshots), phase(t))) is not None:
            frozen.append((t, got))
    return frozen


async def test_the_baseline_from_prometheus_is_the_in_process_one(tmp_path: Path):
    recorded = list(fleet.history())
    clock = Clock()
    local = BaselineService(BaselineKeeper(BASELINE, clock=clock),
                            FileStore(tmp_path / "local.json"), clock=clock)
    expected = await run(local, clock, recorded)

    async with backfilled(tmp_path / "prometheus", fleet.openmetrics(recorded)) as prometheus:
        settings = replace(SETTINGS, source="prometheus",
                           prometheus=PrometheusSourceSettings(url=prometheus.url))
        source = PrometheusEvidence(settings, registry=CollectorRegistry(), default_bounds=BOUNDS)
        remote = BaselineService(BaselineKeeper(BASELINE, clock=clock),
                                 FileStore(tmp_path / "remote.json"), clock=clock,
                                 remote=source.window_at)
        got = await run(remote, clock, recorded)

    assert len(expected) == 1 and expected[0][0] == fleet.SWITCH + fleet.STEP
    assert got == expected
    baseline = got[0][1]
    assert (baseline.window_start, baseline.window_end) == (fleet.SWITCH - 300.0, fleet.SWITCH)
    assert set(baseline.services) == {("shop", "cart"), ("shop", "checkout"), ("pay", "ledger")}
    assert await FileStore(tmp_path / "remote.json").load() == baseline


async def test_an_unanswering_prometheus_freezes_nothing_and_is_asked_again(tmp_path: Path):
    recorded = [(t, s) for t, s in fleet.history() if t <= fleet.SWITCH + 2 * fleet.STEP]
    settings = replace(SETTINGS, source="prometheus",
                       prometheus=PrometheusSourceSettings(url="http://127.0.0.1:9",
                                                           timeout_seconds=2.0))
    registry = CollectorRegistry()
    source = PrometheusEvidence(settings, registry=registry, default_bounds=BOUNDS)
    clock = Clock()
    remote = BaselineService(BaselineKeeper(BASELINE, clock=clock),
                             FileStore(tmp_path / "remote.json"), clock=clock,
                             remote=source.window_at)
    assert await run(remote, clock, recorded) == []
    assert remote.keeper.status.startswith("the pre-switch window could not be read yet: "
                                           "Prometheus unreachable")
    # Asked at both snapshots after the switch, counted as the judge's source errors.
    assert registry.get_sample_value("kpr_judge_source_errors_total",
                                     {"kind": "unreachable"}) == 2
    assert await FileStore(tmp_path / "remote.json").load() is None
