"""The sizing benchmark's fleet, tiny: what it writes is what it says, and it still judges.

``bench.sizing`` builds the large node-mode fleet of ``bench.bench_sizing``. Here a fleet of
four nodes and twenty services: the series it counts are the series in the text, with the
exporter's metric names and labels; ``promtool`` backfills it; and the judge over a real
Prometheus, run as the benchmark runs it, finds the one regressed service worse on the
canary and nothing wrong with the fleet's health.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from bench import bench_sizing, sizing
from exporter.judge_prom.assemble import ATTEMPTS_METRIC, BUCKET_METRIC, DROPS_METRIC, FLOWS_METRIC
from tests.judge_prom.test_realstack import backfilled

SHAPE = sizing.Shape(nodes=4, services=20, namespaces=3, per_node=3, hours=0.5,
                     switch_after=600.0, end=1_764_000_000.0)
LINE = re.compile(r'^([a-z_:]+)\{([^}]*)\} (\S+) (\d+)$')


def _parse(path: Path) -> tuple[Counter[str], dict[str, list[tuple[float, int]]]]:
    families: Counter[str] = Counter()
    series: dict[str, list[tuple[float, int]]] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[-1] == "# EOF"
    for line in lines[:-1]:
        if line.startswith("# TYPE "):
            families[line.split()[2]] += 1
            continue
        match = LINE.match(line)
        assert match, line
        name, labels, value, t = match.groups()
        series.setdefault(f"{name}{{{labels}}}", []).append((float(value), int(t)))
    return families, series


def test_the_fleet_is_what_it_counts(tmp_path: Path) -> None:
    counts = sizing.write(SHAPE, tmp_path / "fleet.om")
    families, series = _parse(tmp_path / "fleet.om")
    assert all(n == 1 for n in families.values())  # each family's lines together, typed once
    assert counts.series == len(series) and counts.samples == sum(map(len, series.values()))
    assert counts.service_series == sizing.expected_service_series(SHAPE)
    service = [k for k in series if k.startswith("kpr_service_")]
    assert len(service) == counts.service_series
    for name in (BUCKET_METRIC, ATTEMPTS_METRIC, FLOWS_METRIC, DROPS_METRIC):
        assert any(k.startswith(name + "{") for k in service), name
    for key, points in series.items():
        times = [t for _, t in points]
        assert times == sorted(set(times)), key
        assert SHAPE.start <= times[0] and times[-1] <= SHAPE.end
        if key.endswith("_total") or "_total{" in key or "_bucket{" in key:
            values = [v for v, _ in points]
            assert values == sorted(values), f"counter {key} decreases"
    # a switched node's kube-proxy series end where its eBPF series begin
    kp = series['kpr_hubble_up{job="kpr-exporter",instance="node-0001:9977"}']
    assert len(kp) == SHAPE.steps + 1
    labels = 'namespace="kube-system",service="kube-dns",datapath="{}",le="+Inf",' \
             'job="kpr-exporter",instance="node-0001:9977"'
    before = series[f"{BUCKET_METRIC}{{{labels.format('kube-proxy')}}}"]
    after = series[f"{BUCKET_METRIC}{{{labels.format('ebpf')}}}"]
    assert before[-1][1] < after[0][1] and after[0][0] == 0


def test_every_service_is_called_from_both_datapaths() -> None:
    shape = replace(SHAPE, nodes=10, services=40, per_node=4)
    callers: dict[int, set[bool]] = {}
    for node in range(shape.nodes):
        for index in shape.services_of(node):
            callers.setdefault(index, set()).add(shape.switches(node))
    assert callers and all(sides == {False, True} for sides in callers.values())


@pytest.mark.realstack
async def test_the_judge_over_the_backfilled_fleet_finds_the_regression(tmp_path: Path) -> None:
    sizing.write(SHAPE, tmp_path / "fleet.om")
    async with backfilled(tmp_path / "prometheus",
                          (tmp_path / "fleet.om").read_text(encoding="utf-8")) as prometheus:
        result = await bench_sizing.measure_judge(prometheus.url, SHAPE.end)
    regressed = [i for i in range(SHAPE.services) if SHAPE.regressed(i)]
    assert regressed == [7]
    assert result["problem"] is None and result["partial"] == 0
    called = {i for node in range(SHAPE.nodes) for i in SHAPE.services_of(node)}
    assert result["queries"] > 0 and result["services"] == len(called) == 8
    assert result["outcomes"].get("worse", 0) >= 1
    assert result["worse"] == ["svc-0007"]


def test_the_benchmark_runs_when_named_only() -> None:
    from bench.__main__ import discover, select

    names = discover()
    assert "bench_sizing" in names
    assert "bench_sizing" not in select(names, []) and select(names, ["sizing"]) == ["bench_sizing"]
