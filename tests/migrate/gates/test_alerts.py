"""The ``alerts`` gate against a real Prometheus (alerting rules firing) and a real
Alertmanager (alerts posted to it, one of them silenced).

Rules fire a rollback alert for a migrated node, one for a node still on kube-proxy, one
without a node (scope: the eBPF nodes) and one that is not a rollback alert; which of them
count depends on the batch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.migrate.gates.alerts import (
    AlertmanagerAlerts, AlertsGate, AlertSourceError, PrometheusAlerts, judge,
)
from exporter.migrate.gates.base import FAIL, INCONCLUSIVE, PASS, BatchContext
from tests.realstack.harness import (
    Alertmanager, AlertmanagerOptions, Prometheus, PrometheusOptions, WebhookReceiver,
)

pytestmark = pytest.mark.realstack


def ctx(batch: tuple[str, ...], migrated: tuple[str, ...] = ()) -> BatchContext:
    nodes = ("node-a", "node-b", "node-c")
    switched = {*batch, *migrated}
    return BatchContext(batch, tuple(sorted(switched)),
                        tuple(n for n in nodes if n not in switched), 1000.0, 60.0)


def rule(name: str, **labels: str) -> dict[str, object]:
    return {"alert": name, "expr": "vector(1)", "labels": labels}


async def test_prometheus_rollback_alerts_for_migrated_nodes_fail_the_gate(tmp_path: Path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "t", "rules": [
        rule("KprProbeCheckFailing", kpr_action="rollback", node="node-b", check="hostport"),
        rule("KprProbeCheckFailing", kpr_action="rollback", node="node-c", check="hostport"),
        rule("KprJudgePaging", severity="warning", node="node-b"),
    ]}]}))
    async with Prometheus(tmp_path / "prom", PrometheusOptions(rule_files=[rules])) as prom:
        await prom.wait_for_alert("KprProbeCheckFailing", labels={"node": "node-c"})
        await prom.wait_for_alert("KprProbeCheckFailing", labels={"node": "node-b"})
        await prom.wait_for_alert("KprJudgePaging")
        gate = AlertsGate(PrometheusAlerts(prom.url))

        result = await gate.evaluate(ctx(("node-b",)))
        assert result.gate == "alerts" and result.result == FAIL
        assert result.reason == '1 kpr_action="rollback" alert(s) firing for the migrated nodes'
        assert result.evidence == (
            "KprProbeCheckFailing{node=node-b, check=hostport}: a migrated node",
            "KprProbeCheckFailing{node=node-c, check=hostport}: not a migrated node, not counted")

        result = await gate.evaluate(ctx(("node-a",)))
        assert result.result == PASS
        assert result.reason == 'no kpr_action="rollback" alert firing for the migrated nodes ' \
                                "(prometheus)"
        assert len(result.evidence) == 2

        later = await gate.evaluate(ctx(("node-c",), migrated=("node-a",)))
        assert later.result == FAIL and later.evidence == (
            "KprProbeCheckFailing{node=node-c, check=hostport}: a migrated node",
            "KprProbeCheckFailing{node=node-b, check=hostport}: not a migrated node, not counted")


async def test_alertmanager_counts_alerts_without_a_node_and_ignores_silenced_ones(
        tmp_path: Path):
    options = AlertmanagerOptions(WebhookReceiver("http://127.0.0.1:9/hook"))
    async with Alertmanager(tmp_path / "am", options) as am:
        gate = AlertsGate(AlertmanagerAlerts(am.url))
        assert (await gate.evaluate(ctx(("node-b",)))).result == PASS  # nothing yet
        await am.post_json("/api/v2/silences", {
            "matchers": [{"name": "alertname", "value": "Silenced", "isRegex": False}],
            "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2999-01-01T00:00:00Z",
            "createdBy": "test", "comment": "muted"})
        await am.post_alerts([
            {"labels": {"alertname": "Silenced", "kpr_action": "rollback", "node": "node-b"}},
            {"labels": {"alertname": "KprServiceConnectLatencyWorse", "kpr_action": "rollback",
                        "namespace": "shop", "service": "cart", "kpr_scope": "canary"}},
        ])
        result = await gate.evaluate(ctx(("node-b",)))
        assert result.result == FAIL, result
        assert result.evidence == ("KprServiceConnectLatencyWorse{namespace=shop, service=cart}: "
                                   "scope canary (the eBPF nodes)",)
        no_migration = await gate.evaluate(ctx(()))
        assert no_migration.result == PASS  # no node switched: nothing for it to be about


async def test_an_unreachable_source_is_inconclusive() -> None:
    result = await AlertsGate(PrometheusAlerts("http://127.0.0.1:9")).evaluate(ctx(("node-b",)))
    assert result.result == INCONCLUSIVE
    assert result.reason.startswith("cannot read the alerts from prometheus: cannot read "
                                    "http://127.0.0.1:9/api/v1/alerts")
    with pytest.raises(AlertSourceError, match="is not an http"):
        AlertmanagerAlerts("localhost:9093")


def test_other_match_labels_and_node_label() -> None:
    alerts = [{"alertname": "A", "team": "net", "host": "node-b"}]
    result = judge(ctx(("node-b",)), alerts, {"team": "net"}, "host")
    assert (result.result, result.evidence) == (FAIL, ("A{host=node-b}: a migrated node",))
    assert judge(ctx(("node-b",)), alerts, {"team": "db"}, "host").result == PASS
