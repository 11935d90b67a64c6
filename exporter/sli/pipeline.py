"""The SLI pipeline: runs every configured handler on each flow, isolating failures.

One ``Pipeline`` per exporter. ``process(flow)`` first lets the shared context
learn from trace-sock events, then hands the flow to each handler; a handler
that raises is counted in ``kpr_handler_errors_total{handler}``, logged at most
once per interval, and the stream goes on. ``tick(now)`` advances the wall
clock (quiet services lose their series, old half-open connections are evicted);
it runs by itself every second of a busy stream and at each scrape, and the app
may call it on a timer. ``snapshot(now)`` copies the cumulative counts out for
the judge and the baseline. Self-metrics::

    kpr_handler_errors_total{handler="tcp"} 0
    kpr_connection_table_entries{table="handshake"} 1520
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import metrics_contract as mc
from exporter.model import DATAPATHS, SOCK, Event, Flow, LostEvents
from exporter.roles import Clock, DatapathResolver, ServiceDirectory, system_clock
from exporter.sli.context import EVICTIONS, TABLES, FlowContext, SelfStats
from exporter.sli.handler import LossAware, Ticking
from exporter.sli.registry import handler_class
from exporter.sli.render import TextRenderer, render_simple
from exporter.sli.settings import SliSettings
from exporter.sli.snapshots import build_snapshot
from exporter.sli.tcp import RESULTS
from exporter.snapshot import NodeEvents, SliSnapshot

log = logging.getLogger(__name__)

#: The ``handler`` label of failures while learning trace-sock links.
ATTRIBUTION = "attribution"
#: Wall-clock seconds between automatic ticks of a busy stream.
_TICK_SECONDS = 1.0
#: Flows between two looks at the clock.
_CLOCK_EVERY = 1024
#: Lost events the stream attributed to no node (they concern every node it relays).
UNATTRIBUTED_NODE = "__unattributed__"
#: Most node names counted per node; later ones are folded into ``__other__``.
MAX_NODES = 10_000


class Pipeline:
    """Every configured SLI handler behind one ``process(flow)``."""

    def __init__(
        self,
        settings: SliSettings,
        registry: CollectorRegistry,
        *,
        datapaths: DatapathResolver,
        directory: ServiceDirectory | None = None,
        clock: Clock = system_clock,
    ) -> None:
        # The settings tree validated ``settings`` (exporter.config); an unknown handler
        # name raises UnknownHandlerError from the registry, before anything is registered.
        classes = [handler_class(name) for name in settings.handlers]
        self.settings = settings
        self._clock = clock
        self.stats = SelfStats()
        self.context = FlowContext(
            settings, datapaths=datapaths, directory=directory, stats=self.stats
        )
        now = clock()
        self.context.set_stamp(now)
        # Registered first, so a scrape ticks before the handlers' families are built.
        registry.register(_SelfCollector(self))
        self.handlers = [cls(settings, registry, self.context) for cls in classes]
        for handler in self.handlers:
            self.stats.errors[handler.name] = 0
        self.stats.errors[ATTRIBUTION] = 0
        if "tcp" in settings.handlers:
            for datapath in DATAPATHS:
                for result in RESULTS:
                    self.stats.unattributed[(datapath, result)] = 0
        self._steps = [(h.name, h.process) for h in self.handlers]
        self._ticking = [h for h in self.handlers if isinstance(h, Ticking)]
        self._loss_aware = [h for h in self.handlers if isinstance(h, LossAware)]
        self._learn = self.context.links.learn
        self._seen = 0
        self._last_tick = now
        self._idle = settings.idle_seconds
        self._next_idle_check = now + min(self._idle / 4, 60.0)
        self._log_every = settings.error_log_interval_seconds
        self._next_log: dict[str, float] = {}
        self._renderer = TextRenderer()

    # --- the stream -------------------------------------------------------------------

    def process(self, flow: Flow) -> None:
        """Account one flow in every handler; never raises because of a handler."""
        if flow.type == SOCK:
            try:
                self._learn(flow)
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                self._failed(ATTRIBUTION, exc)
        for name, step in self._steps:
            try:
                step(flow)
            except Exception as exc:  # noqa: BLE001
                self._failed(name, exc)
        self._seen += 1
        node_flows = self.stats.node_flows
        node = flow.node_name
        count = node_flows.get(node)
        if count is None:
            node = _node_label(node, node_flows)
            count = node_flows.get(node, 0)
        node_flows[node] = count + flow.count
        if not self._seen % _CLOCK_EVERY:
            now = self._clock()
            if now - self._last_tick >= _TICK_SECONDS:
                self.tick(now)

    def process_all(self, flows: Iterable[Flow]) -> None:
        for flow in flows:
            self.process(flow)

    def handle(self, event: Event) -> None:
        """Dispatch any source event: flows are processed, lost events invalidate state.
        The exact-type test first: this runs once per flow on the ingestion path."""
        kind = type(event)
        if kind is Flow or (kind is not LostEvents and isinstance(event, Flow)):
            self.process(event)  # type: ignore[arg-type]
        elif isinstance(event, LostEvents):
            self.events_lost(event)

    def events_lost(self, lost: LostEvents) -> None:
        """Hubble lost events on ``lost.node_name`` (every node when empty)."""
        lost_by_node = self.stats.node_lost
        node = _node_label(lost.node_name or UNATTRIBUTED_NODE, lost_by_node)
        lost_by_node[node] = lost_by_node.get(node, 0) + max(0, lost.count)
        for handler in self._loss_aware:
            handler.events_lost(lost.node_name)

    def tick(self, now: float) -> None:
        """Advance the wall clock to ``now`` (epoch seconds)."""
        self._last_tick = now
        self.context.set_stamp(now)
        for handler in self._ticking:
            handler.tick(now)
        if now >= self._next_idle_check:
            self.context.expire_idle(now - self._idle)
            self._next_idle_check = now + min(self._idle / 4, 60.0)

    # --- reading ------------------------------------------------------------------------

    def snapshot(self, now: float) -> SliSnapshot:
        """The cumulative per-(namespace, service, datapath) counts at ``now``."""
        snapshot = build_snapshot(self.context.vecs, now)
        flows, lost = self.stats.node_flows, self.stats.node_lost
        snapshot.nodes.update({node: NodeEvents(flows.get(node, 0), lost.get(node, 0))
                               for node in flows.keys() | lost.keys()})
        return snapshot

    def render(self) -> bytes:
        """Every SLI and self-metric in the Prometheus text format (0.0.4), fast.

        The same samples ``generate_latest`` produces from the collectors this
        pipeline registered, at a fraction of the cost; for a ``/metrics`` that
        concatenates it with the rest of the registry's exposition.
        """
        self.tick(self._clock())
        lines: list[str] = []
        for name, help, kind, labels, samples in _self_metrics(self.stats):
            render_simple(lines, name, help, kind, labels, samples)
        self._renderer.render(self.context.vecs.values(), lines)
        lines.append("")
        return "\n".join(lines).encode()

    def status(self) -> list[str]:
        """One line per handler, for the startup log and ``check-config``."""
        return [handler.status() for handler in self.handlers]

    # --- failures -----------------------------------------------------------------------

    def _failed(self, name: str, exc: Exception) -> None:
        errors = self.stats.errors
        errors[name] = errors.get(name, 0) + 1
        now = self._clock()
        if now >= self._next_log.get(name, 0.0):
            self._next_log[name] = now + self._log_every
            log.warning(
                "SLI handler %s failed on a flow (%d failures so far; at most one line per %gs)",
                name, errors[name], self._log_every, exc_info=exc,
            )


class _SelfCollector:
    """The engine's self-metrics, from ``SelfStats``; ticks the pipeline on each scrape."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def describe(self) -> Iterator[Metric]:
        for name, help, kind, labels, _ in _self_metrics(SelfStats()):
            yield _FAMILY[kind](name, help, labels=labels)

    def collect(self) -> Iterator[Metric]:
        pipeline = self._pipeline
        pipeline.tick(pipeline._clock())
        for name, help, kind, labels, samples in _self_metrics(pipeline.stats):
            family = _FAMILY[kind](name, help, labels=labels)
            for values, value in samples:
                family.add_metric(values, value)
            yield family


_FAMILY = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily}


def _node_label(node: str, seen: dict[str, int]) -> str:
    """``node``, or ``__other__`` once ``MAX_NODES`` names are counted (memory is bounded)."""
    return node if node in seen or len(seen) < MAX_NODES else "__other__"


def _self_metrics(
        stats: SelfStats) -> list[tuple[str, str, str, tuple[str, ...], list[Any]]]:
    """(name, help, kind, label names, [(label values, value)]) of each self-metric."""
    return [
        (
            mc.CONNTABLE_ENTRIES.name,
            "Entries held now in the SLI engine's connection tables.",
            mc.CONNTABLE_ENTRIES.type, mc.CONNTABLE_ENTRIES.labels,
            [((table,), stats.entries[table]()) for table in TABLES if table in stats.entries],
        ),
        (
            mc.CONNTABLE_EVICTIONS.name,
            "Entries removed from a connection table without a judgement, by reason.",
            mc.CONNTABLE_EVICTIONS.type, mc.CONNTABLE_EVICTIONS.labels,
            [((table, reason), stats.evictions.get((table, reason), 0))
             for table, reason in EVICTIONS],
        ),
        (
            mc.UNATTRIBUTED.name,
            "TCP handshakes no rule attributed to a Service (counted, never guessed).",
            mc.UNATTRIBUTED.type, mc.UNATTRIBUTED.labels,
            sorted(stats.unattributed.items()),
        ),
        (
            mc.LABEL_OVERFLOW.name,
            'Samples folded into service="__other__" because the metric reached its cap.',
            mc.LABEL_OVERFLOW.type, mc.LABEL_OVERFLOW.labels,
            [((metric,), count) for metric, count in sorted(stats.overflow.items())],
        ),
        (
            mc.NODE_HUBBLE_FLOWS.name,
            "Flows from the node the SLI engine processed (the lost-events gate compares "
            "the node's lost events with them).",
            mc.NODE_HUBBLE_FLOWS.type, mc.NODE_HUBBLE_FLOWS.labels,
            [((node,), count) for node, count in sorted(stats.node_flows.items())],
        ),
        (
            mc.NODE_HUBBLE_LOST.name,
            "Events Hubble's stream reported lost on the node (__unattributed__: the stream "
            "named no node). 0 for every node flows came from: no loss is a value.",
            mc.NODE_HUBBLE_LOST.type, mc.NODE_HUBBLE_LOST.labels,
            [((node,), stats.node_lost.get(node, 0))
             for node in sorted(stats.node_flows.keys() | stats.node_lost.keys())],
        ),
        (
            mc.HANDLER_ERRORS.name,
            "Flows an SLI handler failed on; the stream continues.",
            mc.HANDLER_ERRORS.type, mc.HANDLER_ERRORS.labels,
            [((handler,), count) for handler, count in sorted(stats.errors.items())],
        ),
    ]
