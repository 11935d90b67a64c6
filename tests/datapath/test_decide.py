"""The pure datapath rules.

Matrix:
- every combination of feature gauge {absent, 0, 1} x CiliumNodeConfig {absent, true,
  false} x cilium-config {absent, true, false} x kube-proxy pod {unknown, running, absent}:
  precedence, restart-pending, kube-proxy-on-ebpf-node, kube-proxy-missing
- a hand-written table of the notable rows (guards the precedence oracle above)
- values read from CiliumNodeConfig and cilium-config reach the decision (the value
  table and the CiliumNodeConfig choice are tested with ``exporter.cilium``)
- migration phase: unknown, before, canary, after, rolled-back
- version parsing from versions and image references
"""

from __future__ import annotations

import itertools

import pytest

from exporter.datapath import decide as d
from exporter.datapath.decide import NodeSignals, decide
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
