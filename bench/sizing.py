"""A large node-mode fleet as OpenMetrics text for ``promtool tsdb create-blocks-from openmetrics``.

The shape (``Shape``; every number can be changed):

* ``nodes`` collectors, one per node (``job="kpr-exporter"``, ``instance="node-NNNN:9977"``),
  each exporting its own node's series, as node mode does;
* ``services`` Services in ``namespaces`` namespaces. A node sees the Services its client
  pods call: the ``hot`` ones every node calls (the first ones, e.g. DNS and the API server)
  and ``per_node`` others. Nodes come in pairs that call the same Services, so every
  Service is called from as many kube-proxy nodes as eBPF nodes;
* every odd node switches from kube-proxy to eBPF ``switch_after`` seconds into the data
  (a migration halfway through its canary): its kube-proxy series end there and its eBPF
  series begin (idle series expire in the exporter, so both never run side by side);
* one sample per series every ``interval`` seconds for ``hours`` hours, ending at ``end``.

Per (node, Service, datapath) the exporter's real series (``docs/metrics.md``): the 16
``le`` buckets, ``_count`` and ``_sum`` of ``kpr_service_connect_duration_seconds``,
``kpr_service_connect_attempts_total`` for three results, ``kpr_service_flows_total`` for
two verdicts, and ``kpr_service_drops_total`` with ``POLICY_DENIED`` (and, on eBPF for the
regressed Services, ``SERVICE_BACKEND_NOT_FOUND``): ``SERIES_PER_SERVICE`` or one more.
Per node: ``kpr_hubble_up``, ``kpr_hubble_lost_events_total``, ``kpr_agent_up``,
``kpr_node_datapath_info``, ``kpr_migration_phase`` (5 phases), the agent's forwards and
drops, and the switch time once switched.

Traffic is seeded and repeatable; on eBPF every ``regressed_every``-th Service has handshakes
twice as slow and "Service backend not found" drops (a known answer), the others are 10 %
faster. ``write`` streams the text family by family and returns the counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from exporter.model import EBPF, KUBE_PROXY
from exporter.metrics_contract import CONNECT_BUCKETS

JOB = "kpr-exporter"
HIST = "kpr_service_connect_duration_seconds"
RESULTS = ("established", "refused", "timeout")
VERDICTS = ("FORWARDED", "DROPPED")
PHASES = ("before", "canary", "after", "rolled-back", "unknown")
#: Series of one (node, Service, datapath): 16 buckets, _count, _sum, 3 results, 2 verdicts, 1 drop.
SERIES_PER_SERVICE = len(CONNECT_BUCKETS) + 1 + 2 + len(RESULTS) + len(VERDICTS) + 1


@dataclass(frozen=True)
class Shape:
    nodes: int = 1000
    services: int = 2000
    namespaces: int = 50
    hot: int = 2
    per_node: int = 10
    hours: float = 2.0
    interval: float = 60.0
    end: float = 1_764_000_000.0
    switch_after: float = 3600.0
    connections_per_minute: float = 30.0  # per (node, Service); hot Services 5x
    regressed_every: int = 100

    @property
    def steps(self) -> int:
        return int(round(self.hours * 3600.0 / self.interval))

    @property
    def start(self) -> float:
        return self.end - self.steps * self.interval

    @property
    def switch_step(self) -> int:
        return int(round(self.switch_after / self.interval))

    def service(self, index: int) -> tuple[str, str]:
        if index == 0:
            return "kube-system", "kube-dns"
        if index == 1:
            return "default", "kubernetes"
        return f"ns-{index % self.namespaces:02d}", f"svc-{index:04d}"

    def regressed(self, index: int) -> bool:
        return index >= self.hot and index % self.regressed_every == 7

    def services_of(self, node: int) -> list[int]:
        """The Services node ``node`` calls (pairs of nodes call the same ones)."""
        others = self.services - self.hot
        first = (node // 2) * self.per_node
        seen = {self.hot + (first + j) % others for j in range(min(self.per_node, others))}
        return list(range(self.hot)) + sorted(seen)

    def switches(self, node: int) -> bool:
        return node % 2 == 1

    def segments(self, node: int) -> list[tuple[str, int, int]]:
        """``(datapath, first step, end step (exclusive))`` of a node's series."""
        end = self.steps + 1
        if not self.switches(node):
            return [(KUBE_PROXY, 0, end)]
        return [(KUBE_PROXY, 0, self.switch_step), (EBPF, self.switch_step, end)]


@dataclass
class Counts:
    series: int = 0
    samples: int = 0
    service_series: int = 0
    node_series: int = 0


def _bucket_shares(median: float, sigma: float = 0.6) -> np.ndarray:
    """Probability of each bucket (16, +Inf last) for a lognormal handshake time."""
    cdf = [0.5 * (1.0 + math.erf((math.log(b) - math.log(median)) / (sigma * math.sqrt(2))))
           for b in CONNECT_BUCKETS]
    edges = np.array([0.0, *cdf, 1.0])
    return np.diff(edges)


_KP = _bucket_shares(0.0004)
_FAST = _bucket_shares(0.00036)
_SLOW = _bucket_shares(0.0008)


def _labels(labels: dict[str, str], node: int) -> str:
    merged = {**labels, "job": JOB, "instance": f"node-{node:04d}:9977"}
    return "{" + ",".join(f'{k}="{v}"' for k, v in merged.items()) + "}"


class _Writer:
    """One open part file per metric family; lines go to their family's part."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.parts: dict[str, tuple[str, IO[str]]] = {}
        self.counts = Counts()

    def family(self, name: str, kind: str) -> IO[str]:
        if name not in self.parts:
            path = self.directory / f"{len(self.parts):02d}-{name}.part"
            self.parts[name] = (kind, path.open("w", encoding="utf-8"))
        return self.parts[name][1]

    def series(self, family: str, kind: str, name: str, labels: str, values: Iterator[float] | list,
               times: list[str], service: bool) -> None:
        out = self.family(family, kind)
        prefix = name + labels + " "
        out.write("".join([f"{prefix}{v} {t}\n" for v, t in zip(values, times)]))
        self.counts.series += 1
        self.counts.samples += len(times)
        if service:
            self.counts.service_series += 1
        else:
            self.counts.node_series += 1

    def finish(self, target: IO[str]) -> None:
        for name, (kind, handle) in self.parts.items():
            handle.close()
            target.write(f"# TYPE {name} {kind}\n")
            path = Path(handle.name)
            with path.open(encoding="utf-8") as part:
                while chunk := part.read(1 << 22):
                    target.write(chunk)
            path.unlink()
        target.write("# EOF\n")


def _service_series(w: _Writer, shape: Shape, node: int, index: int, dp: str, lo: int, hi: int,
                    times: list[str], rng: np.random.Generator) -> None:
    ns, svc = shape.service(index)
    rate = shape.connections_per_minute * shape.interval / 60.0 * (5 if index < shape.hot else 1)
    n = hi - lo
    conns = rng.poisson(rate, n)
    conns[0] = 0  # every series starts at zero
    shares = _KP if dp == KUBE_PROXY else (_SLOW if shape.regressed(index) else _FAST)
    per_bucket = rng.multinomial(conns, shares).cumsum(axis=0)
    running = per_bucket.cumsum(axis=1)  # cumulative over le
    base = {"namespace": ns, "service": svc, "datapath": dp}
    t = times[lo:hi]
    for i, le in enumerate((*CONNECT_BUCKETS, math.inf)):
        lab = _labels({**base, "le": "+Inf" if le == math.inf else repr(le)}, node)
        w.series(HIST, "histogram", HIST + "_bucket", lab, running[:, i].tolist(), t, True)
    total = running[:, -1]
    lab = _labels(base, node)
    w.series(HIST, "histogram", HIST + "_count", lab, total.tolist(), t, True)
    w.series(HIST, "histogram", HIST + "_sum", lab, [f"{x * 0.0005:.6f}" for x in total.tolist()],
             t, True)
    bad = dp == EBPF and shape.regressed(index)
    refused = rng.binomial(conns, 0.02 if bad else 0.005).cumsum()
    timeout = rng.binomial(conns, 0.001).cumsum()
    for result, values in zip(RESULTS, (total, refused, timeout)):
        w.series("kpr_service_connect_attempts", "counter", "kpr_service_connect_attempts_total",
                 _labels({**base, "result": result}, node), values.tolist(), t, True)
    drops = rng.binomial(conns, 0.03 if bad else 0.002).cumsum()
    flows = (conns * 12).cumsum()
    for verdict, values in zip(VERDICTS, (flows, drops)):
        w.series("kpr_service_flows", "counter", "kpr_service_flows_total",
                 _labels({**base, "verdict": verdict}, node), values.tolist(), t, True)
    reasons = [("POLICY_DENIED", drops if not bad else (drops // 4))]
    if bad:
        reasons.append(("SERVICE_BACKEND_NOT_FOUND", drops - drops // 4))
    for reason, values in reasons:
        w.series("kpr_service_drops", "counter", "kpr_service_drops_total",
                 _labels({**base, "reason": reason}, node), values.tolist(), t, True)


def _node_series(w: _Writer, shape: Shape, node: int, times: list[str]) -> None:
    gauge = "gauge"
    name = f"node-{node:04d}"
    ones = [1] * len(times)
    w.series("kpr_hubble_up", gauge, "kpr_hubble_up", _labels({}, node), ones, times, False)
    w.series("kpr_hubble_lost_events_total", "counter", "kpr_hubble_lost_events_total",
             _labels({"source": "HUBBLE_RING_BUFFER"}, node), [0] * len(times), times, False)
    w.series("kpr_agent_up", gauge, "kpr_agent_up", _labels({"node": name}, node), ones, times,
             False)
    for dp, lo, hi in shape.segments(node):
        t = times[lo:hi]
        w.series("kpr_node_datapath_info", gauge, "kpr_node_datapath_info",
                 _labels({"node": name, "datapath": dp, "source": "feature-gauge"}, node),
                 [1] * len(t), t, False)
        steps = np.arange(len(t))
        for direction in ("INGRESS", "EGRESS"):
            w.series("kpr_node_forwards", "counter", "kpr_node_forwards_total",
                     _labels({"node": name, "datapath": dp, "direction": direction}, node),
                     (steps * 9000).tolist(), t, False)
        w.series("kpr_node_drops", "counter", "kpr_node_drops_total",
                 _labels({"node": name, "datapath": dp, "reason": "Policy denied",
                          "direction": "INGRESS"}, node), (steps * 3).tolist(), t, False)
    switched = shape.switches(node)
    for phase in PHASES:
        value = 1 if phase == ("canary" if shape.nodes > 1 else "before") else 0
        w.series("kpr_migration_phase", gauge, "kpr_migration_phase",
                 _labels({"phase": phase}, node), [value] * len(times), times, False)
    if switched:
        at = f"{shape.start + shape.switch_step * shape.interval:.0f}"
        t = times[shape.switch_step:]
        w.series("kpr_node_datapath_switch_timestamp_seconds", gauge,
                 "kpr_node_datapath_switch_timestamp_seconds", _labels({"node": name}, node),
                 [at] * len(t), t, False)


def write(shape: Shape, target: Path, *, seed: int = 1) -> Counts:
    """Write the fleet's OpenMetrics text to ``target``; returns the series and sample counts."""
    times = [f"{shape.start + i * shape.interval:.0f}" for i in range(shape.steps + 1)]
    writer = _Writer(target.parent)
    rng = np.random.default_rng(seed)
    try:
        for node in range(shape.nodes):
            _node_series(writer, shape, node, times)
            for dp, lo, hi in shape.segments(node):
                for index in shape.services_of(node):
                    _service_series(writer, shape, node, index, dp, lo, hi, times, rng)
        with target.open("w", encoding="utf-8") as out:
            writer.finish(out)
    finally:
        for _, handle in writer.parts.values():
            if not handle.closed:
                handle.close()
            Path(handle.name).unlink(missing_ok=True)
    return writer.counts


def expected_service_series(shape: Shape) -> int:
    """How many service series ``write`` produces (the smoke test holds them equal)."""
    total = 0
    for node in range(shape.nodes):
        for dp, _, _ in shape.segments(node):
            for index in shape.services_of(node):
                extra = 1 if dp == EBPF and shape.regressed(index) else 0
                total += SERIES_PER_SERVICE + extra
    return total
