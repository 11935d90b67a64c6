"""DatapathTracker: state over time, switch times, phase, disagreements and the collector.

Matrix:
- feature gauges only (no Kubernetes): one node switches, then all; a rollback back to
  kube-proxy; an unknown reading in between is not a switch; the first reading is not one
- Kubernetes signals: cilium-config, a CiliumNodeConfig for labelled canary nodes, a
  restart pending until the agent reports, kube-proxy still on a migrated node
- disagreements are logged once when they appear and once when they clear
- exposition of every metric, listeners, state()/restore() keeping the history
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter.cilium import MIGRATION_LABEL, NodeConfig
from exporter.datapath.tracker import DatapathTracker
from exporter.model import EBPF, KUBE_PROXY, UNKNOWN
from exporter.roles import DatapathResolver

NODES = ("worker-1", "worker-2", "worker-3")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def tracker(clock):
    return DatapathTracker(clock=clock)


def sample(registry, name, **labels):
    return registry.get_sample_value(name, labels)


def test_is_a_datapath_resolver_and_unknown_nodes_are_unknown(tracker):
    assert isinstance(tracker, DatapathResolver)
    assert tracker.datapath("nobody") == UNKNOWN
    assert tracker.phase == "unknown"


def test_one_node_switches_then_all(tracker, clock):
    for node in NODES:
        tracker.observe_agent_gauge(node, 0.0)
    assert [tracker.datapath(n) for n in NODES] == [KUBE_PROXY] * 3
    assert tracker.phase == "before"
    assert tracker.switch_times() == {}  # first readings are not switches

    clock.now += 60
    tracker.observe_agent_gauge("worker-1", 1.0)
    assert tracker.datapath("worker-1") == EBPF
    assert tracker.phase == "canary"
    assert tracker.switch_times() == {"worker-1": 1_700_000_060.0}

    clock.now += 60
    tracker.observe_agent_gauge("worker-2", 1.0)
    clock.now += 60
    tracker.observe_agent_gauge("worker-3", 1.0)
    assert tracker.phase == "after"
    assert tracker.switch_times() == {"worker-1": 1_700_000_060.0, "worker-2": 1_700_000_120.0,
                                      "worker-3": 1_700_000_180.0}
    assert tracker.decision("worker-3").source == "feature-gauge"


def test_rollback_back_to_kube_proxy(tracker, clock):
    for node in NODES:
        tracker.observe_agent_gauge(node, 0.0)
    tracker.observe_agent_gauge("worker-1", 1.0)
    assert tracker.phase == "canary"
    clock.now += 300
    tracker.observe_agent_gauge("worker-1", 0.0)
    assert tracker.phase == "rolled-back"
    assert tracker.datapath("worker-1") == KUBE_PROXY
    assert tracker.switch_times()["worker-1"] == clock.now
    # a new canary after the rollback is a canary again
    tracker.observe_agent_gauge("worker-2", 1.0)
    assert tracker.phase == "canary"


def test_full_rollback_is_rolled_back_while_any_node_is_back_on_kube_proxy(tracker):
    for node in NODES:
        tracker.observe_agent_gauge(node, 0.0)
    for node in NODES:
        tracker.observe_agent_gauge(node, 1.0)
    assert tracker.phase == "after"
    tracker.observe_agent_gauge("worker-3", 0.0)
    assert tracker.phase == "rolled-back"
    for node in NODES:
        tracker.observe_agent_gauge(node, 0.0)
    assert tracker.phase == "rolled-back"


def test_an_unknown_reading_in_between_is_not_a_switch(tracker, clock):
    tracker.observe_agent_gauge("worker-1", 1.0)
    clock.now += 10
    tracker.observe_agent_gauge("worker-1", None)  # scrape failed
    assert tracker.datapath("worker-1") == UNKNOWN
    assert tracker.phase == "unknown"
    clock.now += 10
    tracker.observe_agent_gauge("worker-1", 1.0)
    assert tracker.switch_times() == {}
    assert tracker.phase == "after"


def test_canary_through_a_cilium_node_config_with_restart_pending(tracker):
    tracker.set_nodes({n: {"kubernetes.io/hostname": n} for n in NODES})
    tracker.set_cilium_config({"kube-proxy-replacement": "false"})
    tracker.set_node_configs([NodeConfig("kube-system", "kube-proxy-replacement-rollout",
                                         {"matchLabels": {MIGRATION_LABEL: "true"}},
                                         {"kube-proxy-replacement": "true"})])
    tracker.set_kube_proxy_nodes(NODES)
    assert tracker.phase == "before"
    assert tracker.decision("worker-1").source == "cilium-config"

    # the operator labels worker-1 and excludes it from kube-proxy; the agent not yet restarted
    tracker.observe_agent_gauge("worker-1", 0.0)
    tracker.set_nodes({**{n: {} for n in NODES}, "worker-1": {MIGRATION_LABEL: "true"}})
    tracker.set_kube_proxy_nodes(["worker-2", "worker-3"])
    decision = tracker.decision("worker-1")
    assert (decision.datapath, decision.source, decision.configured) == (
        KUBE_PROXY, "feature-gauge", EBPF)
    assert decision.problem_kinds == {"restart-pending", "kube-proxy-missing"}

    tracker.observe_agent_gauge("worker-1", 1.0)  # agent restarted
    decision = tracker.decision("worker-1")
    assert (decision.datapath, decision.problem_kinds) == (EBPF, frozenset())
    assert tracker.phase == "canary"
    assert tracker.decision("worker-2").source == "cilium-config"


def test_kube_proxy_still_running_on_a_migrated_node(tracker):
    tracker.observe_agent_gauge("worker-1", 1.0)
    tracker.set_kube_proxy_nodes(["worker-1"])
    assert tracker.decision("worker-1").problem_kinds == {"kube-proxy-on-ebpf-node"}
    tracker.set_kube_proxy_nodes([])
    assert tracker.decision("worker-1").problem_kinds == frozenset()


def test_disagreements_are_logged_once_per_change(tracker, caplog):
    caplog.set_level(logging.INFO, logger="exporter.datapath.tracker")
    tracker.set_cilium_config({"kube-proxy-replacement": "true"})
    for _ in range(5):
        tracker.observe_agent_gauge("worker-1", 0.0)
        tracker.set_cilium_config({"kube-proxy-replacement": "true"})
    raised = [r for r in caplog.records if r.getMessage() == "datapath disagreement"]
    assert len(raised) == 1
    assert raised[0].kv["kind"] == "restart-pending"
    assert raised[0].levelno == logging.WARNING
    assert "restarts" in raised[0].kv["detail"]
    tracker.observe_agent_gauge("worker-1", 1.0)
    tracker.observe_agent_gauge("worker-1", 1.0)
    cleared = [r for r in caplog.records if r.getMessage() == "datapath disagreement cleared"]
    assert [r.kv for r in cleared] == [{"node": "worker-1", "kind": "restart-pending"}]


def test_exposition(tracker, clock):
    registry = CollectorRegistry()
    registry.register(tracker)
    tracker.observe_agent_gauge("worker-1", 0.0)
    tracker.observe_agent_gauge("worker-2", 0.0)
    clock.now += 5
    tracker.observe_agent_gauge("worker-1", 1.0)
    tracker.set_cilium_config({"kube-proxy-replacement": "strict"})

    assert sample(registry, "kpr_node_datapath_info", node="worker-1", datapath="ebpf",
                  source="feature-gauge") == 1
    assert sample(registry, "kpr_node_datapath_info", node="worker-2", datapath="kube-proxy",
                  source="feature-gauge") == 1
    assert sample(registry, "kpr_node_datapath_switch_timestamp_seconds",
                  node="worker-1") == clock.now
    assert sample(registry, "kpr_node_datapath_switch_timestamp_seconds",
                  node="worker-2") is None  # never switched: no series, not zero
    assert sample(registry, "kpr_migration_phase", phase="canary") == 1
    assert sample(registry, "kpr_migration_phase", phase="before") == 0
    assert sample(registry, "kpr_node_datapath_disagreement", node="worker-1",
                  kind="strict-not-honoured") == 1
    assert sample(registry, "kpr_node_datapath_disagreement", node="worker-1",
                  kind="restart-pending") == 1  # strict reads as off, the agent runs eBPF
    assert sample(registry, "kpr_node_datapath_disagreement", node="worker-2",
                  kind="restart-pending") == 0  # pre-initialised: agrees
    text = generate_latest(registry).decode()
    assert "# TYPE kpr_node_datapath_info gauge" in text


def test_listeners_hear_about_changes_only(tracker):
    calls = []
    tracker.add_listener(lambda: calls.append(tracker.phase))
    tracker.observe_agent_gauge("worker-1", 0.0)
    tracker.observe_agent_gauge("worker-1", 0.0)
    tracker.observe_agent_gauge("worker-1", 1.0)
    assert calls == ["before", "after"]


def test_state_survives_a_restart(tracker, clock):
    for node in NODES[:2]:
        tracker.observe_agent_gauge(node, 0.0)
    tracker.observe_agent_gauge("worker-1", 1.0)
    tracker.observe_agent_gauge("worker-1", 0.0)
    saved = tracker.state()

    restarted = DatapathTracker(clock=clock)
    restarted.restore(saved)
    for node in NODES[:2]:
        restarted.observe_agent_gauge(node, 0.0)
    assert restarted.phase == "rolled-back"
    assert restarted.switch_times() == tracker.switch_times()


def test_forget_node(tracker):
    tracker.observe_agent_gauge("worker-1", 1.0)
    tracker.observe_agent_gauge("worker-2", 0.0)
    tracker.forget_node("worker-2")
    assert tracker.datapath("worker-2") == UNKNOWN
    assert tracker.phase == "after"
