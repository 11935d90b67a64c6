"""End to end with a real Alertmanager 0.25 posting to the receiver (bearer auth from a file).

Matrix: a firing alert, re-sent every repeat_interval (1 s), leads to exactly one
enforce rollback against the fake Kubernetes API; a 503 (phase not known yet) makes
Alertmanager retry within the flush, and the retry, decided afresh, starts the one
rollback. Alertmanager runs on 127.0.0.1 with clustering off and a temp store.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.rollback.roles import ENFORCE, SUCCEEDED
from exporter.rollback.backup import ConfigMapBackupStore
from exporter.rollback.executor import KubeRollbacker
from exporter.rollback.reader import KubePlanner
from exporter.rollback.runner import RollbackRunner
from exporter.webhook import decision as dec
from exporter.webhook.receiver import PATH, TokenFile, WebhookReceiver
from exporter.webhook.settings import WebhookSettings
from tests.realstack.harness import Alertmanager, AlertmanagerOptions, wait_until
from tests.realstack.harness import WebhookReceiver as AmWebhook
from tests.rollback.cluster import MIGRATION, Controller, VirtualTime, seed_canary, settings

from .conftest import StaticView

pytestmark = pytest.mark.realstack


class Stack:
    """Receiver wired to an enforce rollback on the fake API, recording every answer."""

    def __init__(self, fake, kube, token_file) -> None:
        seed_canary(fake)
        controller = Controller(fake)
        controller.reconcile()
        vtime = VirtualTime(controller)
        s = settings()
        self.registry = CollectorRegistry()
        self.view = StaticView()
        self.runner = RollbackRunner(
            planner=KubePlanner(kube, s, store=ConfigMapBackupStore(kube, s.namespace, s.backup_configmap),
                                clock=vtime),
            rollbacker=KubeRollbacker(kube, s, clock=vtime, sleep=vtime.sleep), registry=self.registry)
        self.receiver = WebhookReceiver(
            settings=WebhookSettings(token_file=str(token_file)), policy=dec.Policy(mode=ENFORCE),
            view=self.view, runner=self.runner, registry=self.registry, token=TokenFile(str(token_file)))
        self.outcomes: list[str] = []
        self.on_answer = lambda outcome: None
        self._site_runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        response = await self.receiver.handle(request)
        outcome = json.loads(response.text)["outcome"]
        self.outcomes.append(outcome)
        self.on_answer(outcome)
        return response

    async def __aenter__(self) -> Stack:
        app = web.Application()
        app.router.add_post(PATH, self.handle)
        self._site_runner = web.AppRunner(app)
        await self._site_runner.setup()
        site = web.TCPSite(self._site_runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}{PATH}"
        return self

    async def __aexit__(self, *exc) -> None:
        if self._site_runner is not None:
            await self._site_runner.cleanup()


def firing_alert() -> dict:
    now = datetime.now(timezone.utc)
    return {"labels": {"alertname": "KprServiceConnectLatencyWorse", "kpr_action": "rollback",
                       "namespace": "shop", "service": "cart", "node": "node-b", "severity": "critical"},
            "annotations": {"summary": "cart connects slower on node-b"},
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}


def options(url: str, token_file, **overrides) -> AlertmanagerOptions:
    base = dict(receiver=AmWebhook(url, token_file=token_file), group_wait="0s", group_interval="1s",
                repeat_interval="1s", matchers=('kpr_action="rollback"',))
    base.update(overrides)
    return AlertmanagerOptions(**base)


async def test_resent_alert_rolls_back_exactly_once(tmp_path, fake_kube, kube, token_file):
    async with Stack(fake_kube, kube, token_file) as stack:
        async with Alertmanager(tmp_path / "am", options(stack.url, token_file)) as am:
            await am.post_alerts([firing_alert()])

            async def resent_twice():
                return stack.outcomes.count("duplicate") >= 2 or None

            await wait_until(resent_twice, timeout=60, what="Alertmanager to re-send the alert twice")
        assert (await stack.runner.wait()).status == SUCCEEDED
    assert stack.outcomes.count("accepted") == 1
    assert set(stack.outcomes) == {"accepted", "duplicate"}
    assert stack.registry.get_sample_value(
        "kpr_rollbacks_total", {"result": "succeeded", "mode": "enforce"}) == 1
    assert MIGRATION not in fake_kube.get("nodes", "node-b")["metadata"]["labels"]
    unlabel = [r for r in fake_kube.requests if r.method == "PATCH" and r.path == "/api/v1/nodes/node-b"]
    assert len(unlabel) == 1


async def test_503_is_retried_by_alertmanager_and_acted_on_once(tmp_path, fake_kube, kube, token_file):
    async with Stack(fake_kube, kube, token_file) as stack:
        stack.view.current = "unknown"
        stack.view.by_datapath = {}

        def sync_after_first_503(outcome: str) -> None:
            if outcome == "deferred":  # the tracker catches up while Alertmanager backs off
                stack.view.current = "canary"
                stack.view.by_datapath = {"ebpf": {"node-b"}, "kube-proxy": {"node-a", "node-c"}}

        stack.on_answer = sync_after_first_503
        async with Alertmanager(tmp_path / "am", options(stack.url, token_file, repeat_interval="1h")) as am:
            await am.post_alerts([firing_alert()])

            async def accepted():
                return "accepted" in stack.outcomes or None

            await wait_until(accepted, timeout=60, what="the retried delivery to be accepted")
        assert (await stack.runner.wait()).status == SUCCEEDED
    assert stack.outcomes[0] == "deferred"
    assert stack.outcomes.count("accepted") == 1
