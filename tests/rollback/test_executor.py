"""The executor against the fake Kubernetes API (real client, real HTTP on 127.0.0.1).

Matrix: canary rollback, every step (label, kube-proxy ready, KPR verified off, agent
restarted, state, Event); full rollback restoring kube-proxy from the backup, in order;
refusal without backup (no writes); dry-run (only GETs); 409 once (retried) and
409 persistently (stops before the agents, reports); 403 (stops at once, says which
permission); timeout waiting for kube-proxy; crash after the first action and a
resume that does not repeat it; crash mid agent restart and a resume that does not
delete the replacement; the Lease held by another replica; runner metrics.
"""

from __future__ import annotations

import asyncio
import json

from prometheus_client import CollectorRegistry

from exporter.rollback.roles import (
    DRY_RUN, FAILED, PLANNED, REFUSED, SUCCEEDED, Scope, Trigger,
)
from exporter.rollback.backup import ConfigMapBackupStore, take_backup
from exporter.rollback.executor import ATTEMPTS, DryRunRollbacker, KubeRollbacker
from exporter.rollback.lease import micro_time
from exporter.rollback.reader import KubePlanner
from exporter.rollback.runner import RollbackRunner
from exporter.rollback.state import STATE_ANNOTATION

from .cluster import MIGRATION, T0, seed_canary, seed_full, settings

TRIGGER = Trigger("KprServiceConnectLatencyWorse fired", ("a99282f49545a961",))


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs in that 'process'."""


def planner(kube, s, vtime):
    store = ConfigMapBackupStore(kube, s.namespace, s.backup_configmap)
    return KubePlanner(kube, s, store=store, clock=vtime)


def writes(fake):
    return [r for r in fake.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def agent_uid(fake, node_name):
    (p,) = [p for p in fake.objects("pods", "kube-system")
            if p["metadata"]["labels"].get("k8s-app") == "cilium" and p["spec"]["nodeName"] == node_name]
    return p["metadata"]["uid"]


def state_of(fake, s):
    cm = fake.get("configmaps", s.state_configmap, s.namespace)
    return json.loads(cm["metadata"]["annotations"][STATE_ANNOTATION])


def events(fake, s):
    return [(e["reason"], e["message"]) for e in fake.objects("events", s.namespace)]


async def test_canary_rollback_runs_every_step(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    s = settings()
    before = {n: agent_uid(fake_kube, n) for n in ("node-a", "node-b", "node-c")}
    plan = await planner(kube, s, vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    fake_kube.clear_requests()
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)

    assert result.status == SUCCEEDED, result.message
    assert MIGRATION not in fake_kube.get("nodes", "node-b")["metadata"]["labels"]
    kp_nodes = {p["spec"]["nodeName"] for p in fake_kube.objects("pods", "kube-system")
                if p["metadata"]["labels"].get("k8s-app") == "kube-proxy"}
    assert kp_nodes == {"node-a", "node-b", "node-c"}
    after = {n: agent_uid(fake_kube, n) for n in ("node-a", "node-b", "node-c")}
    assert after["node-b"] != before["node-b"]
    assert after["node-a"] == before["node-a"] and after["node-c"] == before["node-c"]
    state = state_of(fake_kube, s)
    assert state["status"] == SUCCEEDED and state["done"] == list(range(len(plan.actions())))
    reasons = [r for r, _ in events(fake_kube, s)]
    assert reasons == ["RollbackStarted", "RollbackSucceeded"]
    assert all("a99282f49545a961" in m for _, m in events(fake_kube, s))
    # Never deletes kube-proxy or touches the agent DaemonSet (k8sServiceHost stays).
    assert not [r for r in writes(fake_kube) if "daemonsets" in r.path]
    deleted = [r.path for r in writes(fake_kube) if r.method == "DELETE"]
    assert len(deleted) == 1 and deleted[0].startswith("/api/v1/namespaces/kube-system/pods/cilium-")
    # The Lease was taken and released.
    assert "holderIdentity" not in fake_kube.get("leases", s.lease_name, s.namespace)["spec"]


async def test_full_rollback_restores_kube_proxy_first(fake_kube, kube, controller, vtime):
    seed_full(fake_kube, kube_proxy=True)
    controller.reconcile()
    s = settings()
    report = await take_backup(kube, s, clock=vtime)
    await ConfigMapBackupStore(kube, s.namespace, s.backup_configmap).save(report.backup)
    # The switch: kube-proxy deleted (DaemonSet, ConfigMap and pods).
    fake_kube.remove("daemonsets", "kube-proxy", "kube-system")
    fake_kube.remove("configmaps", "kube-proxy", "kube-system")
    for p in fake_kube.objects("pods", "kube-system"):
        if p["metadata"]["labels"].get("k8s-app") == "kube-proxy":
            fake_kube.remove("pods", p["metadata"]["name"], "kube-system")

    plan = await planner(kube, s, vtime).plan(Scope.cluster(), TRIGGER)
    assert plan.nodes == ("node-a", "node-b", "node-c")
    fake_kube.clear_requests()
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)

    assert result.status == SUCCEEDED, result.message
    data = fake_kube.get("configmaps", "cilium-config", "kube-system")["data"]
    assert data["kube-proxy-replacement"] == "false"
    assert data["kube-proxy-replacement-healthz-bind-address"] == ""
    assert fake_kube.get("daemonsets", "kube-proxy", "kube-system") is not None
    assert fake_kube.get("configmaps", "kube-proxy", "kube-system")["data"] == {"config.conf": "mode: iptables"}
    order = [(r.method, r.path) for r in writes(fake_kube)]
    ds_create = order.index(("POST", "/apis/apps/v1/namespaces/kube-system/daemonsets"))
    config_patch = order.index(("PATCH", "/api/v1/namespaces/kube-system/configmaps/cilium-config"))
    deletes = [i for i, (m, p) in enumerate(order) if m == "DELETE" and "/pods/" in p]
    assert ds_create < config_patch < min(deletes) and len(deletes) == 3


async def test_refused_without_backup_when_kube_proxy_is_gone(fake_kube, kube, controller, vtime):
    seed_full(fake_kube)
    controller.reconcile()
    s = settings()
    plan = await planner(kube, s, vtime).plan(Scope.cluster(), TRIGGER)
    fake_kube.clear_requests()
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)
    assert result.status == REFUSED
    assert "no backup holds it" in result.message
    assert [(r.method, r.path) for r in writes(fake_kube)] == [
        ("POST", "/api/v1/namespaces/kpr/events")]
    assert events(fake_kube, s)[0][0] == "RollbackRefused"


async def test_dry_run_touches_nothing(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    s = settings(mode="dry-run")
    fake_kube.clear_requests()
    runner = RollbackRunner(planner=planner(kube, s, vtime), rollbacker=DryRunRollbacker(),
                            registry=CollectorRegistry())
    result = await runner.run(Scope.of_nodes(["node-b"]), TRIGGER)
    assert result.status == PLANNED and result.mode == DRY_RUN
    assert {r.method for r in fake_kube.requests} == {"GET"}
    enforce_plan = await planner(kube, settings(), vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    assert runner.last_plan.render() == enforce_plan.render()


async def test_conflict_once_is_retried(fake_kube, kube, controller, vtime):
    seed_full(fake_kube, kube_proxy=True)
    controller.reconcile()
    s = settings()
    plan = await planner(kube, s, vtime).plan(Scope.cluster(), TRIGGER)
    fake_kube.fail("patch", "configmaps", status=409, namespace="kube-system")
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)
    assert result.status == SUCCEEDED, result.message
    assert fake_kube.get("configmaps", "cilium-config", "kube-system")["data"]["kube-proxy-replacement"] == "false"


async def test_genuine_conflict_on_the_daemonset_is_retried(fake_kube, kube, controller, vtime):
    """Someone edits kube-proxy between our read and our write: 409, re-read, succeed."""
    seed_canary(fake_kube)
    hosts = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn",
                               "values": ["node-b"]}]}]}}}
    ds = fake_kube.get("daemonsets", "kube-proxy", "kube-system")
    ds["spec"]["template"]["spec"]["affinity"] = hosts
    fake_kube.seed(ds)
    controller.reconcile()
    s = settings()
    plan = await planner(kube, s, vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    hold = fake_kube.hold("update", "daemonsets", "kube-system")
    task = asyncio.ensure_future(KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan))
    assert await asyncio.to_thread(hold.wait_arrived, 1, 5.0)
    edited = fake_kube.get("daemonsets", "kube-proxy", "kube-system")
    edited["metadata"]["annotations"] = {"edited-by": "someone-else"}
    fake_kube.seed(edited)
    hold.release()
    result = await asyncio.wait_for(task, 10)
    assert result.status == SUCCEEDED, result.message
    final = fake_kube.get("daemonsets", "kube-proxy", "kube-system")
    assert final["metadata"]["annotations"] == {"edited-by": "someone-else"}
    assert "affinity" not in final["spec"]["template"]["spec"] or \
        not final["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    conflicts = [r for r in fake_kube.requests if r.method == "PUT" and "daemonsets" in r.path]
    assert len(conflicts) == 2


async def test_persistent_conflict_stops_before_the_agents(fake_kube, kube, controller, vtime):
    seed_full(fake_kube, kube_proxy=True)
    controller.reconcile()
    s = settings()
    before = agent_uid(fake_kube, "node-a")
    plan = await planner(kube, s, vtime).plan(Scope.cluster(), TRIGGER)
    fake_kube.fail("patch", "configmaps", status=409, namespace="kube-system", times=ATTEMPTS)
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)
    assert result.status == FAILED
    assert "step kpr-off failed" in result.message and f"gave up after {ATTEMPTS}" in result.message
    assert result.done == ("wait until kube-proxy is ready on node-a, node-b, node-c",)
    assert agent_uid(fake_kube, "node-a") == before
    assert fake_kube.get("daemonsets", "kube-proxy", "kube-system") is not None
    assert state_of(fake_kube, s)["status"] == FAILED
    assert [r for r, _ in events(fake_kube, s)] == ["RollbackStarted", "RollbackFailed"]


async def test_forbidden_stops_at_once_and_names_the_permission(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    s = settings()
    before = agent_uid(fake_kube, "node-b")
    plan = await planner(kube, s, vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    fake_kube.deny("patch", "nodes")
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)
    assert result.status == FAILED and result.done == ()
    assert "forbidden" in result.message and "permissions.py" in result.message
    assert MIGRATION in fake_kube.get("nodes", "node-b")["metadata"]["labels"]
    assert agent_uid(fake_kube, "node-b") == before


async def test_kube_proxy_never_ready_times_out(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    controller.ready["kube-proxy"] = False
    s = settings()
    plan = await planner(kube, s, vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    start = vtime.now
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)
    assert result.status == FAILED
    assert "timed out after 300s waiting for kube-proxy on node-b (not ready on node-b)" in result.message
    assert 300 <= vtime.now - start <= 310
    assert fake_kube.get("configmaps", "cilium-config", "kube-system")["data"]["kube-proxy-replacement"] == "false"
    assert fake_kube.get("ciliumnodeconfigs", "kube-proxy-replacement", "kube-system") is not None


async def test_crash_after_the_first_action_resumes_without_repeating(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    s = settings()
    plan = await planner(kube, s, vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)

    async def crash(seconds):
        raise Crash()

    try:
        await KubeRollbacker(kube, s, clock=vtime, sleep=crash).rollback(plan)
    except Crash:
        pass
    state = state_of(fake_kube, s)
    assert state["status"] == "running" and state["done"] == [0]

    fake_kube.clear_requests()
    vtime.now += 1
    restarted = KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep)  # same identity: same pod
    result = await restarted.resume()
    assert result is not None and result.status == SUCCEEDED, result
    assert not [r for r in fake_kube.requests if r.method == "PATCH" and "/nodes/" in r.path]
    assert state_of(fake_kube, s)["status"] == SUCCEEDED
    assert await restarted.resume() is None


async def test_crash_mid_agent_restart_keeps_the_replacement(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    s = settings()
    plan = await planner(kube, s, vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    old = agent_uid(fake_kube, "node-b")

    async def sleep(seconds):  # the process dies at its first wait after the agent's delete
        if [r for r in fake_kube.requests if r.method == "DELETE" and "/pods/" in r.path]:
            raise Crash()
        await vtime.sleep(seconds)

    rollbacker = KubeRollbacker(kube, s, clock=vtime, sleep=sleep)
    try:
        await rollbacker.rollback(plan)
    except Crash:
        pass
    assert state_of(fake_kube, s)["restarting"] == {"node-b": old}
    controller.reconcile()  # the DaemonSet controller creates the replacement meanwhile
    replacement = agent_uid(fake_kube, "node-b")
    fake_kube.clear_requests()
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).resume()
    assert result.status == SUCCEEDED
    assert agent_uid(fake_kube, "node-b") == replacement
    assert not [r for r in fake_kube.requests if r.method == "DELETE"]


async def test_a_new_rollback_finishes_the_interrupted_one_first(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    s = settings()
    plan = await planner(kube, s, vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)

    async def crash(seconds):
        raise Crash()

    try:
        await KubeRollbacker(kube, s, clock=vtime, sleep=crash).rollback(plan)
    except Crash:
        pass
    other = await planner(kube, s, vtime).plan(Scope.cluster(["node-b"]), TRIGGER)
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(other)
    assert result.status == SUCCEEDED
    assert result.message.startswith(f"finished the interrupted rollback {plan.id}")


async def test_lease_held_by_another_replica_refuses(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    s = settings()
    fake_kube.seed({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": s.lease_name, "namespace": s.namespace},
                    "spec": {"holderIdentity": "replica-2", "leaseDurationSeconds": 60,
                             "renewTime": micro_time(vtime.now - 10)}})
    plan = await planner(kube, s, vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    fake_kube.clear_requests()
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)
    assert result.status == REFUSED and "replica-2" in result.message
    assert writes(fake_kube) == []
    vtime.now += 120  # the other replica stopped renewing: its Lease expires and is taken over
    result = await KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep).rollback(plan)
    assert result.status == SUCCEEDED
    assert fake_kube.get("leases", s.lease_name, s.namespace)["spec"]["leaseTransitions"] == 1


async def test_runner_exports_metrics_and_single_flight(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    s = settings()
    registry = CollectorRegistry()
    runner = RollbackRunner(planner=planner(kube, s, vtime),
                            rollbacker=KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep),
                            registry=registry)
    for result in ("succeeded", "failed", "refused", "noop", "planned"):  # pre-initialised
        assert registry.get_sample_value("kpr_rollbacks_total", {"result": result, "mode": "enforce"}) == 0
        assert registry.get_sample_value("kpr_rollbacks_total", {"result": result, "mode": "dry-run"}) is None
    task = runner.start(Scope.of_nodes(["node-b"]), TRIGGER)
    assert runner.busy and registry.get_sample_value("kpr_rollback_in_progress") == 1
    try:
        runner.start(Scope.of_nodes(["node-b"]), TRIGGER)
        raise AssertionError("a second start must be refused")
    except RuntimeError:
        pass
    result = await task
    assert result.status == SUCCEEDED
    assert not runner.busy and registry.get_sample_value("kpr_rollback_in_progress") == 0
    assert registry.get_sample_value("kpr_rollbacks_total", {"result": "succeeded", "mode": "enforce"}) == 1
    (ended,) = await KubeRollbacker(kube, s).history()  # a completed rollback counts for cooldown
    assert ended >= T0
