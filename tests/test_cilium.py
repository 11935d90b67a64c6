"""Cilium's configuration semantics (``exporter.cilium``), shared by the datapath tracker and
the rollback planner.

Matrix:
- LabelSelector table in Kubernetes' terms (``metav1.LabelSelectorAsSelector``) over four
  nodes: nil selects nothing, ``{}`` everything; matchLabels (also an empty value); In,
  NotIn, Exists, DoesNotExist on present and absent keys; matchLabels and matchExpressions
  ANDed; invalid selectors (In/NotIn without values, Exists/DoesNotExist with values, an
  unknown or node-affinity-only operator, a missing or malformed key, a malformed or
  non-string value, malformed containers) select nothing and say why;
- the same table through the tracker (decision source ``cilium-node-config``) and the
  planner (``ClusterSnapshot.effective`` and ``kpr_nodes``): both select exactly the
  table's nodes for every row (their former copies disagreed on NotIn without values and
  Exists with values);
- an invalid CiliumNodeConfig is reported: the tracker logs it once, lists it and counts
  it in ``kpr_node_config_invalid_selectors``, the plan warns;
- kube-proxy-replacement values true/false/strict/partial/disabled/probe/garbage on Cilium
  1.13, 1.14 and an unknown version; ``kpr_on``;
- CiliumNodeConfig choice (selection, last by name wins, conflicts, configs without the
  key), the effective value per node, ``from_object``;
- phase names: the tracker, the webhook decision, the baseline keeper and the rules use
  the one declaration;
- the per-node migration label: one declaration, the rollback settings' default.
"""

from __future__ import annotations

import logging

import pytest

from exporter import cilium as c
from exporter.baseline import keeper
from exporter.cilium import KPR_KEY, NodeConfig, effective_kpr, node_config_for, selector_matches
from exporter.datapath import decide
from exporter.datapath.decide import SOURCE_NODE_CONFIG
from exporter.datapath.tracker import DatapathTracker
from exporter.model import EBPF, KUBE_PROXY, UNKNOWN
from exporter.rollback.roles import Scope, Trigger
from exporter.rollback.model import ClusterSnapshot
from exporter.rollback.plan import build_plan
from exporter.rollback.settings import RollbackSettings
from exporter.rulegen import names
from exporter.webhook import decision

MIG = c.MIGRATION_LABEL
ZONE = "topology.kubernetes.io/zone"
NODES = {
    "migrated": {MIG: "true", ZONE: "a"},
    "opted-out": {MIG: "false", ZONE: "a"},
    "zone-b": {ZONE: "b"},
    "bare": {},
}
ALL = set(NODES)
NOTHING: set[str] = set()
NOW = 1_800_000_000.0


def expr(key, operator, *values, omit_values=False):
    out = {"key": key, "operator": operator}
    if not omit_values:
        out["values"] = list(values)
    return out


def exprs(*items):
    return {"matchExpressions": list(items)}


# (selector, nodes it selects, valid?) -- one table for every test below.
VALID = [
    pytest.param(None, NOTHING, id="nil selects nothing"),
    pytest.param({}, ALL, id="empty selects everything"),
    pytest.param({"matchLabels": {}, "matchExpressions": []}, ALL, id="empty lists"),
    pytest.param({"matchLabels": {MIG: "true"}}, {"migrated"}, id="matchLabels"),
    pytest.param({"matchLabels": {MIG: "true", ZONE: "b"}}, NOTHING, id="matchLabels ANDed"),
    pytest.param({"matchLabels": {MIG: ""}}, NOTHING, id="matchLabels empty value, key absent"),
    pytest.param(exprs(expr(MIG, "In", "true", "x")), {"migrated"}, id="In"),
    pytest.param(exprs(expr("missing", "In", "x")), NOTHING, id="In on an absent key"),
    pytest.param(exprs(expr(MIG, "NotIn", "true")), {"opted-out", "zone-b", "bare"},
                 id="NotIn also selects nodes without the key"),
    pytest.param(exprs(expr("missing", "NotIn", "x")), ALL, id="NotIn on an absent key"),
    pytest.param(exprs(expr(MIG, "Exists", omit_values=True)), {"migrated", "opted-out"},
                 id="Exists"),
    pytest.param(exprs(expr(MIG, "Exists")), {"migrated", "opted-out"},
                 id="Exists with an empty values list"),
    pytest.param(exprs(expr(MIG, "DoesNotExist", omit_values=True)), {"zone-b", "bare"},
                 id="DoesNotExist"),
    pytest.param({"matchLabels": {ZONE: "a"}, **exprs(expr(MIG, "In", "true"))}, {"migrated"},
                 id="matchLabels AND matchExpressions"),
    pytest.param(exprs(expr(ZONE, "In", "a", "b"), expr(MIG, "DoesNotExist", omit_values=True)),
                 {"zone-b"}, id="expressions ANDed"),
]
INVALID = [
    pytest.param(exprs(expr(MIG, "NotIn", omit_values=True)), NOTHING, id="NotIn without values"),
    pytest.param(exprs(expr(MIG, "NotIn")), NOTHING, id="NotIn with empty values"),
    pytest.param(exprs(expr(MIG, "In", omit_values=True)), NOTHING, id="In without values"),
    pytest.param(exprs(expr(MIG, "Exists", "true")), NOTHING, id="Exists with values"),
    pytest.param(exprs(expr(MIG, "DoesNotExist", "x")), NOTHING, id="DoesNotExist with values"),
    pytest.param(exprs(expr(MIG, "Equals", "true")), NOTHING, id="unknown operator"),
    pytest.param(exprs(expr("cpu", "Gt", "4")), NOTHING, id="Gt is node affinity only"),
    pytest.param(exprs({"operator": "Exists"}), NOTHING, id="no key"),
    pytest.param({"matchLabels": {"bad key": "x"}}, NOTHING, id="malformed key"),
    pytest.param({"matchLabels": {"Example.COM/x": "y"}}, NOTHING, id="malformed key prefix"),
    pytest.param({"matchLabels": {MIG: "not valid!"}}, NOTHING, id="malformed value"),
    pytest.param({"matchLabels": {MIG: "x" * 64}}, NOTHING, id="value over 63 characters"),
    pytest.param({"matchLabels": {MIG: True}}, NOTHING, id="non-string value"),
    pytest.param({"matchLabels": {MIG: "true"}, **exprs(expr(ZONE, "Exists", "a"))}, NOTHING,
                 id="a valid part does not rescue an invalid one"),
    pytest.param({"matchExpressions": {"key": MIG}}, NOTHING, id="matchExpressions not a list"),
]
TABLE = VALID + INVALID
INVALID_IDS = {p.id for p in INVALID}


def config(selector, name="kpr"):
    return NodeConfig("kube-system", name, selector, {KPR_KEY: "true"})


@pytest.mark.parametrize(("selector", "selected"), TABLE)
def test_selector_table(selector, selected, request):
    assert {n for n, labels in NODES.items() if selector_matches(selector, labels)} == selected
    problem = c.selector_problem(selector)
    invalid = request.node.callspec.id in INVALID_IDS
    assert (problem is not None) is invalid, problem
    assert config(selector).selector_problem == problem


def tracker_selection(selector):
    tracker = DatapathTracker(clock=lambda: NOW)
    tracker.set_nodes(NODES)
    tracker.set_cilium_config({KPR_KEY: "false"})
    tracker.set_node_configs([config(selector)])
    decisions = tracker.decisions()
    assert set(decisions) == ALL
    return {n for n, d in decisions.items() if d.source == SOURCE_NODE_CONFIG}


def planner_selection(selector):
    snapshot = ClusterSnapshot(NODES, {KPR_KEY: "false"}, (config(selector),))
    selected = {n for n in NODES if snapshot.effective(n) == ("true", config(selector).ref)}
    assert set(snapshot.kpr_nodes()) == selected
    return selected


def test_the_shared_table_covers_the_former_disagreements():
    assert {"NotIn without values", "Exists with values"} <= INVALID_IDS
    assert len(VALID) >= 10


@pytest.mark.parametrize(("selector", "selected"), TABLE)
def test_tracker_and_planner_select_the_same_nodes(selector, selected):
    assert tracker_selection(selector) == planner_selection(selector) == selected


def invalid_gauge(tracker):
    family = {m.name: m for m in tracker.collect()}["kpr_node_config_invalid_selectors"]
    (sample,) = family.samples
    return sample.value


def test_invalid_config_is_reported_by_tracker_and_plan(caplog):
    bad = NodeConfig("kube-system", "bad", exprs(expr(MIG, "NotIn", omit_values=True)),
                     {KPR_KEY: "true"})
    tracker = DatapathTracker(clock=lambda: NOW)
    tracker.set_nodes(NODES)
    with caplog.at_level(logging.WARNING, logger="exporter.datapath.tracker"):
        tracker.set_node_configs([bad, config({})])
        tracker.set_node_configs([bad, config({})])  # unchanged: not logged again
    warned = [r for r in caplog.records if "invalid CiliumNodeConfig" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].kv["config"] == "kube-system/bad"  # type: ignore[attr-defined]
    assert list(tracker.invalid_node_configs()) == ["kube-system/bad"]
    assert "NotIn: values must be non-empty" in tracker.invalid_node_configs()["kube-system/bad"]
    assert invalid_gauge(tracker) == 1
    tracker.set_node_configs([config({})])
    assert tracker.invalid_node_configs() == {}
    assert invalid_gauge(tracker) == 0

    snapshot = ClusterSnapshot(NODES, {KPR_KEY: "false"}, (bad,))
    plan = build_plan(snapshot, Scope.cluster(), Trigger("test"), RollbackSettings(), NOW)
    assert any(w.startswith("CiliumNodeConfig kube-system/bad selects no node: its "
                            "nodeSelector is invalid") for w in plan.warnings), plan.warnings


@pytest.mark.parametrize(("raw", "version", "datapath", "kind"), [
    ("true", None, EBPF, None), ("false", None, KUBE_PROXY, None),
    (" True ", (1, 16), EBPF, None), ("FALSE", (1, 13), KUBE_PROXY, None),
    ("strict", (1, 13), EBPF, None),
    ("strict", (1, 14), KUBE_PROXY, c.STRICT_NOT_HONOURED),
    ("strict", None, KUBE_PROXY, c.STRICT_NOT_HONOURED),
    ("partial", (1, 13), KUBE_PROXY, None),
    ("partial", (1, 15), KUBE_PROXY, c.LEGACY_VALUE),
    ("disabled", (1, 12), KUBE_PROXY, None),
    ("disabled", None, KUBE_PROXY, c.LEGACY_VALUE),
    ("probe", (1, 12), UNKNOWN, None),
    ("probe", (1, 17), KUBE_PROXY, c.LEGACY_VALUE),
    ("", None, UNKNOWN, c.INVALID_VALUE),
    ("yes", (1, 17), UNKNOWN, c.INVALID_VALUE),
])
def test_kpr_values(raw, version, datapath, kind):
    reading = c.read_kpr_value(raw, version, "ConfigMap cilium-config")
    assert reading.datapath == datapath
    assert (reading.problem.kind if reading.problem else None) == kind
    if reading.problem:
        assert "ConfigMap cilium-config" in reading.problem.message


def test_strict_message_says_why_and_what_to_set():
    reading = c.read_kpr_value("strict", None, "CiliumNodeConfig kube-system/kpr")
    assert reading.problem is not None
    assert reading.problem.message == (
        'CiliumNodeConfig kube-system/kpr sets kube-proxy-replacement=strict: Cilium >= 1.14 '
        'only enables the replacement for "true", so the agent runs without it (Cilium '
        'version unknown, assumed >= 1.14); set "true"')


@pytest.mark.parametrize("value, on", [("true", True), ("True", True), ("strict", True),
                                       ("partial", True), ("false", False), ("disabled", False),
                                       ("", False), (None, False)])
def test_kpr_on(value, on):
    assert c.kpr_on(value) is on


def cnc(name, selector, value=None, namespace="kube-system", **extra):
    defaults = dict(extra)
    if value is not None:
        defaults[KPR_KEY] = value
    return NodeConfig(namespace, name, selector, defaults)


MIGRATED = {MIG: "true"}


def test_node_config_choice_selection_order_and_conflicts():
    label = {"matchLabels": MIGRATED}
    assert node_config_for([cnc("kpr", label, "true")], {}) == (None, ())
    chosen, conflicts = node_config_for([cnc("kpr", label, "true")], MIGRATED)
    assert chosen is not None
    assert (chosen.namespaced_name, conflicts) == ("kube-system/kpr", ())
    # configs without the key do not count, even when they select the node
    chosen, _ = node_config_for([cnc("xdp", {}, None, **{"bpf-lb-acceleration": "native"}),
                                 cnc("kpr", label, "true")], MIGRATED)
    assert chosen is not None and chosen.name == "kpr"
    # last by name wins; another value is a reported conflict, the same value is not
    chosen, conflicts = node_config_for(
        [cnc("b-off", {}, "false"), cnc("a-on", label, "true"), cnc("c-on", label, "TRUE")],
        MIGRATED)
    assert chosen is not None
    assert (chosen.name, conflicts) == ("c-on", ("kube-system/b-off",))


def test_effective_kpr_prefers_node_configs_in_name_order():
    cm = {KPR_KEY: "false"}
    canary = cnc("a-canary", {"matchLabels": MIGRATED}, "true")
    later = cnc("z-off", {"matchLabels": {"pin": "off"}}, "false")
    other = cnc("b-other", {}, **{"bpf-lb-mode": "dsr"})
    assert effective_kpr({}, cm, [canary, later, other]) == ("false", "ConfigMap cilium-config")
    assert effective_kpr(MIGRATED, cm, [canary, other]) == (
        "true", "CiliumNodeConfig kube-system/a-canary")
    assert effective_kpr({**MIGRATED, "pin": "off"}, cm, [later, canary]) == (
        "false", "CiliumNodeConfig kube-system/z-off")
    assert effective_kpr({}, None, []) == ("false", "ConfigMap cilium-config")


def test_node_config_from_object():
    obj = {"apiVersion": "cilium.io/v2", "kind": "CiliumNodeConfig",
           "metadata": {"name": "kpr", "namespace": "kube-system"},
           "spec": {"nodeSelector": {"matchLabels": MIGRATED},
                    "defaults": {"kube-proxy-replacement": "true",
                                 "kube-proxy-replacement-healthz-bind-address": "0.0.0.0:10256"}}}
    config_ = NodeConfig.from_object(obj)
    assert (config_.namespaced_name, config_.ref) == ("kube-system/kpr",
                                                       "CiliumNodeConfig kube-system/kpr")
    assert config_.defaults[KPR_KEY] == "true"
    assert config_.selector == {"matchLabels": MIGRATED}
    assert NodeConfig.from_object({}).selects({}) is False  # no nodeSelector: no node


def test_phase_names_have_one_declaration():
    assert c.PHASES == ("before", "canary", "after", "rolled-back", "unknown")
    assert decide.PHASES is c.PHASES
    assert (keeper.BEFORE, keeper.CANARY, keeper.AFTER, keeper.ROLLED_BACK) == (
        c.BEFORE, c.CANARY, c.AFTER, c.ROLLED_BACK)
    assert (decision.AFTER, decision.CANARY, decision.PHASE_UNKNOWN) == (
        c.AFTER, c.CANARY, c.PHASE_UNKNOWN)
    assert names.PHASE_AFTER == c.AFTER


def test_the_migration_label_has_one_declaration():
    # spelled as Cilium's per-node procedure spells it; every other use refers to this one
    assert c.MIGRATION_LABEL == "io.cilium.migration/kube-proxy-replacement"
    assert RollbackSettings().kube_proxy.migration_label == c.MIGRATION_LABEL
    assert c.MIGRATION_LABEL in NODES["migrated"]
