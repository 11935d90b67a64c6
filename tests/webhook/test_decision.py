"""The pure decision, as tables.

Matrix: label match (missing label, wrong value, resolved only, mixed group) ->
IGNORE; dedup (same key twice, new startsAt = new incident, bounded memory);
kill switch; unknown phase -> DEFER; scope (node label, kpr_scope cluster/canary,
invalid kpr_scope, canary phase, after phase, unknown nodes, all kube-proxy);
in-progress -> DEFER; cooldown and cap per window in virtual time; modes; every
decision carries a reason.
"""

import re
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from exporter.rollback.roles import CLUSTER, DRY_RUN, ENFORCE, NODES, Scope
from exporter.webhook import decision as d
from exporter.webhook.payload import FIRING, RESOLVED, Alert, Notification

T0 = datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)
NOW = T0.timestamp() + 600


def alert(fp="f1", status=FIRING, starts=T0, **labels) -> Alert:
    base = {"alertname": "KprServiceConnectLatencyWorse", "kpr_action": "rollback"}
    base.update(labels)
    return Alert(status, MappingProxyType({k: v for k, v in base.items() if v is not None}),
                 MappingProxyType({}), starts, None, "", fp)


def note(*alerts: Alert, truncated=0) -> Notification:
    status = FIRING if any(a.firing for a in alerts) else RESOLVED
    empty = MappingProxyType({})
    return Notification("4", "{}:{}", truncated, status, "hook", empty, empty, empty, "", alerts)


def world(phase="canary", ebpf=("node-b",), kube_proxy=("node-a", "node-c"), unknown=(),
          busy=False, kill=False) -> d.Situation:
    by = {"ebpf": frozenset(ebpf), "kube-proxy": frozenset(kube_proxy), "unknown": frozenset(unknown)}
    return d.Situation(phase, MappingProxyType(by), busy, kill)


POLICY = d.Policy()


@pytest.mark.parametrize("alerts, action, scope, reason_part", [
    # label matching
    ((alert(kpr_action=None),), d.IGNORE, None, 'kpr_action="rollback"'),
    ((alert(kpr_action="page"),), d.IGNORE, None, "no firing alert"),
    ((alert(status=RESOLVED),), d.IGNORE, None, "0 firing"),
    ((alert("r", status=RESOLVED, node="node-a"), alert("f", node="node-b")), d.ROLLBACK,
     Scope(NODES, ("node-b",)), "node-b"),
    # scope from the node label
    ((alert(node="node-b"),), d.ROLLBACK, Scope(NODES, ("node-b",)), "nodes named by label node"),
    ((alert(node="node-a"),), d.NOTHING_TO_DO, None, "node-a already use kube-proxy"),
    ((alert(node="node-z"),), d.NOTHING_TO_DO, None, "not known to the datapath tracker"),
    # scope label
    ((alert(kpr_scope="cluster"),), d.ROLLBACK, Scope(CLUSTER, ("node-b",)), "kpr_scope=cluster"),
    ((alert(kpr_scope="canary"),), d.ROLLBACK, Scope(NODES, ("node-b",)), "kpr_scope=canary"),
    ((alert(kpr_scope="galaxy"),), d.REFUSE, None, "is not cluster or canary"),
    ((alert("a", kpr_scope="canary"), alert("b", kpr_scope="cluster")), d.ROLLBACK,
     Scope(CLUSTER, ("node-b",)), "kpr_scope=cluster"),
    # default scope from the phase
    ((alert(),), d.ROLLBACK, Scope(NODES, ("node-b",)), "canary: the eBPF nodes"),
])
def test_table_in_canary_phase(alerts, action, scope, reason_part):
    decision = d.decide(note(*alerts), POLICY, world(), d.Memory(), NOW)
    assert decision.action == action
    assert decision.scope == scope
    assert reason_part in decision.reason
    assert decision.mode == DRY_RUN


@pytest.mark.parametrize("situation, action, scope, reason_part", [
    (world("after", ebpf=("a", "b", "c"), kube_proxy=()), d.ROLLBACK,
     Scope(CLUSTER, ("a", "b", "c")), "phase after"),
    (world("after", ebpf=("a", "b"), kube_proxy=(), unknown=("c",)), d.ROLLBACK,
     Scope(CLUSTER, ("a", "b", "c")), "phase after"),
    (world("before", ebpf=(), kube_proxy=("a", "b")), d.NOTHING_TO_DO, None,
     "every node already uses kube-proxy"),
    (world("rolled-back", ebpf=(), kube_proxy=("a", "b")), d.NOTHING_TO_DO, None, "already"),
    (world("unknown", ebpf=(), kube_proxy=()), d.DEFER, None, "not known yet"),
    (world(kill=True), d.REFUSE, None, "kill switch"),
    (world(busy=True), d.DEFER, Scope(NODES, ("node-b",)), "already running"),
])
def test_table_by_situation(situation, action, scope, reason_part):
    decision = d.decide(note(alert()), POLICY, situation, d.Memory(), NOW)
    assert (decision.action, decision.scope) == (action, scope)
    assert reason_part in decision.reason
    assert decision.retry_wanted == (action == d.DEFER)


def test_dedup_remembers_only_rollbacks():
    memory = d.Memory()
    first = d.decide(note(alert()), POLICY, world(), memory, NOW)
    assert first.action == d.ROLLBACK and first.fingerprints == ("f1",)
    memory.remember(first, NOW)
    again = d.decide(note(alert()), POLICY, world(), memory, NOW + 1)
    assert again.action == d.DUPLICATE and "already acted on" in again.reason
    # A refused decision is not remembered: the same alert may act later.
    refused = d.decide(note(alert("f2")), POLICY, world(kill=True), memory, NOW)
    memory.remember(refused, NOW)
    assert not memory.seen(alert("f2")) and len(memory) == 1


def test_new_incident_of_the_same_alert_is_not_a_duplicate():
    memory = d.Memory(history=[NOW - 10 * 86400])
    memory.remember(d.decide(note(alert()), POLICY, world(), memory, NOW), NOW)
    later = alert(starts=T0 + timedelta(hours=30))
    decision = d.decide(note(later), POLICY, world(), memory, NOW + 30 * 3600)
    assert decision.action == d.ROLLBACK


def test_only_fresh_alerts_drive_a_decision():
    memory = d.Memory()
    memory.remember(d.decide(note(alert("f1", node="node-b")), POLICY, world(), memory, NOW), NOW)
    policy = d.Policy(cooldown_seconds=0, max_per_window=5)
    decision = d.decide(note(alert("f1", node="node-b"), alert("f2", node="node-b")),
                        policy, world(), memory, NOW + 1)
    assert decision.action == d.ROLLBACK and decision.fingerprints == ("f2",)


def test_a_decided_rollback_counts_for_cooldown_only_once_it_finished():
    memory = d.Memory()
    memory.remember(d.decide(note(alert("f1")), POLICY, world(), memory, NOW), NOW)
    assert memory.history == ()
    assert d.decide(note(alert("f2")), POLICY, world(), memory, NOW + 60).action == d.ROLLBACK
    memory.record_rollback(NOW + 30)
    assert d.decide(note(alert("f2")), POLICY, world(), memory, NOW + 60).action == d.COOLDOWN


def test_dedup_memory_is_bounded():
    memory = d.Memory(capacity=3)
    policy = d.Policy(cooldown_seconds=0, max_per_window=100)
    for i in range(5):
        memory.remember(d.decide(note(alert(f"f{i}")), policy, world(), memory, NOW + i), NOW + i)
    assert len(memory) == 3
    assert not memory.seen(alert("f0")) and memory.seen(alert("f4"))


@pytest.mark.parametrize("history, now, action, reason_part", [
    ([NOW - 100], NOW, d.COOLDOWN, "cooldown: last rollback 100s ago"),
    ([NOW - 3600], NOW, d.REFUSE, "cap reached: 1 rollback(s)"),
    ([NOW - 86400 - 1], NOW, d.ROLLBACK, "would roll back"),
    ([], NOW, d.ROLLBACK, "would roll back"),
])
def test_cooldown_and_cap(history, now, action, reason_part):
    policy = d.Policy(cooldown_seconds=1800, max_per_window=1, window_seconds=86400)
    decision = d.decide(note(alert()), policy, world(), d.Memory(history=history), now)
    assert decision.action == action
    assert reason_part in decision.reason


def test_cap_counts_the_window_only():
    policy = d.Policy(cooldown_seconds=0, max_per_window=2, window_seconds=3600)
    memory = d.Memory(history=[NOW - 4000, NOW - 1000])
    assert d.decide(note(alert()), policy, world(), memory, NOW).action == d.ROLLBACK
    memory = d.Memory(history=[NOW - 2000, NOW - 1000])
    assert d.decide(note(alert()), policy, world(), memory, NOW).action == d.REFUSE


def test_enforce_mode_and_reason():
    decision = d.decide(note(alert()), d.Policy(mode=ENFORCE), world(), d.Memory(), NOW)
    assert decision.mode == ENFORCE
    assert decision.reason.startswith("rolling back node node-b")
    assert "KprServiceConnectLatencyWorse[f1]" in decision.reason


def test_custom_match_labels_need_every_pair():
    policy = d.Policy(match_labels=MappingProxyType({"kpr_action": "rollback", "team": "net"}))
    assert d.decide(note(alert()), policy, world(), d.Memory(), NOW).action == d.IGNORE
    assert d.decide(note(alert(team="net")), policy, world(), d.Memory(), NOW).action == d.ROLLBACK


def test_truncated_alerts_are_mentioned_when_ignoring():
    decision = d.decide(note(alert(kpr_action=None), truncated=4), POLICY, world(), d.Memory(), NOW)
    assert decision.action == d.IGNORE and "4 alert(s) truncated" in decision.reason


def test_invalid_mode_is_rejected():
    with pytest.raises(ValueError):
        d.Policy(mode="yolo")


def test_every_action_has_a_reason():
    seen = set()
    cases = [
        (note(alert(kpr_action=None)), world()), (note(alert()), world(kill=True)),
        (note(alert()), world("unknown")), (note(alert(node="node-a")), world()),
        (note(alert()), world(busy=True)), (note(alert()), world()),
    ]
    for n, w in cases:
        decision = d.decide(n, POLICY, w, d.Memory(), NOW)
        assert decision.reason
        seen.add(decision.action)
    remembered = d.Memory()
    first = d.decide(note(alert()), POLICY, world(), remembered, NOW)
    remembered.remember(first, NOW)
    remembered.record_rollback(NOW + 30)  # it finished
    for n in (note(alert()), note(alert("f2"))):  # a re-send, then another alert in cooldown
        decision = d.decide(n, POLICY, world(), remembered, NOW + 60)
        assert decision.reason
        seen.add(decision.action)
    assert seen == set(d.ACTIONS)


# --- scope of the shipped rules' alerts, per phase (a canary regression stays a canary one) --

def _rollback_alerts() -> list[tuple[str, dict[str, str]]]:
    """(name, labels) of an alert of every shipped rollback rule, as Prometheus would send it."""
    from exporter.rulegen import render_rules
    from tests.alerts.ruledata import rules_of

    found = []
    for rule in rules_of(render_rules("default"), "alert"):
        labels = dict(rule["labels"])
        if labels.get("kpr_action") != "rollback":
            continue
        labels.update(alertname=rule["alert"], namespace="shop", service="cart", datapath="ebpf")
        if "comparison" not in labels:  # the judge's rules select one comparison each
            labels["comparison"] = re.search(r'comparison="([^"]+)"', rule["expr"]).group(1)
        if rule["alert"] in ("KprNodeSensitiveDropsRegression", "KprProbeCheckFailing"):
            labels = {k: v for k, v in labels.items() if k not in ("namespace", "service")}
            labels["node"] = "node-b"
        found.append((f'{rule["alert"]}/{labels["comparison"]}', labels))
    return found


ROLLBACK_ALERTS = _rollback_alerts()
MIXED = {"ebpf": ("node-b",), "kube_proxy": ("node-a", "node-c")}
ALL_EBPF = {"ebpf": ("node-a", "node-b", "node-c"), "kube_proxy": ()}


def test_every_shipped_rollback_rule_is_in_the_scope_table():
    comparisons = {labels["comparison"] for _, labels in ROLLBACK_ALERTS}
    assert len(ROLLBACK_ALERTS) >= 8 and comparisons == {"canary-vs-control", "after-vs-baseline"}


@pytest.mark.parametrize("phase", ["canary", "rolled-back"])
@pytest.mark.parametrize("name, labels", ROLLBACK_ALERTS, ids=[n for n, _ in ROLLBACK_ALERTS])
def test_while_the_cluster_is_mixed_any_shipped_alert_rolls_back_only_the_ebpf_nodes(
        name, labels, phase):
    shipped = Alert(FIRING, MappingProxyType(labels), MappingProxyType({}), T0, None, "", "fp")
    decision = d.decide(note(shipped), POLICY, world(phase, **MIXED), d.Memory(), NOW)
    assert decision.action == d.ROLLBACK, decision.reason
    assert decision.scope == Scope(NODES, ("node-b",)), decision.reason


@pytest.mark.parametrize("name, labels", [(n, lb) for n, lb in ROLLBACK_ALERTS
                                          if lb["comparison"] == "after-vs-baseline"],
                         ids=[n for n, lb in ROLLBACK_ALERTS if lb["comparison"] == "after-vs-baseline"])
def test_once_every_node_is_on_ebpf_a_baseline_alert_rolls_back_the_cluster(name, labels):
    shipped = Alert(FIRING, MappingProxyType(labels), MappingProxyType({}), T0, None, "", "fp")
    decision = d.decide(note(shipped), POLICY, world("after", **ALL_EBPF), d.Memory(), NOW)
    assert decision.action == d.ROLLBACK
    assert decision.scope == Scope(CLUSTER, ("node-a", "node-b", "node-c"))


@pytest.mark.parametrize("comparison", ["canary-vs-control", "after-vs-baseline"])
def test_a_wider_scope_named_on_purpose_is_honoured_in_the_canary_phase(comparison):
    decision = d.decide(note(alert(comparison=comparison, kpr_scope="cluster")), POLICY,
                        world("canary", **MIXED), d.Memory(), NOW)
    assert decision.action == d.ROLLBACK and decision.scope == Scope(CLUSTER, ("node-b",))
