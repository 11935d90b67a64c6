"""``SliHandler``: a new SLI is its own logic only.

Matrix: a handler written as ``setup`` + ``process`` alone is registered, exports its
metric under the contract's name and labels, and satisfies the ``Handler`` protocol; the
storage applies the service cap for it (services beyond the cap fold into ``__other__``
and count as overflow) and a histogram lands in the contract's buckets; declaring a metric
of the wrong type is refused.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from exporter import metrics_contract as mc
from exporter.model import Flow, ServiceRef
from exporter.sli import SliSettings, StaticDatapathResolver
from exporter.sli.context import FlowContext
from exporter.sli.handler import Handler, SliHandler
from tests.sli.conftest import NODES, replace, value


class Towards(SliHandler):
    """Counts every non-reply flow towards a Service: the whole handler."""

    name = "towards"

    def setup(self, settings: SliSettings) -> None:
        self._vec = self.counter(mc.SERVICE_FLOWS, "Flows towards the service.")

    def process(self, flow: Flow) -> None:
        svc = self._ctx.towards(flow)
        if svc is not None:
            self._vec.add(svc, (self._ctx.datapath(flow), "FORWARDED"), flow.count)

    def status(self) -> str:
        return "towards: flows towards a Service"


def _context(**settings: object) -> FlowContext:
    return FlowContext(SliSettings(**settings), datapaths=StaticDatapathResolver(NODES))


def _to(examples, name: str) -> Flow:
    return replace(examples["01"], destination_service=ServiceRef("shop", name))


def test_a_handler_of_its_own_logic_only_is_exported_by_the_contract(examples):
    registry = CollectorRegistry()
    context = _context()
    handler = Towards(context.settings, registry, context)
    assert isinstance(handler, Handler)
    handler.process(_to(examples, "cart"))
    handler.process(_to(examples, "cart"))
    assert value(registry, mc.SERVICE_FLOWS.name, namespace="shop", service="cart",
                 datapath="kube-proxy", verdict="FORWARDED") == 2
    assert context.vecs[mc.SERVICE_FLOWS.name].labels == mc.SERVICE_FLOWS.labels


def test_the_storage_applies_the_service_cap(examples):
    registry = CollectorRegistry()
    context = _context(max_services_per_metric=1)
    handler = Towards(context.settings, registry, context)
    for name in ("cart", "catalog", "auth"):
        handler.process(_to(examples, name))
    labels = {"namespace": "shop", "datapath": "kube-proxy", "verdict": "FORWARDED"}
    assert value(registry, mc.SERVICE_FLOWS.name, service="cart", **labels) == 1
    assert value(registry, mc.SERVICE_FLOWS.name, service="catalog", **labels) is None
    assert value(registry, mc.SERVICE_FLOWS.name, service=mc.OTHER_SERVICE, **labels) == 2
    assert context.stats.overflow[mc.SERVICE_FLOWS.name] == 2


def test_a_histogram_lands_in_the_contract_buckets():
    context = _context()
    vec = context.histogram(mc.SERVICE_CONNECT_DURATION, "handshakes")
    svc = ServiceRef("shop", "cart")
    vec.observe(svc, ("ebpf",), 0.0007)
    vec.observe(svc, ("ebpf",), 9.0, count=2)
    row = vec.values[(svc, "ebpf")]
    assert vec.bounds == mc.CONNECT_BUCKETS
    assert row[mc.CONNECT_BUCKETS.index(0.001)] == 1  # 0.0007 <= 0.001
    assert row[len(mc.CONNECT_BUCKETS)] == 2  # +Inf
    assert row[-1] == pytest.approx(18.0007)


def test_a_metric_of_the_wrong_type_is_refused():
    class Wrong(SliHandler):
        name = "wrong"

        def setup(self, settings: SliSettings) -> None:
            self.counter(mc.SERVICE_CONNECT_DURATION, "not a counter")

    context = _context()
    with pytest.raises(ValueError, match="is a histogram, not a counter"):
        Wrong(context.settings, CollectorRegistry(), context)
    with pytest.raises(ValueError, match="not a flow-derived SLI"):
        context.counter(mc.WEBHOOK_REQUESTS, "not per service")
