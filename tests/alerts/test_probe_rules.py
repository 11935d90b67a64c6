"""The probe alerts as the webhook receives them: ``KprProbeCheckFailing`` rolls back only
the node it names, even with other eBPF nodes in the cluster; the alert for a check failing
everywhere never acts."""

from __future__ import annotations

from types import MappingProxyType

from exporter.rollback.roles import NODES, Scope
from exporter.rulegen import render_rules
from exporter.webhook import decision as d
from exporter.webhook.payload import FIRING, Alert
from tests.alerts.ruledata import rules_of
from tests.webhook.test_decision import NOW, POLICY, T0, note, world


def _rule(name: str) -> dict:
    found = [r for r in rules_of(render_rules("default"), "alert") if r["alert"] == name]
    assert len(found) == 1
    return found[0]


def _fire(name: str, **labels: str) -> d.Decision:
    shipped = Alert(FIRING, MappingProxyType({**_rule(name)["labels"], "alertname": name,
                                              **labels}),
                    MappingProxyType({}), T0, None, "", "fp")
    return d.decide(note(shipped), POLICY, world("canary", ebpf=("node-b", "node-c"),
                                                 kube_proxy=("node-a",)), d.Memory(), NOW)


def test_a_failing_check_rolls_back_only_its_node() -> None:
    decision = _fire("KprProbeCheckFailing", check="nodeport-loopback", node="node-c")
    assert decision.action == d.ROLLBACK, decision.reason
    assert decision.scope == Scope(NODES, ("node-c",))


def test_a_check_failing_everywhere_never_acts() -> None:
    assert "kpr_action" not in _rule("KprProbeCheckFailingEverywhere")["labels"]
    decision = _fire("KprProbeCheckFailingEverywhere", check="clusterip-pod")
    assert decision.action == d.IGNORE


def test_the_failing_alert_keeps_the_node_label() -> None:
    expr = _rule("KprProbeCheckFailing")["expr"]
    assert expr.startswith("(\n  sum by (check, node)")  # the alert's labels: check and node
    assert "and on (check)" in expr
