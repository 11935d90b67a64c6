"""The exporter judging Prometheus takes its baseline from Prometheus too (node mode).

At the switch from all kube-proxy to a canary, the exporter, which sees no flows of its own
here, reads the pre-switch window from (a stand-in for) Prometheus with the judge's queries,
freezes the kube-proxy counts, saves them and judges after-vs-baseline against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exporter import app as app_module
from exporter import config
from exporter.baseline.store import FileStore
from exporter.judge.verdict import AFTER_VS_BASELINE, CONNECT_DURATION
from tests.judge.samples import BOUNDS
from tests.judge_prom.fakeprom import FakePrometheus
from tests.judge_prom.test_source import LONG, NOW, SHORT, fleet


@dataclass
class Phase:
    """The cluster view the test moves from one phase to the next."""

    current: str = "before"

    def phase(self) -> str:
        return self.current


async def test_the_baseline_is_read_from_prometheus_at_the_switch(tmp_path: Path):
    async with FakePrometheus(config.load(env={}).judge, NOW, BOUNDS) as prom:
        prom.set_window(SHORT, fleet(1))
        prom.set_window(LONG, fleet(6))
        settings = config.load(env={}, flags={
            "--web.listen-address": "127.0.0.1:0", "--kube.enabled": "false",
            "--web.role": "central", "--datapath.static": "node-a=kube-proxy,node-b=ebpf",
            "--judge.source": "prometheus", "--judge.prometheus.url": prom.url,
            "--baseline.window-seconds": str(SHORT), "--baseline.store": "file",
            "--baseline.file": str(tmp_path / "baseline.json")})
        now = [NOW]
        exporter = app_module.Exporter(settings, clock=lambda: now[0])
        view = exporter.view = Phase()
        await exporter.baseline.start()

        await exporter.judge_once()
        assert exporter.baseline.baseline is None  # all kube-proxy: nothing frozen yet

        view.current, now[0] = "canary", NOW + 30.0
        await exporter.judge_once()

    baseline = exporter.baseline.baseline
    assert baseline is not None
    assert (baseline.window_start, baseline.window_end) == (NOW - SHORT, NOW)
    assert set(baseline.services) == {("shop", "cart"), ("pay", "ledger")}
    assert baseline.cohort("shop", "cart") == fleet(1)[next(k for k in fleet(1)
                                                           if k.service == "cart"
                                                           and k.datapath == "kube-proxy")]
    assert await FileStore(tmp_path / "baseline.json").load() == baseline
    judged = [v for v in exporter.judge.verdicts
              if v.comparison == AFTER_VS_BASELINE and v.sli == CONNECT_DURATION]
    assert judged and all("no frozen pre-switch baseline" not in v.reason for v in judged)
