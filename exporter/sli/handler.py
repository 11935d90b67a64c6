"""What an SLI handler is, and what every handler shares, so a handler module is its own
logic only.

A handler is one SLI (the ``Handler`` protocol): constructed with the settings, the
registry and the shared ``FlowContext``; ``process(flow)`` is synchronous, pure accounting
into plain dicts (no I/O, no prometheus_client call per flow); ``status()`` is one line for
the startup log and ``check-config``. Handlers that keep state in time (the handshake
table) also implement ``Ticking``; those that care about lost Hubble events implement
``LossAware``.

A handler subclasses ``SliHandler``, names itself, declares its metrics in ``setup`` from
the metric contract (``exporter.metrics_contract``) and counts in ``process``::

    class Flows(SliHandler):
        name = "flows"

        def setup(self, settings: SliSettings) -> None:
            self._vec = self.counter(SERVICE_FLOWS, "Flows towards the service, by verdict.")

        def process(self, flow: Flow) -> None:
            ...
            self._vec.add(svc, (datapath, verdict), flow.count)

The base class keeps the shared ``FlowContext`` as ``self._ctx``, registers the declared
metrics' collector once ``setup`` ran, and the storage (``CounterVec.add``,
``HistogramVec.observe``) applies the service cap. Pure module.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry

from exporter.metrics_contract import COUNTER, HISTOGRAM, Metric
from exporter.model import Flow
from exporter.sli.context import FlowContext
from exporter.sli.series import CounterVec, HistogramVec, Vec, VecCollector
from exporter.sli.settings import SliSettings


@runtime_checkable
class Handler(Protocol):
    name: ClassVar[str]

    def __init__(
        self, settings: SliSettings, registry: CollectorRegistry, context: FlowContext
    ) -> None: ...

    def process(self, flow: Flow) -> None: ...

    def status(self) -> str: ...


@runtime_checkable
class Ticking(Protocol):
    """A handler with time-bounded state: ``tick(now)`` runs with wall-clock seconds."""

    def tick(self, now: float) -> None: ...


@runtime_checkable
class LossAware(Protocol):
    """A handler whose state becomes unreliable when Hubble loses events on a node."""

    def events_lost(self, node: str) -> None: ...


class SliHandler:
    """Base of the SLI handlers (it satisfies ``Handler``)."""

    name: ClassVar[str]

    def __init__(
        self, settings: SliSettings, registry: CollectorRegistry, context: FlowContext
    ) -> None:
        self._ctx = context
        self._vecs: list[Vec] = []
        self.setup(settings)
        registry.register(VecCollector(self._vecs))

    def setup(self, settings: SliSettings) -> None:
        """Declare the metrics (``counter``/``histogram``) and read the settings."""

    def counter(self, metric: Metric, help: str) -> CounterVec:
        """The storage of ``metric``, a flow-derived counter of the contract."""
        if metric.type != COUNTER:
            raise ValueError(f"{metric.name} is a {metric.type}, not a counter")
        vec = self._ctx.counter(metric, help)
        self._vecs.append(vec)
        return vec

    def histogram(self, metric: Metric, help: str) -> HistogramVec:
        """The storage of ``metric``, a flow-derived histogram of the contract."""
        if metric.type != HISTOGRAM:
            raise ValueError(f"{metric.name} is a {metric.type}, not a histogram")
        vec = self._ctx.histogram(metric, help)
        self._vecs.append(vec)
        return vec

    def process(self, flow: Flow) -> None:
        raise NotImplementedError

    def status(self) -> str:
        raise NotImplementedError
