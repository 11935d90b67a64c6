"""The probes' measurements as metrics: the load option's connections, streamed bytes and
time (``exporter.verify.load``) and the actively measured programming latency
(``exporter.verify.programming_watch``).

``node`` and ``datapath`` are the probing node and its datapath when the measurement
was made: the load and the programming chase go to the echo's ClusterIP from the pod
network, translated on the probing node, as ``CheckResult.served_by`` attributes a
ClusterIP check. Series appear with the first measurement, never pre-initialised at zero
(no measurement is not a zero). A collector of its own, so no ``_created`` series.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from exporter import metrics_contract as mc

LABELS = ("node", "datapath")
Key = tuple[str, str]


class _Histograms:
    """Bucket counts and sums per key, rendered cumulative."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.rows: dict[Key, list[float]] = {}

    def observe(self, key: Key, value: float) -> None:
        row = self.rows.setdefault(key, [0.0] * (len(self.bounds) + 2))
        row[bisect.bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def family(self, name: str, helptext: str) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, helptext, labels=LABELS)
        le = [str(b) for b in self.bounds] + ["+Inf"]
        for key, row in sorted(self.rows.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip(le, row[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric(list(key), buckets, row[-1])
        return family


def _counter(name: str, helptext: str, labels: Sequence[str],
             values: Mapping[Any, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, helptext, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class MeasureMetrics:
    """Feeds: ``connection``, ``stream`` (the load option), ``programmed``, ``missed``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.connections: dict[tuple[str, str, str], float] = {}
        self.streams: dict[tuple[str, str, str], float] = {}
        self.bytes: dict[Key, float] = {}
        self.seconds: dict[Key, float] = {}
        self.missed_count: dict[Key, float] = {}
        self.connect = _Histograms(mc.PROBE_LOAD_CONNECT_DURATION.buckets)
        self.programming = _Histograms(mc.PROBE_PROGRAMMING_LATENCY.buckets)
        if registry is not None:
            registry.register(self)

    def connection(self, node: str, datapath: str, result: str,
                   connect_seconds: float | None) -> None:
        key = (node, datapath, result)
        self.connections[key] = self.connections.get(key, 0) + 1
        if connect_seconds is not None:
            self.connect.observe((node, datapath), connect_seconds)

    def stream(self, node: str, datapath: str, result: str, sent: int, seconds: float) -> None:
        """A stream ended: ``sent`` bytes the echo confirmed over ``seconds`` (both 0 for a
        stream that failed: only completed streams count towards the throughput)."""
        self.streams[(node, datapath, result)] = self.streams.get((node, datapath, result),
                                                                  0) + 1
        if sent or seconds:
            self.bytes[(node, datapath)] = self.bytes.get((node, datapath), 0) + sent
            self.seconds[(node, datapath)] = self.seconds.get((node, datapath), 0) + seconds

    def programmed(self, node: str, datapath: str, seconds: float) -> None:
        self.programming.observe((node, datapath), max(0.0, seconds))

    def missed(self, node: str, datapath: str) -> None:
        self.missed_count[(node, datapath)] = self.missed_count.get((node, datapath), 0) + 1

    def collect(self) -> Iterator[Metric]:
        yield _counter(mc.PROBE_LOAD_CONNECTIONS.family, "Connections the load option opened "
                       "and closed to the echo Service, by result.", (*LABELS, "result"),
                       self.connections)
        yield self.connect.family(mc.PROBE_LOAD_CONNECT_DURATION.family,
                                  "TCP handshake time of the load option's connections.")
        yield _counter(mc.PROBE_LOAD_STREAMS.family, "Payload streams the load option sent to "
                       "the echo Service, by result.", (*LABELS, "result"), self.streams)
        yield _counter(mc.PROBE_LOAD_BYTES.family, "Payload bytes the echo confirmed receiving "
                       "from completed load streams.", LABELS, self.bytes)
        yield _counter(mc.PROBE_LOAD_SECONDS.family, "Seconds the completed load streams took "
                       "(bytes / seconds is their throughput).", LABELS, self.seconds)
        yield self.programming.family(
            mc.PROBE_PROGRAMMING_LATENCY.family,
            "Seconds from an EndpointSlice change adding an echo endpoint to the first "
            "probe through the ClusterIP that reached it.")
        yield _counter(mc.PROBE_PROGRAMMING_MISSED.family, "New echo endpoints no probe "
                       "through the ClusterIP reached within the chase timeout.", LABELS,
                       self.missed_count)
