"""The probes' results as judge evidence, on a cluster without any application traffic.

Matrix (every snapshot holds no application service, only the ``kpr-probe`` pseudo-services):
eBPF probes as fast and as successful as kube-proxy probes -> not worse; eBPF probes slower
-> connect_duration worse; eBPF probes failing a check -> connect_failures worse; too few
probe results -> inconclusive ("too little"); the drop SLIs stay inconclusive (probes see
no flows); a baseline frozen from the probes before the switch judges them after it.
``ProbeTotals``: a restarted probe counts from zero, a probe gone keeps its counts, ``error``
results are no evidence, other bucket bounds are re-bucketed.
"""

from __future__ import annotations

import numpy as np
import pytest

from exporter.baseline.keeper import BaselineKeeper
from exporter.baseline.settings import BaselineSettings
from exporter.judge.driver import Judge
from exporter.judge.probes import NAMESPACE, ProbeReading, ProbeTotals, with_probes
from exporter.judge.settings import JudgeSettings
from exporter.judge.verdict import (
    AFTER_VS_BASELINE,
    CANARY_VS_CONTROL,
    CONNECT_DURATION,
    CONNECT_FAILURES,
    DROPS,
    INCONCLUSIVE,
    KPR_SENSITIVE_DROPS,
    NOT_WORSE,
    WORSE,
)
from exporter.snapshot import SliKey
from tests.judge.samples import BOUNDS, sli, snap

CHECK = "nodeport-remote"
EBPF, KP = "ebpf", "kube-proxy"
STEP = 30.0


class Probes:
    """Probes on four nodes (two per datapath), their cumulative counters as a probe keeps
    them, each round adding ``per_round`` results of one check per probe."""

    def __init__(self, datapaths: dict[str, str] | None = None, seed: int = 7) -> None:
        self.datapaths = datapaths or {"w1": KP, "w2": KP, "w3": EBPF, "w4": EBPF}
        self.counts: dict[str, dict] = {node: {} for node in self.datapaths}
        self.buckets: dict[str, dict] = {node: {} for node in self.datapaths}
        self.rng = np.random.default_rng(seed)
        self.time = 1_000_000.0

    def round(self, per_round: int, *, ebpf_scale: float = 1.0, ebpf_fail: float = 0.0) -> None:
        self.time += STEP
        for node, dp in self.datapaths.items():
            slow = ebpf_scale if dp == EBPF else 1.0
            failing = ebpf_fail if dp == EBPF else 0.0
            seconds = self.rng.lognormal(np.log(0.0008 * slow), 0.4, per_round)
            failed = int(round(per_round * failing))
            self._count(node, (CHECK, node, dp, "fail"), failed)
            self._count(node, (CHECK, node, dp, "pass"), per_round - failed)
            row = self.buckets[node].setdefault((CHECK, node, dp),
                                                [0.0] * (len(BOUNDS) + 1))
            for value in seconds:
                row[int(np.searchsorted(BOUNDS, value, side="left"))] += 1

    def _count(self, node: str, key: tuple, n: int) -> None:
        self.counts[node][key] = self.counts[node].get(key, 0.0) + n

    def readings(self) -> dict[str, ProbeReading]:
        out = {}
        for node in self.datapaths:
            buckets = {}
            for key, row in self.buckets[node].items():
                cumulative = np.cumsum(row).tolist()
                buckets[key] = [*zip(BOUNDS, cumulative[:-1]), (float("inf"), cumulative[-1])]
            out[f"probe-{node}"] = ProbeReading(dict(self.counts[node]), buckets)
        return out


def run(probes: Probes, totals: ProbeTotals, judge: Judge, steps: int, per_round: int,
        **behaviour) -> None:
    for _ in range(steps):
        probes.round(per_round, **behaviour)
        totals.observe(probes.readings())
        judge.observe(with_probes(snap(probes.time, {}), totals.services()))


def verdict(judge: Judge, at: float, which: str, comparison: str = CANARY_VS_CONTROL,
            phase: str = "canary", baseline=None):
    verdicts = judge.evaluate(at, baseline=baseline, phase=phase)
    assert {(v.namespace, v.service) for v in verdicts} == {(NAMESPACE, CHECK)}
    return next(v for v in verdicts if v.sli == which and v.comparison == comparison)


@pytest.mark.parametrize("behaviour, which, outcome", [
    ({}, CONNECT_DURATION, NOT_WORSE),
    ({}, CONNECT_FAILURES, NOT_WORSE),
    ({"ebpf_scale": 2.0}, CONNECT_DURATION, WORSE),
    ({"ebpf_fail": 0.3}, CONNECT_FAILURES, WORSE),
], ids=["equal-latency", "equal-success", "ebpf-slower", "ebpf-failing"])
def test_probes_alone_give_a_verdict(behaviour, which, outcome) -> None:
    probes, judge = Probes(), Judge(JudgeSettings())
    run(probes, ProbeTotals(BOUNDS), judge, 70, 10, **behaviour)
    v = verdict(judge, probes.time, which)
    assert v.outcome == outcome, v.reason


def test_too_few_probe_results_are_inconclusive_and_drops_are_never_judged() -> None:
    probes, judge = Probes(), Judge(JudgeSettings())
    run(probes, ProbeTotals(BOUNDS), judge, 70, 1, ebpf_scale=3.0, ebpf_fail=1.0)
    for which in (CONNECT_DURATION, CONNECT_FAILURES):
        v = verdict(judge, probes.time, which)
        assert v.outcome == INCONCLUSIVE and "too little" in v.reason, (which, v.reason)
    for which in (DROPS, KPR_SENSITIVE_DROPS):
        assert verdict(judge, probes.time, which).outcome == INCONCLUSIVE


def test_a_baseline_frozen_from_the_probes_judges_them_after_the_switch() -> None:
    probes = Probes({"w1": KP, "w2": KP})
    totals, judge = ProbeTotals(BOUNDS), Judge(JudgeSettings())
    keeper = BaselineKeeper(BaselineSettings(), clock=lambda: probes.time)
    for _ in range(120):
        probes.round(10)
        totals.observe(probes.readings())
        keeper.observe(with_probes(snap(probes.time, {}), totals.services()), "before")
    probes.datapaths = {"w1": EBPF, "w2": EBPF}  # every node switched: phase after
    for _ in range(70):
        probes.round(10, ebpf_scale=2.0)
        totals.observe(probes.readings())
        snapshot = with_probes(snap(probes.time, {}), totals.services())
        keeper.observe(snapshot, "after")
        judge.observe(snapshot)
    assert keeper.baseline is not None and keeper.baseline.cohort(NAMESPACE, CHECK) is not None
    after = verdict(judge, probes.time, CONNECT_DURATION, AFTER_VS_BASELINE, phase="after",
                    baseline=keeper.baseline)
    assert after.outcome == WORSE, after.reason
    control = verdict(judge, probes.time, CONNECT_DURATION, phase="after",
                      baseline=keeper.baseline)
    assert control.outcome == INCONCLUSIVE  # no kube-proxy node left to compare with


# --- the totals ------------------------------------------------------------------------------

KEY = SliKey(NAMESPACE, CHECK, EBPF)


def reading(passed: float, failed: float = 0.0, errors: float = 0.0,
            buckets: list[tuple[float, float]] | None = None) -> ProbeReading:
    counts = {(CHECK, "w3", EBPF, "pass"): passed, (CHECK, "w3", EBPF, "fail"): failed,
              (CHECK, "w3", EBPF, "error"): errors}
    return ProbeReading(counts, {(CHECK, "w3", EBPF): buckets} if buckets else {})


def test_a_restarted_probe_counts_from_zero_and_a_gone_one_keeps_its_counts() -> None:
    totals = ProbeTotals(BOUNDS)
    totals.observe({"p": reading(50, 5, errors=9), "q": reading(10)})
    totals.observe({"p": reading(70, 5), "q": reading(10)})
    totals.observe({"p": reading(3, 1), "q": reading(10)})  # p restarted
    totals.observe({"p": reading(4, 1)}, known={"p"})  # q's pod is gone
    attempts = totals.services()[KEY].attempts
    assert attempts == {"established": 70 + 4 + 10, "fail": 5 + 1}  # errors are no evidence
    totals.observe({"p": reading(4, 1), "q": reading(10)})  # a new q counts from its start
    assert totals.services()[KEY].attempts["established"] == 70 + 4 + 10 + 10


def test_histograms_are_re_bucketed_onto_the_snapshot_bounds() -> None:
    totals = ProbeTotals((0.001, 0.01))
    cumulative = [(0.0005, 2.0), (0.001, 5.0), (0.005, 6.0), (0.02, 9.0), (float("inf"), 10.0)]
    totals.observe({"p": reading(10, buckets=cumulative)})
    assert totals.services()[KEY].connect_counts == (5, 1, 4)


def test_with_probes_adds_rows_and_leaves_an_empty_set_alone() -> None:
    base = snap(1.0, {("shop", "cart", KP): sli()})
    assert with_probes(base, {}) is base
    totals = ProbeTotals(BOUNDS)
    totals.observe({"p": reading(3)})
    merged = with_probes(base, totals.services())
    assert set(merged.services) == {SliKey("shop", "cart", KP), KEY}
