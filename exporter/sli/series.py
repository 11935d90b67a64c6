"""Plain-dict metric storage for the per-flow hot path, and its exposition.

Handlers never call prometheus_client per flow. Each metric is a ``CounterVec``
or ``HistogramVec``: a dict from a small key tuple ``(ServiceRef, datapath,
*extra)`` to an int (counters) or a list of bucket counts plus the sum
(histograms). ``VecCollector.collect()`` builds fresh metric families from those
dicts at scrape time. ``ServiceCap`` bounds the distinct services of one metric
and remembers when each was last seen, so quiet services can be removed.

Label order is fixed by ``CONTEXT_LABELS``: ``namespace``, ``service``,
``datapath``, then the metric's own labels.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from exporter.metrics_contract import (
    CONNECT_BUCKETS,
    OTHER_SERVICE,
    REQUEST_BUCKETS,
    SLI_CONTEXT,
    le_label,
)
from exporter.model import ServiceRef

#: The label names every flow-derived SLI starts with, in this order.
CONTEXT_LABELS = SLI_CONTEXT

# The buckets are the metric contract's (``exporter.metrics_contract``); re-exported for
# older imports.
__all__ = ["CONNECT_BUCKETS", "CONTEXT_LABELS", "OTHER_SERVICE", "REQUEST_BUCKETS", "CounterVec",
           "HistogramVec", "ServiceCap", "Vec", "VecCollector"]


class ServiceCap:
    """Admits at most ``limit`` distinct services into one metric.

    ``members`` maps each admitted service to the wall-clock ``stamp`` of the last
    tick in which it had a sample. Only the vecs below read them, on the hot path::

        if cap.members.get(svc) != cap.stamp:
            svc = cap.admit(svc)
    """

    __slots__ = ("metric", "limit", "members", "stamp", "_others", "_others_seen", "_overflow")

    def __init__(self, metric: str, limit: int, overflow: dict[str, int]) -> None:
        self.metric = metric
        self.limit = limit
        self.members: dict[ServiceRef, float] = {}
        self.stamp = 0.0
        self._others: dict[str, ServiceRef] = {}  # namespace -> its __other__ ref
        self._others_seen: dict[ServiceRef, float] = {}
        self._overflow = overflow
        overflow.setdefault(metric, 0)

    def admit(self, svc: ServiceRef) -> ServiceRef:
        """The service to record under: ``svc`` itself, or its namespace's ``__other__``."""
        members = self.members
        if svc in members or len(members) < self.limit:
            members[svc] = self.stamp
            return svc
        other = self._others.get(svc.namespace)
        if other is None:
            other = self._others[svc.namespace] = ServiceRef(svc.namespace, OTHER_SERVICE)
        self._others_seen[other] = self.stamp
        self._overflow[self.metric] += 1
        return other

    def expire(self, idle_before: float) -> set[ServiceRef]:
        """Forget services (and ``__other__`` groups) last seen before ``idle_before``."""
        gone = set()
        for seen_map in (self.members, self._others_seen):
            idle = [svc for svc, seen in seen_map.items() if seen < idle_before]
            for svc in idle:
                del seen_map[svc]
            gone.update(idle)
        return gone


class CounterVec:
    """A counter family: key ``(service, datapath, *extra)`` -> count."""

    __slots__ = ("name", "help", "labels", "values", "cap")

    kind = "counter"

    def __init__(self, name: str, help: str, extra_labels: tuple[str, ...], cap: ServiceCap):
        self.name = name
        self.help = help
        self.labels = (*CONTEXT_LABELS, *extra_labels)
        self.values: dict[tuple[Any, ...], int] = {}
        self.cap = cap

    def add(self, svc: ServiceRef, labels: tuple[str, ...], amount: int = 1) -> None:
        """Count ``amount`` for ``svc`` (or its namespace's ``__other__`` past the cap)
        under ``labels`` = (datapath, *the metric's own label values)."""
        cap = self.cap
        if cap.members.get(svc) != cap.stamp:
            svc = cap.admit(svc)
        key = (svc, *labels)
        values = self.values
        values[key] = values.get(key, 0) + amount

    def remove_services(self, services: set[ServiceRef]) -> None:
        for key in [k for k in self.values if k[0] in services]:
            del self.values[key]

    def family(self) -> Metric:
        fam = CounterMetricFamily(self.name, self.help, labels=self.labels)
        for key, value in list(self.values.items()):
            svc = key[0]
            fam.add_metric((svc.namespace, svc.name, *key[1:]), value)
        return fam


class HistogramVec:
    """A histogram family: key -> ``[count per bucket (last is +Inf)..., sum]``.

    Bucket counts are stored per bucket (not cumulative) so an observation is one
    increment; ``family()`` makes them cumulative.
    """

    __slots__ = ("name", "help", "labels", "values", "cap", "bounds", "width", "_le")

    kind = "histogram"

    def __init__(
        self, name: str, help: str, extra_labels: tuple[str, ...], cap: ServiceCap,
        bounds: tuple[float, ...],
    ) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"{name}: bucket bounds must be strictly increasing")
        self.name = name
        self.help = help
        self.labels = (*CONTEXT_LABELS, *extra_labels)
        self.values: dict[tuple[Any, ...], list[Any]] = {}
        self.cap = cap
        self.bounds = bounds
        self.width = len(bounds) + 1  # buckets including +Inf; index ``width`` is the sum
        self._le = [le_label(b) for b in bounds] + [le_label(float("inf"))]

    def new_row(self) -> list[Any]:
        row: list[Any] = [0] * self.width
        row.append(0.0)
        return row

    def observe(self, svc: ServiceRef, labels: tuple[str, ...], seconds: float,
                count: int = 1) -> None:
        """``count`` observations of ``seconds`` for ``svc`` (or its ``__other__``) under
        ``labels`` = (datapath, *the metric's own label values)."""
        cap = self.cap
        if cap.members.get(svc) != cap.stamp:
            svc = cap.admit(svc)
        key = (svc, *labels)
        row = self.values.get(key)
        if row is None:
            row = self.values[key] = self.new_row()
        row[bisect_left(self.bounds, seconds)] += count
        row[self.width] += seconds * count

    def remove_services(self, services: set[ServiceRef]) -> None:
        for key in [k for k in self.values if k[0] in services]:
            del self.values[key]

    def family(self) -> Metric:
        fam = HistogramMetricFamily(self.name, self.help, labels=self.labels)
        le = self._le
        width = self.width
        for key, row in list(self.values.items()):
            svc = key[0]
            buckets = []
            total: float = 0
            for i in range(width):
                total += row[i]
                buckets.append((le[i], total))
            fam.add_metric((svc.namespace, svc.name, *key[1:]), buckets, row[width])
        return fam


Vec = CounterVec | HistogramVec


class VecCollector:
    """A prometheus_client collector over some vecs: fresh families on every scrape."""

    def __init__(self, vecs: Iterable[Vec]) -> None:
        self.vecs = tuple(vecs)

    def collect(self) -> Iterator[Metric]:
        for vec in self.vecs:
            yield vec.family()

    def describe(self) -> Iterator[Metric]:
        for vec in self.vecs:
            if vec.kind == "counter":
                yield CounterMetricFamily(vec.name, vec.help, labels=vec.labels)
            else:
                yield HistogramMetricFamily(vec.name, vec.help, labels=vec.labels)
