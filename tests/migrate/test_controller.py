"""THE DONE-WHEN TEST and the controller's safety rules, against the fake API with the
kubelet played by the test and each node answering on its own loopback address.

On three nodes all on kube-proxy, ``migrate run --yes`` (gates that pass) takes every node
to eBPF, and after each step the cluster is what Cilium's per-node procedure says it is
then; an abort in the middle returns every node to kube-proxy.
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

from exporter.migrate import migrate_cmd as mc
from exporter.migrate.gates.base import FAIL, INCONCLUSIVE
from exporter.migrate.model import (
    STEP_ABORTED, STEP_COMPLETED, STEP_GATES, STEP_PREFLIGHT, MigrationSpec, MigrationStatus,
)
from exporter.migrate.store import Request
from exporter.rollback.actions import Plan
from exporter.rollback.roles import Scope, Trigger
from exporter.rollback.state import RollbackState, StateStore
from tests.migrate.cluster import MIGRATION, NODES, cluster_state, seed_kube_proxy_cluster
from tests.migrate.harness import FixedGate, controller, record_migration, spec
from tests.migrate.test_abort import STARTING, assert_back_to_kube_proxy

AFFINITY = json.dumps({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [{"matchExpressions": [
        {"key": MIGRATION, "operator": "NotIn", "values": ["true"]}]}]}}}, sort_keys=True)
CNC = {"kube-proxy-replacement": {
    "nodeSelector": {"matchLabels": {MIGRATION: "true"}},
    "defaults": {"kube-proxy-replacement": "true",
                 "kube-proxy-replacement-healthz-bind-address": "0.0.0.0:10256"}}}


def start(fake, kubelet):
    seed_kube_proxy_cluster(fake)
    kubelet.reconcile()
    assert cluster_state(fake) == STARTING


async def test_migrate_run_takes_every_node_to_ebpf_step_by_step(fake_kube, kube, kubelet, vtime,
                                                                 endpoints):
    start(fake_kube, kubelet)
    record: list = []
    settings = controller(kube, vtime, endpoints.port)  # only for its settings
    out = io.StringIO()
    gates = {"verify": FixedGate("verify"), "judge": FixedGate("judge")}

    def say(text: str) -> None:
        record.append((text.split(":", 1)[0], cluster_state(fake_kube)))

    code = await mc.cmd_run(settings.steps.rollback, settings.steps.settings, kube,
                            spec(id="m-done"), out=out, yes=True, gates=gates, clock=vtime,
                            sleep=vtime.sleep, timer=vtime.timer, say=say)
    assert code == 0, out.getvalue()
    steps = [s for s, _ in record]
    assert steps == ["pending", "preflight", "exclude-kube-proxy", "node-config",
                     *["drain", "label", "restart", "verify", "uncordon", "gates"] * 3,
                     "cluster-wide", "cleanup"]
    after = {}
    for step, state in record:  # the last state recorded after each step, per batch
        after.setdefault(step, []).append(state)
    # 2. kube-proxy gets the affinity that keeps it off labelled nodes; nothing else yet
    assert after["exclude-kube-proxy"][0] == {**STARTING, "kube_proxy_daemonset": AFFINITY}
    # 3. the CiliumNodeConfig selecting the label, KPR on, health endpoint configured
    assert after["node-config"][0]["node_configs"] == CNC
    assert after["node-config"][0]["kpr"] == "false"  # cilium-config untouched until the end
    for batch, node in enumerate(NODES):
        labelled = {n: ("true" if i <= batch else None) for i, n in enumerate(NODES)}
        # 4. per node: labelled, agent restarted, kube-proxy gone from it (and only it)
        assert after["label"][batch]["labels"] == labelled
        assert after["verify"][batch]["kube_proxy_on"] == list(NODES[batch + 1:])
        assert endpoints.agent_kpr(node)
        assert after["verify"][batch]["kube_proxy_daemonset"] == AFFINITY  # never deleted early
    # 5. finish: global config, then CNC, kube-proxy DaemonSet and labels gone
    assert after["cluster-wide"][0]["kpr"] == "true" and after["cluster-wide"][0]["node_configs"]
    assert after["cleanup"][0] == {
        "labels": dict.fromkeys(NODES), "unschedulable": [], "kube_proxy_daemonset": None,
        "node_configs": {}, "kpr": "true", "healthz": "0.0.0.0:10256", "kube_proxy_on": []}
    assert all(endpoints.agent_kpr(n) for n in NODES)
    assert [len(g.seen) for g in gates.values()] == [3, 3]  # gated after every batch
    assert gates["verify"].seen[0].control == ("node-b", "node-c")
    backup = fake_kube.get("configmaps", "kpr-exporter-backup", "kpr")
    assert "kube-proxy" in backup["data"]["backup.json"]  # kept: rollback still works
    reasons = [e["reason"] for e in fake_kube.objects("events", "kpr")]
    assert "MigrationVerify" in reasons and "MigrationCleanup" in reasons
    assert f"migration {STEP_COMPLETED}" in out.getvalue()


async def test_an_abort_midway_returns_every_node_to_kube_proxy(fake_kube, kube, kubelet, vtime,
                                                               endpoints):
    start(fake_kube, kubelet)
    ctl = controller(kube, vtime, endpoints.port)
    await record_migration(ctl, spec())
    while True:  # run until the second batch soaks
        status = await ctl.tick()
        if status.step == STEP_GATES and status.batch == 1:
            break
        await vtime.sleep(5)
    assert cluster_state(fake_kube)["labels"] == {"node-a": "true", "node-b": "true", "node-c": None}
    await ctl.store.update_request(lambda q: Request(abort="changed my mind", by="test"))
    status = await ctl.run()
    assert status.step == STEP_ABORTED and "changed my mind" in status.abort_reason
    assert_back_to_kube_proxy(fake_kube, endpoints)


async def test_a_failed_gate_aborts_and_an_inconclusive_one_pauses(fake_kube, kube, kubelet, vtime,
                                                                  endpoints):
    start(fake_kube, kubelet)
    judge = FixedGate("judge", INCONCLUSIVE, "too little evidence")
    ctl = controller(kube, vtime, endpoints.port, gates={"verify": FixedGate("verify"), "judge": judge})
    await record_migration(ctl, spec())
    for _ in range(40):
        status = await ctl.tick()
        if status.paused:
            break
        await vtime.sleep(5)
    assert status.paused and "too little evidence" in status.pause_reason and status.batch == 0
    assert cluster_state(fake_kube)["labels"]["node-b"] is None  # the next batch waits
    # resume: the soak is extended, then the gates judge again (now failing: abort)
    judge.result, judge.reason = FAIL, "cart is worse on node-a"
    await ctl.store.update_request(lambda q: Request(resume=1, by="test"))
    status = await ctl.tick()
    assert not status.paused and status.soak_extended_seconds > 0 and status.step == STEP_GATES
    status = await ctl.run()
    assert status.step == STEP_ABORTED and "cart is worse" in status.abort_reason
    assert status.migrated == () and status.restarted == ()  # node-a is back on kube-proxy
    assert [r.result for r in status.gate_results if r.gate == "judge"] == [INCONCLUSIVE, FAIL]
    assert_back_to_kube_proxy(fake_kube, endpoints)


async def test_promote_skips_the_rest_of_the_soak(fake_kube, kube, kubelet, vtime, endpoints):
    start(fake_kube, kubelet)
    ctl = controller(kube, vtime, endpoints.port)
    await record_migration(ctl, spec(soak_seconds=3600.0))
    status = await ctl.tick()
    assert status.step == STEP_GATES and status.batch == 0
    assert await ctl.tick() == status  # soaking: nothing to do
    await ctl.store.update_request(lambda q: Request(promote=1, by="test"))
    status = await ctl.tick()
    assert status.batch == 1 and status.step == STEP_GATES and not status.promoted


async def test_a_rollback_during_the_migration_wins(fake_kube, kube, kubelet, vtime, endpoints):
    start(fake_kube, kubelet)
    ctl = controller(kube, vtime, endpoints.port)
    await record_migration(ctl, spec())
    status = await ctl.tick()
    assert status.step == STEP_GATES
    # the webhook's rollback (another replica) holds the Lease: the migration waits
    fake_kube.seed({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": "kpr-exporter-rollback", "namespace": "kpr"},
                    "spec": {"holderIdentity": "other", "leaseDurationSeconds": 60,
                             "renewTime": "2027-01-15T08:00:00.000000Z"}})
    vtime.now += 120
    assert (await ctl.tick()).step == STEP_GATES
    # ... and records its rollback: the migration turns into an abort
    fake_kube.remove("leases", "kpr-exporter-rollback", "kpr")
    plan = Plan("p1", Scope.of_nodes(["node-a"]), Trigger("KprConnectLatencyWorse", ("f1",)),
                vtime.now, ("node-a",))
    await StateStore(kube, "kpr", "kpr-exporter-rollback").save(
        RollbackState(plan, status="succeeded", started_at=vtime.now, updated_at=vtime.now))
    status = await ctl.run()
    assert status.step == STEP_ABORTED and "the rollback wins" in status.abort_reason
    assert_back_to_kube_proxy(fake_kube, endpoints)


async def test_kill_switch_and_dry_run_change_nothing(fake_kube, kube, kubelet, vtime, endpoints):
    start(fake_kube, kubelet)
    said: list[str] = []
    stopped = controller(kube, vtime, endpoints.port, kill_switch=lambda: True)
    stopped._say = said.append
    await record_migration(stopped, spec())
    before = fake_kube.resource_version
    assert (await stopped.tick()).step == "pending"
    dry = controller(kube, vtime, endpoints.port)
    dry.enforce, dry._say = False, said.append
    assert (await dry.tick()).step == "pending"
    assert fake_kube.resource_version == before and cluster_state(fake_kube) == STARTING
    assert any("kill-switch" in s for s in said) and any("dry-run" in s for s in said)


async def test_a_failed_preflight_pauses_before_any_change(fake_kube, kube, kubelet, vtime, endpoints):
    start(fake_kube, kubelet)
    failing = SimpleNamespace(check="kernel", status="fail", message="kernel 4.9 on node-c")

    async def preflight():
        return [failing]

    ctl = controller(kube, vtime, endpoints.port, preflight=preflight)
    await record_migration(ctl, spec())
    status = await ctl.tick()
    assert status.paused and status.step == STEP_PREFLIGHT and "kernel 4.9" in status.pause_reason
    assert cluster_state(fake_kube) == STARTING


async def test_migrate_run_without_yes_is_a_dry_run(fake_kube, kube, kubelet, vtime, endpoints):
    start(fake_kube, kubelet)
    base = controller(kube, vtime, endpoints.port)
    out = io.StringIO()
    code = await mc.cmd_run(base.steps.rollback, base.steps.settings, kube,
                            MigrationSpec("m-dry", gates=()), out=out, yes=False, gates={})
    assert code == 0 and "dry-run: nothing was changed" in out.getvalue()
    assert "batch 3/3: node-c" in out.getvalue() and "warning: gate(s)" in out.getvalue()
    assert cluster_state(fake_kube) == STARTING
    assert fake_kube.get("configmaps", "kpr-exporter-migration", "kpr") is None
    assert MigrationStatus().step == "pending"


async def test_a_node_that_joins_midway_is_migrated_in_the_next_batch(fake_kube, kube, kubelet,
                                                                     vtime, endpoints):
    from exporter.rollback.settings import DatapathProof
    from tests.fakekube.fixtures import node

    start(fake_kube, kubelet)
    ctl = controller(kube, vtime, endpoints.port, rollback={"proof": DatapathProof(enabled=False)})
    await record_migration(ctl, spec(batches=("1", "100%")))
    status = await ctl.tick()
    assert status.step == STEP_GATES and status.batches == (("node-a",), ("node-b", "node-c"))
    fake_kube.seed(node("node-d"))
    kubelet.reconcile()
    status = await ctl.run()
    assert status.step == "completed" and status.migrated == ("node-a", "node-b", "node-c", "node-d")
    assert status.batches[1] == ("node-b", "node-c", "node-d")
    assert any("node-d joined" in w for w in status.warnings)


async def test_an_unavailable_api_is_retried_not_aborted(fake_kube, kube, kubelet, vtime, endpoints):
    start(fake_kube, kubelet)
    ctl = controller(kube, vtime, endpoints.port)
    await record_migration(ctl, spec())
    fake_kube.fail("patch", "daemonsets", status=503, times=10)
    status = await ctl.tick()
    assert status.step == "exclude-kube-proxy" and not status.paused and not status.aborted
    assert cluster_state(fake_kube) == STARTING
    fake_kube.allow_all()
    status = await ctl.run()
    assert status.step == STEP_COMPLETED


class RememberingGate(FixedGate):
    """Records the cluster as it was when asked for its reference (``before_batch``)."""

    def __init__(self, name: str, fake) -> None:
        super().__init__(name)
        self.fake = fake
        self.before: list = []

    async def before_batch(self, ctx) -> None:
        self.before.append((ctx.batch, cluster_state(self.fake)["labels"]))


async def test_a_gate_reads_its_reference_before_the_batch_is_labelled(fake_kube, kube, kubelet,
                                                                       vtime, endpoints):
    start(fake_kube, kubelet)
    gate = RememberingGate("verify", fake_kube)
    settings = controller(kube, vtime, endpoints.port)
    code = await mc.cmd_run(settings.steps.rollback, settings.steps.settings, kube,
                            spec(id="m-ref", gates=("verify",)), out=io.StringIO(), yes=True,
                            gates={"verify": gate}, clock=vtime, sleep=vtime.sleep,
                            timer=vtime.timer, say=lambda _: None)
    assert code == 0
    assert [batch for batch, _ in gate.before] == [(n,) for n in NODES]
    for batch, labels in gate.before:  # none of the batch's nodes labelled yet
        assert all(labels[n] is None for n in batch)
