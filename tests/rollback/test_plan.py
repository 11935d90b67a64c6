"""Planning tables: cluster snapshot + scope -> the exact actions (or a refusal).

Matrix: per-node canary (official procedure) rolled back by node and by cluster;
full migration with kube-proxy deleted and restored from the backup; kube-proxy
gone without a backup (refused); a node switched by cilium-config itself with a
node scope (refused); a CiliumNodeConfig shared with out-of-scope nodes (refused /
accepted once the scope covers them); a hostname NotIn exclusion; an exclusion the
tool does not undo (refused); nothing to do; cilium-config missing; unknown nodes;
serialisation round trip and the rendered text.
"""

import pytest

from exporter.rollback.roles import NOOP, REFUSED, Scope, Trigger
from exporter.cilium import MIGRATION_LABEL, NodeConfig
from exporter.rollback.model import Backup, ClusterSnapshot
from exporter.rollback.actions import (
    READY, Plan, ProveNode, RemoveNodeLabel, RestartAgent, RestoreObject, SetConfigValues, StripNodeConfig,
    UnexcludeNodes, VerifyKprOff, WaitKubeProxyReady,
)
from exporter.rollback.plan import build_plan
from exporter.rollback.settings import RollbackSettings

MIGRATION = MIGRATION_LABEL
HOST = "kubernetes.io/hostname"
SETTINGS = RollbackSettings()
TRIGGER = Trigger("test", ("a99282f49545a961",))
NOW = 1_800_000_000.0


def labels(name, **extra):
    return {HOST: name, **extra}


def kube_proxy_ds(terms=None, node_selector=None):
    spec = {"containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.31.0"}]}
    if terms:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": terms}}}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                     "template": {"metadata": {"labels": {"k8s-app": "kube-proxy"}}, "spec": spec}}}


MIGRATION_AFFINITY = [{"matchExpressions": [{"key": MIGRATION, "operator": "NotIn", "values": ["true"]}]}]
CANARY_CNC = NodeConfig("kube-system", "kube-proxy-replacement", {"matchLabels": {MIGRATION: "true"}},
                        {"kube-proxy-replacement": "true",
                         "kube-proxy-replacement-healthz-bind-address": "0.0.0.0:10256"})
KP_CM = {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "kube-proxy", "namespace": "kube-system"}, "data": {"config.conf": "x"}}
BACKUP = Backup("2026-11-20T10:00:00Z", {"data": {"kube-proxy-replacement": "false"}}, kube_proxy_ds(),
                KP_CM, (), {"name": "cilium", "revision": 4})


def canary_cluster(**overrides):
    base = dict(
        nodes={"node-a": labels("node-a"), "node-b": labels("node-b", **{MIGRATION: "true"}),
               "node-c": labels("node-c")},
        cilium_config={"kube-proxy-replacement": "false"},
        node_configs=(CANARY_CNC,),
        kube_proxy_daemonset=kube_proxy_ds(MIGRATION_AFFINITY),
        kube_proxy_configmap=True,
        backup=BACKUP,
    )
    base.update(overrides)
    return ClusterSnapshot(**base)


def full_cluster(**overrides):
    base = dict(
        nodes={n: labels(n) for n in ("node-a", "node-b", "node-c")},
        cilium_config={"kube-proxy-replacement": "true",
                       "kube-proxy-replacement-healthz-bind-address": "0.0.0.0:10256"},
        kube_proxy_daemonset=None, kube_proxy_configmap=False, backup=BACKUP,
    )
    base.update(overrides)
    return ClusterSnapshot(**base)


def steps(plan: Plan):
    return [list(step.actions) for step in plan.steps]


def test_canary_node_rollback_is_the_reverse_of_the_per_node_procedure():
    plan = build_plan(canary_cluster(), Scope.of_nodes(["node-b"]), TRIGGER, SETTINGS, NOW)
    assert plan.status == READY and plan.nodes == ("node-b",)
    assert steps(plan) == [
        [RemoveNodeLabel("node-b", MIGRATION), WaitKubeProxyReady(("node-b",))],
        [VerifyKprOff(("node-b",))],
        [RestartAgent("node-b")],
        [ProveNode("node-b")],
    ]
    assert any("deselects" in n for n in plan.notes)


def test_canary_cluster_rollback_also_removes_the_node_config():
    plan = build_plan(canary_cluster(), Scope.cluster(["node-b"]), TRIGGER, SETTINGS, NOW)
    assert steps(plan)[1] == [
        StripNodeConfig("kube-system", "kube-proxy-replacement",
                        ("kube-proxy-replacement", "kube-proxy-replacement-healthz-bind-address"), True),
        VerifyKprOff(("node-b",)),
    ]


def test_full_rollback_restores_kube_proxy_from_the_backup():
    plan = build_plan(full_cluster(), Scope.cluster(), TRIGGER, SETTINGS, NOW)
    nodes = ("node-a", "node-b", "node-c")
    assert plan.nodes == nodes
    assert steps(plan) == [
        [RestoreObject("v1", "ConfigMap", "kube-system", "kube-proxy", KP_CM, BACKUP.taken_at),
         RestoreObject("apps/v1", "DaemonSet", "kube-system", "kube-proxy", kube_proxy_ds(),
                       BACKUP.taken_at),
         WaitKubeProxyReady(nodes)],
        [SetConfigValues("kube-system", "cilium-config",
                         {"kube-proxy-replacement": "false",
                          "kube-proxy-replacement-healthz-bind-address": ""}),
         VerifyKprOff(nodes)],
        [RestartAgent(n) for n in nodes],
        [ProveNode(n) for n in nodes],
    ]


def test_kube_proxy_gone_without_backup_is_refused_with_advice():
    plan = build_plan(full_cluster(backup=None), Scope.cluster(), TRIGGER, SETTINGS, NOW)
    assert plan.status == REFUSED and plan.steps == ()
    assert "is gone and no backup holds it" in plan.refusal
    assert "Nothing was changed" in plan.refusal and "kpr-exporter backup" in plan.refusal


def test_broken_backup_is_named_in_the_refusal():
    plan = build_plan(full_cluster(backup=None, backup_error="not valid JSON"), Scope.cluster(),
                      TRIGGER, SETTINGS, NOW)
    assert "backup unreadable: not valid JSON" in plan.refusal


def test_node_scope_cannot_undo_a_cluster_wide_switch():
    snapshot = full_cluster(kube_proxy_daemonset=kube_proxy_ds(), kube_proxy_configmap=True)
    plan = build_plan(snapshot, Scope.of_nodes(["node-b"]), TRIGGER, SETTINGS, NOW)
    assert plan.status == REFUSED
    assert "sets kube-proxy-replacement=\"true\" for every node" in plan.refusal
    assert "--scope cluster" in plan.refusal


def test_shared_node_config_outside_the_scope_is_refused():
    by_host = NodeConfig("kube-system", "kpr-hosts",
                         {"matchExpressions": [{"key": HOST, "operator": "In", "values": ["node-b", "node-c"]}]},
                         {"kube-proxy-replacement": "true", "bpf-lb-mode": "dsr"})
    snapshot = canary_cluster(nodes={n: labels(n) for n in ("node-a", "node-b", "node-c")},
                              node_configs=(by_host,))
    plan = build_plan(snapshot, Scope.of_nodes(["node-b"]), TRIGGER, SETTINGS, NOW)
    assert plan.status == REFUSED and "also for node-c" in plan.refusal
    wider = build_plan(snapshot, Scope.of_nodes(["node-b", "node-c"]), TRIGGER, SETTINGS, NOW)
    assert steps(wider)[1] == [
        StripNodeConfig("kube-system", "kpr-hosts", ("kube-proxy-replacement",), False),
        VerifyKprOff(("node-b", "node-c")),
    ]
    assert "remove kube-proxy-replacement from CiliumNodeConfig" in wider.render()


def test_hostname_exclusion_is_lifted_for_the_scope_only():
    ds = kube_proxy_ds([{"matchExpressions": [
        {"key": HOST, "operator": "NotIn", "values": ["node-b", "node-c"]}]}])
    by_host = NodeConfig("kube-system", "kpr-b", {"matchLabels": {HOST: "node-b"}},
                         {"kube-proxy-replacement": "true"})
    snapshot = canary_cluster(nodes={n: labels(n) for n in ("node-a", "node-b", "node-c")},
                              node_configs=(by_host,), kube_proxy_daemonset=ds)
    plan = build_plan(snapshot, Scope.of_nodes(["node-b"]), TRIGGER, SETTINGS, NOW)
    assert steps(plan)[0] == [UnexcludeNodes("kube-system", "kube-proxy", HOST, ("node-b",)),
                              WaitKubeProxyReady(("node-b",))]
    assert steps(plan)[1][0] == StripNodeConfig("kube-system", "kpr-b", ("kube-proxy-replacement",), True)


def test_unknown_exclusion_is_refused():
    ds = kube_proxy_ds(node_selector={"kpr.example/legacy": "yes"})
    plan = build_plan(canary_cluster(kube_proxy_daemonset=ds), Scope.of_nodes(["node-b"]),
                      TRIGGER, SETTINGS, NOW)
    assert plan.status == REFUSED and "does not undo" in plan.refusal
    assert "kpr.example/legacy" in plan.refusal


def test_nothing_to_do_when_every_node_is_off():
    snapshot = canary_cluster(node_configs=(), nodes={n: labels(n) for n in ("node-a", "node-b")})
    plan = build_plan(snapshot, Scope.cluster(), TRIGGER, SETTINGS, NOW)
    assert plan.status == NOOP and "nothing to do" in plan.render()


def test_cluster_scope_restarts_agents_the_tracker_still_sees_on_ebpf():
    snapshot = canary_cluster(node_configs=(), nodes={n: labels(n) for n in ("node-a", "node-b")})
    plan = build_plan(snapshot, Scope.cluster(["node-b"]), TRIGGER, SETTINGS, NOW)
    assert steps(plan) == [[WaitKubeProxyReady(("node-b",))], [VerifyKprOff(("node-b",))],
                           [RestartAgent("node-b")], [ProveNode("node-b")]]


def test_the_datapath_proof_can_be_turned_off_and_the_plan_says_so():
    from exporter.rollback.settings import DatapathProof

    off = RollbackSettings(proof=DatapathProof(enabled=False))
    plan = build_plan(canary_cluster(), Scope.of_nodes(["node-b"]), TRIGGER, off, NOW)
    assert not any(isinstance(a, ProveNode) for _, _, a in plan.actions())
    assert any("datapath proof is off" in n for n in plan.notes)
    on = build_plan(canary_cluster(), Scope.of_nodes(["node-b"]), TRIGGER, SETTINGS, NOW)
    assert any("Cilium 1.17" in n for n in on.notes)
    assert "prove node-b is on kube-proxy" in on.render()


def test_missing_cilium_config_is_refused():
    plan = build_plan(canary_cluster(cilium_config=None), Scope.cluster(), TRIGGER, SETTINGS, NOW)
    assert plan.status == REFUSED and "cilium-config not found" in plan.refusal


def test_unknown_nodes_are_skipped_with_a_warning():
    plan = build_plan(canary_cluster(), Scope.of_nodes(["node-b", "node-x"]), TRIGGER, SETTINGS, NOW)
    assert plan.nodes == ("node-b",)
    assert any("node-x not found" in w for w in plan.warnings)


def test_restored_kube_proxy_on_other_ebpf_nodes_is_warned_about():
    snapshot = canary_cluster(kube_proxy_daemonset=None)
    snapshot = canary_cluster(
        kube_proxy_daemonset=None,
        nodes={**snapshot.nodes, "node-c": labels("node-c", **{MIGRATION: "true"})},
    )
    plan = build_plan(snapshot, Scope.of_nodes(["node-b"]), TRIGGER, SETTINGS, NOW)
    assert plan.status == READY
    assert any("also lands on node-c" in w for w in plan.warnings)


def test_plan_round_trips_and_renders():
    plan = build_plan(full_cluster(), Scope.cluster(), TRIGGER, SETTINGS, NOW)
    again = Plan.from_dict(plan.to_dict())
    assert again == plan
    text = plan.render()
    assert text.startswith(f"Rollback plan {plan.id} for the whole cluster")
    assert "alerts: a99282f49545a961" in text
    assert "1. bring kube-proxy back" in text and "3. restart the Cilium agents" in text
    assert "never: delete kube-proxy, run kube-proxy --cleanup" in text
    # Same input, same id: the id is a digest of what the plan does.
    assert build_plan(full_cluster(), Scope.cluster(), TRIGGER, SETTINGS, NOW).id == plan.id


@pytest.mark.parametrize("image, server, warned", [
    ("registry.k8s.io/kube-proxy:v1.31.0", "v1.31.4", False),
    ("registry.k8s.io/kube-proxy:v1.30.2", "v1.31.4", False),
    ("registry.k8s.io/kube-proxy:v1.29.2@sha256:00", "v1.31.4", True),
    ("registry.k8s.io/kube-proxy:v1.33.0", "v1.31.4", True),
    ("registry.k8s.io/kube-proxy:latest", "v1.31.4", False),
    ("registry.k8s.io/kube-proxy:v1.29.2", "", False),
])
def test_restoring_a_far_older_or_newer_kube_proxy_is_warned(image, server, warned):
    from exporter.rollback.plan import version_skew

    ds = kube_proxy_ds()
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = image
    text = version_skew(ds, server)
    assert bool(text) is warned
    if warned:
        assert "minor versions away from the API server" in text and image in text


def test_a_full_rollback_puts_back_the_sub_features_the_switch_changed():
    before = Backup("2026-11-20T10:00:00Z", {"data": {
        "kube-proxy-replacement": "false", "bpf-lb-sock": "false", "enable-node-port": "false",
        "bpf-lb-sock-hostns-only": "true"}}, kube_proxy_ds(), KP_CM)
    now = {"kube-proxy-replacement": "true", "bpf-lb-sock": "true", "enable-node-port": "false",
           "bpf-lb-sock-hostns-only": "false", "enable-host-port": "true"}
    plan = build_plan(full_cluster(cilium_config=now, backup=before), Scope.cluster(), TRIGGER,
                      SETTINGS, NOW)
    (values,) = [a.values for _, _, a in plan.actions() if isinstance(a, SetConfigValues)]
    assert values == {"kube-proxy-replacement": "false", "bpf-lb-sock": "false",
                      "bpf-lb-sock-hostns-only": "true"}
    assert any("enable-host-port set in cilium-config since the backup" in w for w in plan.warnings)


def test_without_a_backed_up_cilium_config_sub_features_are_left_and_said_so():
    now = {"kube-proxy-replacement": "true", "bpf-lb-sock": "true"}
    backup = Backup("2026-11-20T10:00:00Z", None, kube_proxy_ds(), KP_CM)
    plan = build_plan(full_cluster(cilium_config=now, backup=backup), Scope.cluster(), TRIGGER,
                      SETTINGS, NOW)
    (values,) = [a.values for _, _, a in plan.actions() if isinstance(a, SetConfigValues)]
    assert values == {"kube-proxy-replacement": "false"}
    assert any("sub-features (bpf-lb-sock) are left" in n for n in plan.notes)
