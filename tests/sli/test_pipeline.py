"""The pipeline: configuration, error isolation, events, snapshot and fast rendering.

Matrix: unknown handler names rejected (listing the known ones); other invalid
settings are the settings tree's to report, once; a failing collaborator (the Service directory) never stops the
stream, is counted per handler and logged at a limited rate; a subset of
handlers; status lines; node-status events ignored; self-metrics pre-initialised;
snapshot of the examples (and the window between two snapshots, overflow left
out); ``render()`` holds exactly the samples of ``generate_latest``; static roles.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter import model
from exporter.config_constraints import problems as check
from exporter.model import NodeStatus, ServiceRef
from exporter.sli import (
    HANDLERS,
    Pipeline,
    SliSettings,
    StaticDatapathResolver,
    StaticServiceDirectory,
    UnknownHandlerError,
)
from exporter.snapshot import SliKey
from tests.sli.conftest import replace, samples_of, value


def test_unknown_handler_is_rejected_with_the_known_names():
    with pytest.raises(UnknownHandlerError) as info:
        Pipeline(SliSettings(handlers=("flows", "latency")), CollectorRegistry(),
                 datapaths=StaticDatapathResolver({}))
    assert "'latency'" in str(info.value)
    assert "known: flows, drops, tcp, http" in str(info.value)


def test_invalid_settings_list_every_problem():
    settings = SliSettings(connect_timeout_seconds=30, table_max_age_seconds=20,
                           max_services_per_metric=0, l7_reporter="both")
    problems = check(settings, "sli")
    assert len(problems) == 3, problems
    assert check(SliSettings(), "sli") == []


class FailingDirectory:
    """A directory whose backing store is broken."""

    def service_for_backend(self, ip, port):
        raise RuntimeError("EndpointSlice cache unavailable")

    def service_for_frontend(self, ip, port):
        raise RuntimeError("EndpointSlice cache unavailable")


def test_a_failing_collaborator_never_stops_the_stream(make, examples, clock, caplog):
    pipeline, registry = make(directory=FailingDirectory(), error_log_interval_seconds=60)
    caplog.set_level(logging.WARNING, logger="exporter.sli.pipeline")
    for _ in range(3):
        pipeline.process(examples["08"])  # eBPF, unlinked: reaches the directory
    pipeline.process(examples["01"])  # kube-proxy flows are unaffected
    assert value(registry, "kpr_handler_errors_total", handler="flows") == 3
    assert value(registry, "kpr_handler_errors_total", handler="tcp") == 3
    assert value(registry, "kpr_handler_errors_total", handler="drops") == 0
    assert value(registry, "kpr_service_flows_total", namespace="shop", service="cart",
                 datapath="kube-proxy", verdict="FORWARDED") == 1
    assert len([r for r in caplog.records if "handler flows" in r.getMessage()]) == 1
    clock.advance(61)
    pipeline.process(examples["08"])
    assert len([r for r in caplog.records if "handler flows" in r.getMessage()]) == 2


def test_a_subset_of_handlers(examples):
    registry = CollectorRegistry()
    pipeline = Pipeline(SliSettings(handlers=("drops",)), registry,
                        datapaths=StaticDatapathResolver({"node-b": model.EBPF}))
    for flow in examples.values():
        pipeline.process(flow)
    names = {m.name for m in registry.collect()}
    assert "kpr_service_drops" in names
    assert "kpr_service_flows" not in names
    assert "kpr_service_connect_duration_seconds" not in names
    assert pipeline.status() == ["drops: dropped L3/L4 flows attributed to a Service, by reason"]


def test_status_has_one_line_per_handler(make):
    pipeline, _ = make()
    lines = pipeline.status()
    assert [line.split(":")[0] for line in lines] == list(HANDLERS)


def test_node_status_events_are_ignored_and_self_metrics_start_at_zero(make):
    pipeline, registry = make()
    pipeline.handle(NodeStatus(state=2, node_names=("node-a",)))
    for handler in ("flows", "drops", "tcp", "http", "attribution"):
        assert value(registry, "kpr_handler_errors_total", handler=handler) == 0
    assert value(registry, "kpr_unattributed_connections_total",
                 datapath="ebpf", result="timeout") == 0
    assert value(registry, "kpr_connection_table_entries", table="handshake") == 0


def test_snapshot_of_the_examples(make, examples):
    pipeline, _ = make()
    for flow in examples.values():
        pipeline.process(flow)
    snap = pipeline.snapshot(1234.0)
    assert snap.time == 1234.0
    assert set(snap.services) == {
        SliKey("shop", "cart", "kube-proxy"), SliKey("shop", "cart", "ebpf"),
        SliKey("shop", "empty", "ebpf"),
    }
    kp = snap.services[SliKey("shop", "cart", "kube-proxy")]
    assert kp.attempts == {"established": 1}
    assert kp.flows == 1
    assert kp.requests == {"2xx": 1}
    assert sum(kp.connect_counts) == 1
    assert len(kp.connect_counts) == len(snap.connect_bounds) + 1
    assert kp.connect_counts[snap.connect_bounds.index(0.0025)] == 1
    assert kp.connect_sum == 0.002000094
    assert kp.request_sum == 0.005
    empty = snap.services[SliKey("shop", "empty", "ebpf")]
    assert empty.drops == {"SERVICE_BACKEND_NOT_FOUND": 1}
    assert empty.flows == 1
    assert sum(empty.connect_counts) == 0


def test_snapshot_window_and_overflow(make, examples):
    pipeline, _ = make(max_services_per_metric=1)
    syn = examples["01"]
    pipeline.process(syn)
    first = pipeline.snapshot(1.0)
    pipeline.process(replace(syn, src_port=1))
    pipeline.process(replace(syn, src_port=2, destination_service=ServiceRef("shop", "x")))
    window = pipeline.snapshot(2.0).minus(first)
    assert set(window.services) == {SliKey("shop", "cart", "kube-proxy")}
    assert window.services[SliKey("shop", "cart", "kube-proxy")].flows == 1


def test_render_holds_the_same_samples_as_generate_latest(make, examples):
    pipeline, registry = make(max_services_per_metric=1)
    for flow in examples.values():
        pipeline.process(flow)
    pipeline.process(replace(examples["01"], destination_service=ServiceRef('we"i\\nrd', "x")))
    fast = pipeline.render().decode()
    assert samples_of(fast) == samples_of(generate_latest(registry).decode())
    assert 'kpr_service_flows_total{namespace="shop",service="cart",datapath="kube-proxy",' \
           'verdict="FORWARDED"} 1' in fast


def test_static_roles():
    resolver = StaticDatapathResolver({"n1": model.EBPF})
    assert resolver.datapath("n1") == "ebpf"
    assert resolver.datapath("n2") == "unknown"
    cart = ServiceRef("shop", "cart")
    directory = StaticServiceDirectory(frontends={("10.96.0.1", 80): cart},
                                       backends={("10.0.0.1", 0): cart})
    assert directory.service_for_frontend("10.96.0.1", 80) == cart
    assert directory.service_for_frontend("10.96.0.1", 81) is None
    assert directory.service_for_backend("10.0.0.1", 8080) == cart
    assert directory.service_for_backend("10.0.0.2", 8080) is None


def test_flows_and_lost_events_are_counted_per_node_for_the_lost_events_gate(make, examples):
    pipeline, registry = make()
    flow = next(iter(examples.values()))
    for _ in range(3):
        pipeline.process(replace(flow, node_name="node-a"))
    pipeline.process(replace(flow, node_name="node-b", count=5))  # aggregated: five flows
    pipeline.handle(model.LostEvents("node-a", 3, 2))
    pipeline.handle(model.LostEvents("", 2, 4))  # Relay's own loss names no node
    snap = pipeline.snapshot(10.0)
    assert snap.nodes == {"node-a": (3, 2, -1), "node-b": (5, 0, -1),  # agent: not read here
                          "__unattributed__": (0, 4, -1)}
    text = pipeline.render().decode()
    got = samples_of(text, {"kpr_node_hubble_flows", "kpr_node_hubble_lost_events"})
    assert got == {
        ("kpr_node_hubble_flows_total", (("node", "node-a"),), 3.0),
        ("kpr_node_hubble_flows_total", (("node", "node-b"),), 5.0),
        ("kpr_node_hubble_lost_events_total", (("node", "__unattributed__"),), 4.0),
        ("kpr_node_hubble_lost_events_total", (("node", "node-a"),), 2.0),
        # a node that lost nothing says so: the lost share is 0, not "no data"
        ("kpr_node_hubble_lost_events_total", (("node", "node-b"),), 0.0),
    }
    assert samples_of(generate_latest(registry).decode(), {"kpr_node_hubble_flows"}) == {
        s for s in got if s[0] == "kpr_node_hubble_flows_total"}


def test_node_names_past_the_cap_are_folded(make, examples, monkeypatch):
    monkeypatch.setattr("exporter.sli.pipeline.MAX_NODES", 2)
    pipeline, _ = make()
    flow = next(iter(examples.values()))
    for node in ("n1", "n2", "n3", "n4", "n1"):
        pipeline.process(replace(flow, node_name=node))
    assert pipeline.snapshot(1.0).nodes == {"n1": (2, 0, -1), "n2": (1, 0, -1),
                                            "__other__": (2, 0, -1)}
