"""Two replicas and one rollback, against the fake API (real client, real HTTP on 127.0.0.1).

Matrix: a replica whose API calls stall past the Lease duration while another takes over
never repeats an action (each agent restarted exactly once) and reports the loss; the
Lease is renewed on a timer while one action runs long, so the other replica is refused;
a replica whose Lease was taken stops waiting at once and writes nothing more; a stale
writer of the state ConfigMap gets a conflict; a holder killed without releasing the
Lease (as SIGKILL leaves it) is resumed by another replica within one Lease duration plus
a poll; an interrupted rollback does not count for cooldown; a new, wider scope is
planned after the interrupted rollback is finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from prometheus_client import CollectorRegistry

from exporter.kube.client import KubeClient
from exporter.rollback.roles import FAILED, SUCCEEDED, Scope, Trigger
from exporter.rollback.backup import ConfigMapBackupStore
from exporter.rollback.executor import KubeRollbacker
from exporter.rollback.lease import micro_time, parse_micro_time
from exporter.rollback.reader import KubePlanner
from exporter.rollback.runner import RollbackRunner
from exporter.rollback.state import (
    HISTORY_ANNOTATION, STATE_ANNOTATION, RollbackState, StateConflict, StateStore,
)
from tests.fakekube.fixtures import write_kubeconfig

from .cluster import MIGRATION, NODES, T0, seed_canary, seed_full, settings

TRIGGER = Trigger("KprServiceConnectLatencyWorse fired", ("a99282f49545a961",))
A_TOKEN = "replica-a-token"


def planner(kube, s, vtime):
    return KubePlanner(kube, s, store=ConfigMapBackupStore(kube, s.namespace, s.backup_configmap),
                       clock=vtime)


def rollbacker(kube, identity, vtime, **kw):
    return KubeRollbacker(kube, settings(identity=identity), clock=vtime, sleep=vtime.sleep,
                          timer=vtime.timer, **kw)


def state_of(fake):
    s = settings()
    annotations = fake.get("configmaps", s.state_configmap, s.namespace)["metadata"]["annotations"]
    return json.loads(annotations[STATE_ANNOTATION])


def lease_spec(fake):
    s = settings()
    return fake.get("leases", s.lease_name, s.namespace)["spec"]


def restarts(controller, since=0):
    """Agent pods the 'DaemonSet controller' had to create, per node, after ``since``."""
    made = [n for ds, n in controller.created[since:] if ds == "cilium"]
    return {n: made.count(n) for n in NODES}


@pytest.fixture
async def kube_a(fake_kube, tmp_path):
    """Replica A's own client: its requests carry their own token, so they can be held."""
    config = write_kubeconfig(tmp_path / "replica-a", fake_kube.url, token=A_TOKEN)
    client = KubeClient.connect(str(config), request_timeout=30.0)
    yield client
    await client.close()


async def test_a_stalled_replica_never_repeats_what_the_new_holder_did(
        fake_kube, kube, kube_a, controller, vtime):
    seed_full(fake_kube, kube_proxy=True)
    controller.reconcile()
    plan = await planner(kube, settings(), vtime).plan(Scope.cluster(), TRIGGER)
    since = len(controller.created)
    a = rollbacker(kube_a, "replica-a", vtime)
    b = rollbacker(kube, "replica-b", vtime)

    # A stalls inside its first agent restart: its delete, then every call it makes, hang.
    first_delete = fake_kube.hold("delete", "pods", "kube-system", token=A_TOKEN)
    task_a = asyncio.ensure_future(a.rollback(plan))
    try:
        assert await asyncio.to_thread(first_delete.wait_arrived, 1, 10.0)
        stalled = fake_kube.hold("*", "*", token=A_TOKEN)
        vtime.now += settings().lease_seconds + 1  # A's Lease runs out meanwhile
        result_b = await asyncio.wait_for(b.resume(), 20)
        assert result_b is not None and result_b.status == SUCCEEDED, result_b
    finally:
        first_delete.release()
        stalled.release()
        result_a = await asyncio.wait_for(task_a, 20)

    assert restarts(controller, since) == {"node-a": 1, "node-b": 1, "node-c": 1}
    assert result_a.status == FAILED and "Lease" in result_a.message, result_a
    state = state_of(fake_kube)
    assert (state["status"], state["holder"]) == (SUCCEEDED, "replica-b")
    assert state["done"] == list(range(len(plan.actions())))
    assert "holderIdentity" not in lease_spec(fake_kube)  # A did not take it again


async def test_the_lease_is_renewed_while_one_action_runs_long(
        fake_kube, kube, kube_a, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    plan = await planner(kube, settings(), vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    lease_seconds = settings().lease_seconds
    a = rollbacker(kube_a, "replica-a", vtime)
    slow_delete = fake_kube.hold("delete", "pods", "kube-system", token=A_TOKEN)
    task_a = asyncio.ensure_future(a.rollback(plan))
    try:
        assert await asyncio.to_thread(slow_delete.wait_arrived, 1, 10.0)
        for _ in range(9):  # three Lease durations inside one API call
            await vtime.parked(1)  # A's renewal timer waits on the clock
            vtime.now += lease_seconds / 3
            renewed = vtime.now
            assert await asyncio.to_thread(fake_kube.wait_for, lambda: parse_micro_time(
                lease_spec(fake_kube).get("renewTime")) == renewed, 10.0), "no renewal"
        b = rollbacker(kube, "replica-b", vtime)
        assert await b.resume() is None
        refused = await b.rollback(plan)
        assert "replica-a" in refused.message and lease_spec(fake_kube)["holderIdentity"] == "replica-a"
    finally:
        slow_delete.release()
        result_a = await asyncio.wait_for(task_a, 20)
    assert result_a.status == SUCCEEDED, result_a
    assert state_of(fake_kube)["holder"] == "replica-a"


async def test_a_replica_whose_lease_was_taken_stops_waiting_at_once(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.ready["kube-proxy"] = False  # step 1 waits (up to 300 s) for kube-proxy
    controller.reconcile()
    plan = await planner(kube, settings(), vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    start = vtime.now
    task = asyncio.ensure_future(rollbacker(kube, "replica-a", vtime).rollback(plan))
    try:
        assert await asyncio.to_thread(fake_kube.wait_for_request, lambda r: r.method == "GET" and (
            r.query.get("labelSelector") == "k8s-app=kube-proxy"), 10.0)
        lease = fake_kube.get("leases", settings().lease_name, settings().namespace)
        lease["spec"].update(holderIdentity="replica-b", renewTime=micro_time(vtime.now))
        fake_kube.seed(lease)  # replica B took it over (A's renewals did not get through)
        fake_kube.clear_requests()
        result = await asyncio.wait_for(task, 20)
    finally:
        await stop(task)
    assert result.status == FAILED and "replica-b holds it now" in result.message, result
    assert vtime.now - start <= settings().lease_seconds / 3 + 2 * settings().timeouts.poll_interval_seconds
    assert not [r for r in fake_kube.requests if r.method != "GET"]  # nothing written after
    assert lease_spec(fake_kube)["holderIdentity"] == "replica-b"


async def test_a_stale_writer_of_the_state_gets_a_conflict(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    plan = await planner(kube, settings(), vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    s = settings()
    first, second = (StateStore(kube, s.namespace, s.state_configmap) for _ in range(2))
    assert await first.load() is None
    await first.save(RollbackState(plan, holder="replica-a"))
    stale = await second.load()
    assert stale is not None
    current = await first.load()
    current.done.append(0)
    await first.save(current)  # the new holder records progress
    stale.holder = "replica-b"
    with pytest.raises(StateConflict):
        await second.save(stale)
    assert state_of(fake_kube)["done"] == [0]


async def stop(task):
    """End a task the test abandoned (a 'killed' replica) before the fixtures close."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def never(seconds):
    await asyncio.Future()


async def kill_holder(kube, plan, vtime):
    """Replica A dies mid-rollback the way SIGKILL leaves it: Lease held, state running."""
    died = asyncio.Event()

    async def dies(seconds):  # its first wait: the process is gone, nothing after it runs
        died.set()
        await asyncio.Future()

    a = KubeRollbacker(kube, settings(identity="replica-a"), clock=vtime, sleep=dies, timer=never)
    task = asyncio.ensure_future(a.rollback(plan))
    await asyncio.wait_for(died.wait(), 10)
    return task


async def test_a_killed_holder_is_resumed_within_a_lease_duration_and_a_poll(
        fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    plan = await planner(kube, settings(), vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    since = len(controller.created)
    dead = await kill_holder(kube, plan, vtime)
    died_at = vtime.now
    assert state_of(fake_kube)["status"] == "running"
    assert lease_spec(fake_kube)["holderIdentity"] == "replica-a"

    b = rollbacker(kube, "replica-b", vtime)
    registry = CollectorRegistry()
    runner = RollbackRunner(planner=planner(kube, settings(identity="replica-b"), vtime), rollbacker=b,
                            registry=registry)
    results = []
    idle = asyncio.Event()  # B's loop waits for its next poll
    next_poll = [0.0]

    async def poll_timer(seconds):
        next_poll[0] = vtime.now + seconds
        idle.set()
        await vtime.timer(seconds)

    loop = asyncio.ensure_future(runner.keep_resuming(b.resume_interval, poll_timer, results.append))
    limit = died_at + settings().lease_seconds + b.resume_interval
    try:
        while True:
            await asyncio.wait_for(idle.wait(), 20)
            if results:
                break
            assert vtime.now <= limit, "not resumed within one Lease duration plus a poll"
            assert lease_spec(fake_kube)["holderIdentity"] == "replica-a"  # only polled so far
            assert not runner.busy and registry.get_sample_value("kpr_rollback_in_progress") == 0
            vtime.now += 1
            if vtime.now >= next_poll[0]:
                idle.clear()
    finally:
        await stop(loop)
        await stop(dead)
    took_over = parse_micro_time(lease_spec(fake_kube)["acquireTime"])
    assert died_at + settings().lease_seconds <= took_over <= died_at + settings().lease_seconds \
        + b.resume_interval
    assert [r.status for r in results] == [SUCCEEDED], results
    counted = {r: registry.get_sample_value("kpr_rollbacks_total", {"result": r, "mode": "enforce"})
               for r in ("succeeded", "refused", "failed")}
    assert counted == {"succeeded": 1, "refused": 0, "failed": 0}  # polls are not rollbacks
    state = state_of(fake_kube)
    assert (state["status"], state["holder"]) == (SUCCEEDED, "replica-b")
    assert restarts(controller, since) == {"node-a": 0, "node-b": 1, "node-c": 0}
    assert MIGRATION not in fake_kube.get("nodes", "node-b")["metadata"]["labels"]


async def test_an_interrupted_rollback_does_not_count_for_cooldown(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube)
    controller.reconcile()
    plan = await planner(kube, settings(), vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    dead = await kill_holder(kube, plan, vtime)
    try:
        b = rollbacker(kube, "replica-b", vtime)
        assert await b.history() == []
        annotations = fake_kube.get("configmaps", settings().state_configmap,
                                    settings().namespace)["metadata"]["annotations"]
        assert HISTORY_ANNOTATION not in annotations
        vtime.now += settings().lease_seconds
        result = await b.resume()
        assert result is not None and result.status == SUCCEEDED
        (ended,) = await b.history()  # completed now: it counts from its end
        assert ended >= T0 + settings().lease_seconds
    finally:
        await stop(dead)


async def test_a_wider_scope_is_planned_after_the_interrupted_rollback(fake_kube, kube, controller, vtime):
    seed_canary(fake_kube, canaries=("node-b", "node-c"))
    controller.reconcile()
    plan = await planner(kube, settings(), vtime).plan(Scope.of_nodes(["node-b"]), TRIGGER)
    since = len(controller.created)
    dead = await kill_holder(kube, plan, vtime)
    try:
        vtime.now += settings().lease_seconds
        b = rollbacker(kube, "replica-b", vtime)
        runner = RollbackRunner(planner=planner(kube, settings(identity="replica-b"), vtime),
                                rollbacker=b, registry=CollectorRegistry())
        result = await runner.run(Scope.of_nodes(["node-b", "node-c"]), Trigger("wider", ("f2",)))
    finally:
        await stop(dead)
    assert result.status == SUCCEEDED, result
    assert f"finished the interrupted rollback {plan.id} first" in result.message
    for name in ("node-b", "node-c"):
        assert MIGRATION not in fake_kube.get("nodes", name)["metadata"]["labels"]
    assert restarts(controller, since) == {"node-a": 0, "node-b": 1, "node-c": 1}
    assert state_of(fake_kube)["status"] == SUCCEEDED
