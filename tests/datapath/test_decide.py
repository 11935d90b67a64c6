"""The pure datapath rules.

Matrix:
- every combination of feature gauge {absent, 0, 1} x CiliumNodeConfig {absent, true,
  false} x cilium-config {absent, true, false} x kube-proxy pod {unknown, running, absent}:
  precedence, restart-pending, kube-proxy-on-ebpf-node, kube-proxy-missing
- a hand-written table of the notable rows (guards the precedence oracle above)
- kube-proxy-replacement values true/false/strict/partial/disabled/probe/garbage on
  Cilium 1.13, 1.14 and an unknown version
- CiliumNodeConfig choice: selection, last by name wins, conflicts, configs without the key
- migration phase: unknown, before, canary, after, rolled-back
- version parsing from versions and image references
"""

from __future__ import annotations

import itertools

import pytest

from exporter.datapath import decide as d
from exporter.datapath.decide import NodeConfig, NodeSignals, decide
from exporter.model import EBPF, KUBE_PROXY, UNKNOWN

GAUGES = (None, 0.0, 1.0)
CONFIGS = (None, "true", "false")
KUBE_PROXY_POD = (None, True, False)


def _as_datapath(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return KUBE_PROXY if value else EBPF
    if isinstance(value, float):
        return EBPF if value >= 0.5 else KUBE_PROXY
    return EBPF if value == "true" else KUBE_PROXY


@pytest.mark.parametrize(("gauge", "node_config", "cilium_config", "kube_proxy"),
                         list(itertools.product(GAUGES, CONFIGS, CONFIGS, KUBE_PROXY_POD)))
def test_every_signal_combination(gauge, node_config, cilium_config, kube_proxy):
    signals = NodeSignals(feature_gauge=gauge, node_config=node_config,
                          node_config_ref="kube-system/kpr" if node_config else "",
                          cilium_config=cilium_config, kube_proxy_running=kube_proxy)
    decision = decide(signals)

    # precedence: the first known signal decides
    ranked = [(_as_datapath(gauge), d.SOURCE_FEATURE_GAUGE),
              (_as_datapath(node_config), d.SOURCE_NODE_CONFIG),
              (_as_datapath(cilium_config), d.SOURCE_CILIUM_CONFIG),
              (_as_datapath(kube_proxy), d.SOURCE_KUBE_PROXY_POD)]
    expected = next(((dp, src) for dp, src in ranked if dp is not None),
                    (UNKNOWN, d.SOURCE_NONE))
    assert (decision.datapath, decision.source) == expected

    configured = _as_datapath(node_config) or _as_datapath(cilium_config) or UNKNOWN
    assert decision.configured == configured
    kinds = set()
    if gauge is not None and configured != UNKNOWN and configured != decision.datapath:
        kinds.add(d.RESTART_PENDING)
    if kube_proxy is True and decision.datapath == EBPF:
        kinds.add(d.KUBE_PROXY_ON_EBPF_NODE)
    if kube_proxy is False and decision.datapath == KUBE_PROXY:
        kinds.add(d.KUBE_PROXY_MISSING)
    assert decision.problem_kinds == kinds


@pytest.mark.parametrize(("signals", "datapath", "source", "kinds"), [
    (NodeSignals(), UNKNOWN, "none", set()),
    (NodeSignals(feature_gauge=1.0), EBPF, "feature-gauge", set()),
    (NodeSignals(feature_gauge=0.0, node_config="true", node_config_ref="kube-system/kpr"),
     KUBE_PROXY, "feature-gauge", {"restart-pending"}),
    (NodeSignals(feature_gauge=1.0, cilium_config="false"), EBPF, "feature-gauge",
     {"restart-pending"}),
    (NodeSignals(node_config="true", cilium_config="false"), EBPF, "cilium-node-config",
     set()),
    (NodeSignals(node_config="false", cilium_config="true"), KUBE_PROXY,
     "cilium-node-config", set()),
    (NodeSignals(cilium_config="true", kube_proxy_running=True), EBPF, "cilium-config",
     {"kube-proxy-on-ebpf-node"}),
    (NodeSignals(cilium_config="false", kube_proxy_running=False), KUBE_PROXY,
     "cilium-config", {"kube-proxy-missing"}),
    (NodeSignals(kube_proxy_running=True), KUBE_PROXY, "kube-proxy-pod", set()),
    (NodeSignals(kube_proxy_running=False), EBPF, "kube-proxy-pod", set()),
    (NodeSignals(cilium_config="strict"), KUBE_PROXY, "cilium-config",
     {"strict-not-honoured"}),
    (NodeSignals(cilium_config="strict", cilium_version=(1, 13)), EBPF, "cilium-config",
     set()),
    (NodeSignals(feature_gauge=0.0, node_config="strict", node_config_ref="kube-system/x",
                 cilium_version=(1, 16)),
     KUBE_PROXY, "feature-gauge", {"strict-not-honoured"}),
    (NodeSignals(cilium_config="banana", kube_proxy_running=True), KUBE_PROXY,
     "kube-proxy-pod", {"invalid-value"}),
    (NodeSignals(node_config="true", node_config_ref="kube-system/b",
                 node_config_conflicts=("kube-system/a",)), EBPF, "cilium-node-config",
     {"conflicting-node-configs"}),
])
def test_notable_rows(signals, datapath, source, kinds):
    decision = decide(signals)
    assert (decision.datapath, decision.source, set(decision.problem_kinds)) == (
        datapath, source, kinds)
    assert all(p.message for p in decision.problems)


@pytest.mark.parametrize(("raw", "version", "datapath", "kind"), [
    ("true", None, EBPF, None), ("false", None, KUBE_PROXY, None),
    (" True ", (1, 16), EBPF, None), ("FALSE", (1, 13), KUBE_PROXY, None),
    ("strict", (1, 13), EBPF, None),
    ("strict", (1, 14), KUBE_PROXY, d.STRICT_NOT_HONOURED),
    ("strict", None, KUBE_PROXY, d.STRICT_NOT_HONOURED),
    ("partial", (1, 13), KUBE_PROXY, None),
    ("partial", (1, 15), KUBE_PROXY, d.LEGACY_VALUE),
    ("disabled", (1, 12), KUBE_PROXY, None),
    ("disabled", None, KUBE_PROXY, d.LEGACY_VALUE),
    ("probe", (1, 12), UNKNOWN, None),
    ("probe", (1, 17), KUBE_PROXY, d.LEGACY_VALUE),
    ("", None, UNKNOWN, d.INVALID_VALUE),
    ("yes", (1, 17), UNKNOWN, d.INVALID_VALUE),
])
def test_kpr_values(raw, version, datapath, kind):
    reading = d.read_kpr_value(raw, version, "ConfigMap cilium-config")
    assert reading.datapath == datapath
    assert (reading.problem.kind if reading.problem else None) == kind
    if reading.problem:
        assert "ConfigMap cilium-config" in reading.problem.message


def test_strict_message_says_why_and_what_to_set():
    reading = d.read_kpr_value("strict", None, "CiliumNodeConfig kube-system/kpr")
    assert reading.problem.message == (
        'CiliumNodeConfig kube-system/kpr sets kube-proxy-replacement=strict: Cilium >= 1.14 '
        'only enables the replacement for "true", so the agent runs without it (Cilium '
        'version unknown, assumed >= 1.14); set "true"')


def cnc(name, selector, value=None, namespace="kube-system", **extra):
    defaults = dict(extra)
    if value is not None:
        defaults[d.KPR_KEY] = value
    return NodeConfig(namespace, name, selector, defaults)


MIGRATED = {"io.cilium.migration/kube-proxy-replacement": "true"}


def test_node_config_choice_selection_order_and_conflicts():
    label = {"matchLabels": MIGRATED}
    assert d.node_config_for([cnc("kpr", label, "true")], {}) == (None, ())
    chosen, conflicts = d.node_config_for([cnc("kpr", label, "true")], MIGRATED)
    assert (chosen.ref, conflicts) == ("kube-system/kpr", ())
    # configs without the key do not count, even when they select the node
    chosen, _ = d.node_config_for([cnc("xdp", {}, None, **{"bpf-lb-acceleration": "native"}),
                                   cnc("kpr", label, "true")], MIGRATED)
    assert chosen.name == "kpr"
    # last by name wins; another value is a reported conflict, the same value is not
    chosen, conflicts = d.node_config_for(
        [cnc("b-off", {}, "false"), cnc("a-on", label, "true"), cnc("c-on", label, "TRUE")],
        MIGRATED)
    assert (chosen.name, conflicts) == ("c-on", ("kube-system/b-off",))


def test_node_config_from_object():
    obj = {"apiVersion": "cilium.io/v2", "kind": "CiliumNodeConfig",
           "metadata": {"name": "kpr", "namespace": "kube-system"},
           "spec": {"nodeSelector": {"matchLabels": MIGRATED},
                    "defaults": {"kube-proxy-replacement": "true",
                                 "kube-proxy-replacement-healthz-bind-address": "0.0.0.0:10256"}}}
    config = NodeConfig.from_object(obj)
    assert config.ref == "kube-system/kpr"
    assert config.defaults[d.KPR_KEY] == "true"
    assert config.selector == {"matchLabels": MIGRATED}


@pytest.mark.parametrize(("datapaths", "last_switch_to", "phase"), [
    ((), None, "unknown"),
    ((UNKNOWN, UNKNOWN), None, "unknown"),
    ((KUBE_PROXY, KUBE_PROXY, UNKNOWN), None, "before"),
    ((KUBE_PROXY, EBPF, KUBE_PROXY), EBPF, "canary"),
    ((EBPF, EBPF, UNKNOWN), EBPF, "after"),
    ((EBPF, EBPF, EBPF), None, "after"),
    ((KUBE_PROXY, KUBE_PROXY, KUBE_PROXY), KUBE_PROXY, "rolled-back"),
    ((EBPF, KUBE_PROXY, EBPF), KUBE_PROXY, "rolled-back"),
    ((EBPF, EBPF), KUBE_PROXY, "after"),
])
def test_migration_phase(datapaths, last_switch_to, phase):
    assert d.migration_phase(datapaths, last_switch_to) == phase


@pytest.mark.parametrize(("text", "version"), [
    ("1.16.3", (1, 16)), ("v1.17.0-rc.1", (1, 17)),
    ("quay.io/cilium/cilium:v1.15.19@sha256:abc", (1, 15)),
    ("localhost:5000/cilium/cilium:v1.13.4", (1, 13)),
    ("localhost:5000/cilium/cilium", None), ("quay.io/cilium/cilium@sha256:abc", None),
    ("", None), (None, None), ("latest", None),
])
def test_parse_version(text, version):
    assert d.parse_version(text) == version
