"""The Hubble reader's self-metrics (``kpr_hubble_nodes`` lives with ``hubble_status``).

A *reconnect* is a stream that had delivered messages and was lost; a *dial
failure* is an attempt that ended before its first message (refused, TLS, not a
Hubble server, nothing sent in time). One relay restart is one reconnect, however
many dials it takes to get the stream back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily

from exporter.model import LOST_SOURCE_NAMES


class _FlowsReceived:
    """``kpr_hubble_flows_received_total`` read from a plain int at scrape time
    (a ``Counter.inc()`` per flow would cost more than the flow's conversion)."""

    NAME = "kpr_hubble_flows_received"
    HELP = "Flow messages received from Hubble."

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.NAME, self.HELP)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.NAME, self.HELP)
        family.add_metric([], self._count())
        yield family


class HubbleMetrics:
    """``kpr_hubble_up``, ``_flows_received_total`` (from ``flows_received()``),
    ``_lost_events_total``, ``_reconnects_total`` and ``_dial_failures_total``."""

    def __init__(self, registry: CollectorRegistry, flows_received: Callable[[], int]) -> None:
        self.up = Gauge(
            "kpr_hubble_up", "1 while the Hubble GetFlows stream is connected.", registry=registry
        )
        self.lost = Counter(
            "kpr_hubble_lost_events", "Events Hubble reported lost, by where they were lost.",
            ["source"], registry=registry,
        )
        self.reconnects = Counter(
            "kpr_hubble_reconnects",
            "Hubble streams lost after delivering messages (each followed by a reconnect).",
            registry=registry,
        )
        self.dial_failures = Counter(
            "kpr_hubble_dial_failures",
            "Hubble dial attempts that ended before the stream's first message.",
            registry=registry,
        )
        registry.register(_FlowsReceived(flows_received))
        for name in LOST_SOURCE_NAMES.values():  # rate() works from the first scrape
            self.lost.labels(name)
