"""Receiver + decision + runner + rollbacker wired together, against the fake API.

Matrix: unsafe configurations refuse to start; no Kubernetes -> dry-run plans are
refused with the reason; dry-run with a cluster: 20 concurrent identical deliveries ->
one plan, only GETs; enforce through the webhook rolls the canary back once, the
re-send is a duplicate and the next alert meets the cooldown; start() seeds the
cooldown from the persisted history; after a holder is killed mid-rollback, the next alert
is not held by the cooldown; run() keeps resuming and counts what it completes; the
kill-switch file; the tracker adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from exporter.datapath.tracker import DatapathTracker
from exporter.rollback.roles import ENFORCE, PLANNED, REFUSED, SUCCEEDED, Result, Scope, TrackerView, Trigger
from exporter.rollback.backup import ConfigMapBackupStore
from exporter.rollback.executor import KubeRollbacker
from exporter.rollback.reader import KubePlanner
from exporter.rollback.runner import RollbackRunner
from exporter.rollback.settings import RollbackSettings
from exporter.rollback.state import HISTORY_ANNOTATION, STATE_ANNOTATION
from exporter.webhook import decision as dec
from exporter.webhook.receiver import TokenFile, WebhookConfigError, WebhookReceiver, add_webhook_route
from exporter.webhook.service import RollbackService, build_rollback_service, kill_switch
from exporter.webhook.settings import WebhookSettings
from tests.fakekube.fixtures import configmap
from tests.rollback.cluster import MIGRATION, T0, Controller, VirtualTime, seed_canary, settings

from .conftest import DATA, TOKEN

FIRING = (DATA / "firing.json").read_bytes()


def tracker_for(canaries=("node-b",)) -> DatapathTracker:
    tracker = DatapathTracker(clock=lambda: T0)
    for name in ("node-a", "node-b", "node-c"):
        tracker.observe_agent_gauge(name, 1.0 if name in canaries else 0.0)
    return tracker


@pytest.fixture
async def serve():
    clients = []

    async def start(app: web.Application) -> TestClient:
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def post(client, body=FIRING, token=TOKEN):
    resp = await client.post("/webhook/alertmanager", data=body,
                             headers={"Content-Type": "application/json",
                                      "Authorization": f"Bearer {token}"})
    return resp.status, json.loads(await resp.text())


def test_unsafe_configurations_refuse_to_start(token_file):
    registry = CollectorRegistry()
    view = TrackerView(tracker_for())
    with pytest.raises(WebhookConfigError, match="token"):
        build_rollback_service(web.Application(), webhook=WebhookSettings(),
                               rollback=RollbackSettings(mode=ENFORCE), view=view, kube=None,
                               registry=registry)
    with pytest.raises(WebhookConfigError, match="Kubernetes access"):
        build_rollback_service(web.Application(), webhook=WebhookSettings(token_file=str(token_file)),
                               rollback=RollbackSettings(mode=ENFORCE), view=view, kube=None,
                               registry=registry)


async def test_without_kubernetes_the_plan_is_refused_with_the_reason(serve, token_file):
    app, registry = web.Application(), CollectorRegistry()
    service = build_rollback_service(app, webhook=WebhookSettings(token_file=str(token_file)),
                                     rollback=RollbackSettings(), view=TrackerView(tracker_for()),
                                     kube=None, registry=registry)
    client = await serve(app)
    assert (await post(client))[1]["outcome"] == "accepted"
    result = await service.runner.wait()
    assert result.status == REFUSED and "no Kubernetes access" in result.message
    assert registry.get_sample_value("kpr_rollbacks_total", {"result": "refused", "mode": "dry-run"}) == 1


async def test_dry_run_concurrent_deliveries_plan_once(serve, token_file, fake_kube, kube):
    seed_canary(fake_kube)
    Controller(fake_kube).reconcile()
    app, registry = web.Application(), CollectorRegistry()
    service = build_rollback_service(app, webhook=WebhookSettings(token_file=str(token_file)),
                                     rollback=settings(mode="dry-run"), view=TrackerView(tracker_for()),
                                     kube=kube, registry=registry)
    client = await serve(app)
    fake_kube.clear_requests()
    answers = await asyncio.gather(*(post(client) for _ in range(20)))
    outcomes = [a[1]["outcome"] for a in answers]
    assert outcomes.count("accepted") == 1 and outcomes.count("duplicate") == 19
    result = await service.runner.wait()
    assert result.status == PLANNED, result.message
    assert "remove label" in service.runner.last_plan.render()
    assert {r.method for r in fake_kube.requests} == {"GET"}
    assert registry.get_sample_value("kpr_rollbacks_total", {"result": "planned", "mode": "dry-run"}) == 1
    assert registry.get_sample_value("kpr_webhook_requests_total", {"outcome": "duplicate"}) == 19


async def test_enforce_through_the_webhook(serve, token_file, fake_kube, kube):
    seed_canary(fake_kube)
    controller = Controller(fake_kube)
    controller.reconcile()
    vtime = VirtualTime(controller)
    s = settings()
    registry = CollectorRegistry()
    runner = RollbackRunner(
        planner=KubePlanner(kube, s, store=ConfigMapBackupStore(kube, s.namespace, s.backup_configmap),
                            clock=vtime),
        rollbacker=KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep), registry=registry)
    receiver = WebhookReceiver(settings=WebhookSettings(token_file=str(token_file)),
                               policy=dec.Policy(mode=ENFORCE), view=TrackerView(tracker_for()),
                               runner=runner, registry=registry, token=TokenFile(str(token_file)),
                               clock=vtime)
    app = web.Application()
    add_webhook_route(app, receiver)
    client = await serve(app)
    assert (await post(client))[1]["outcome"] == "accepted"
    assert (await runner.wait()).status == SUCCEEDED
    assert MIGRATION not in fake_kube.get("nodes", "node-b")["metadata"]["labels"]
    assert (await post(client))[1]["outcome"] == "duplicate"
    other = json.loads(FIRING)
    other["alerts"][0]["fingerprint"] = "ffff0000ffff0000"
    status, body = await post(client, json.dumps(other).encode())
    assert (status, body["outcome"]) == (200, "cooldown") and "cooldown" in body["reason"]
    assert registry.get_sample_value("kpr_rollbacks_total", {"result": "succeeded", "mode": "enforce"}) == 1


async def test_start_seeds_the_cooldown_from_history(token_file, fake_kube, kube):
    seed_canary(fake_kube)
    s = settings()
    cm = configmap(s.state_configmap, s.namespace, {})
    cm["metadata"]["annotations"] = {HISTORY_ANNOTATION: json.dumps([T0 - 7200, T0 - 60])}
    fake_kube.seed(cm)
    service = build_rollback_service(web.Application(), webhook=WebhookSettings(token_file=str(token_file)),
                                     rollback=s, view=TrackerView(tracker_for()), kube=kube,
                                     registry=CollectorRegistry(), clock=lambda: T0)
    assert await service.start() is None  # nothing to resume
    assert service.receiver.memory.last_rollback() == T0 - 60


def test_kill_switch_file(tmp_path):
    path = tmp_path / "off"
    engaged = kill_switch(RollbackSettings(kill_switch_file=str(path)))
    assert not engaged()
    path.write_text("")
    assert engaged()
    assert kill_switch(RollbackSettings(kill_switch=True))()


def test_tracker_view_groups_nodes():
    view = TrackerView(tracker_for(("node-b", "node-c")))
    assert view.phase() == "canary"
    assert {k: set(v) for k, v in view.nodes_by_datapath().items()} == {
        "ebpf": {"node-b", "node-c"}, "kube-proxy": {"node-a"}}


async def stop(task):
    """End a task the test abandoned (a 'killed' replica) before the fixtures close."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_after_a_crash_the_next_alert_is_not_held_by_the_cooldown(
        serve, token_file, fake_kube, kube):
    """A holder killed mid-rollback (state running, Lease kept) started no completed rollback."""
    seed_canary(fake_kube)
    Controller(fake_kube).reconcile()
    s = settings()
    plan = await KubePlanner(kube, s, store=ConfigMapBackupStore(kube, s.namespace, s.backup_configmap),
                             clock=lambda: T0).plan(Scope.of_nodes(["node-b"]), Trigger("first", ("f1",)))
    died = asyncio.Event()

    async def dies(seconds):  # SIGKILL at its first wait: nothing after it runs, nothing released
        died.set()
        await asyncio.Future()

    async def never(seconds):  # nor does its Lease renewal
        await asyncio.Future()

    dead = asyncio.ensure_future(KubeRollbacker(kube, settings(identity="replica-a"), clock=lambda: T0,
                                                sleep=dies, timer=never).rollback(plan))
    try:
        await asyncio.wait_for(died.wait(), 10)
        app = web.Application()
        service = build_rollback_service(app, webhook=WebhookSettings(token_file=str(token_file)),
                                         rollback=settings(identity="replica-b"),
                                         view=TrackerView(tracker_for()), kube=kube,
                                         registry=CollectorRegistry(), clock=lambda: T0 + 10)
        assert json.loads(fake_kube.get("configmaps", s.state_configmap, s.namespace)["metadata"][
            "annotations"][STATE_ANNOTATION])["status"] == "running"
        assert await service.start() is None  # the dead holder's Lease has not expired yet
        assert service.receiver.memory.last_rollback() is None
        client = await serve(app)
        status, body = await post(client)
        assert (status, body["outcome"]) == (200, "accepted"), body
        result = await service.runner.wait()
        assert result.status == REFUSED and "replica-a" in result.message  # its Lease is respected
    finally:
        await stop(dead)


async def test_run_keeps_resuming_and_counts_what_it_completes():
    """The start-up resume and every later poll: a completed resume counts for cooldown."""

    class Rollbacker:
        mode, resume_interval = ENFORCE, 15.0

        def __init__(self):
            self.polls = [False, True]  # after start-up: nothing to resume, then one

        async def history(self):
            return [T0 - 7200]

        async def pending(self):
            return self.polls.pop(0) if self.polls else False

        async def resume(self):
            return Result(SUCCEEDED, ENFORCE, "resumed", "p1")

    class Stop(Exception):
        pass

    waits = []

    async def timer(seconds):
        waits.append(seconds)
        if len(waits) == 3:
            raise Stop()

    rollbacker = Rollbacker()
    runner = RollbackRunner(planner=None, rollbacker=rollbacker, registry=CollectorRegistry())
    service = RollbackService(receiver=SimpleNamespace(memory=dec.Memory()), runner=runner,
                              ssl_context=None, _rollbacker=rollbacker, _clock=lambda: T0)
    with pytest.raises(Stop):
        await service.run(timer)
    assert waits == [15.0, 15.0, 15.0]
    assert service.receiver.memory.history == (T0 - 7200, T0, T0)
