"""Fixtures for the webhook tests: a receiver on 127.0.0.1 with a recording runner."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from exporter.rollback.roles import DRY_RUN, PLANNED, Result, Scope, Trigger
from exporter.webhook import decision as dec
from exporter.webhook.receiver import TokenFile, WebhookReceiver, add_webhook_route
from exporter.webhook.settings import WebhookSettings

DATA = Path(__file__).resolve().parents[1] / "data" / "alertmanager"
TOKEN = "s3cr3t-t0ken"


@dataclass
class StaticView:
    """A ClusterView with fixed answers."""

    current: str = "canary"
    by_datapath: dict[str, set[str]] = field(default_factory=lambda: {
        "kube-proxy": {"node-a", "node-c"}, "ebpf": {"node-b"}, "unknown": set(),
    })

    def phase(self) -> str:
        return self.current

    def nodes_by_datapath(self) -> Mapping[str, Collection[str]]:
        return self.by_datapath


class RecordingRunner:
    """Records each start; the rollback 'runs' until ``release`` is set."""

    def __init__(self, status: str = PLANNED) -> None:
        self.started: list[tuple[Scope, Trigger]] = []
        self.release = asyncio.Event()
        self.status = status
        self._tasks: set[asyncio.Task[Result]] = set()

    @property
    def busy(self) -> bool:
        return any(not t.done() for t in self._tasks)

    def start(self, scope: Scope, trigger: Trigger) -> asyncio.Task[Result]:
        self.started.append((scope, trigger))
        task = asyncio.ensure_future(self._run())
        self._tasks.add(task)
        return task

    async def _run(self) -> Result:
        await self.release.wait()
        return Result(self.status, DRY_RUN, self.status)


@dataclass
class Harness:
    client: TestClient
    runner: RecordingRunner
    registry: CollectorRegistry
    view: StaticView
    receiver: WebhookReceiver
    clock: list[float]

    async def post(self, body: bytes | str, *, token: str | None = TOKEN,
                   content_type: str = "application/json", headers: dict | None = None):
        hdrs = {"Content-Type": content_type, **(headers or {})}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        return await self.client.post("/webhook/alertmanager", data=body, headers=hdrs)

    def count(self, outcome: str) -> float:
        return self.registry.get_sample_value("kpr_webhook_requests_total", {"outcome": outcome}) or 0.0


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
async def make_harness(token_file: Path):
    clients: list[TestClient] = []
    runners: list[RecordingRunner] = []

    async def build(*, settings: WebhookSettings | None = None, policy: dec.Policy | None = None,
                    kill=lambda: False, use_token: bool = True, runner=None) -> Harness:
        settings = settings or WebhookSettings(token_file=str(token_file))
        registry = CollectorRegistry()
        view = StaticView()
        runner = runner or RecordingRunner()
        clock = [1_800_000_000.0]
        receiver = WebhookReceiver(
            settings=settings, policy=policy or dec.Policy(), view=view, runner=runner,
            registry=registry, token=TokenFile(settings.token_file) if use_token else None,
            kill_switch=kill, clock=lambda: clock[0],
        )
        app = web.Application()
        add_webhook_route(app, receiver)
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        clients.append(client)
        if isinstance(runner, RecordingRunner):
            runners.append(runner)
        return Harness(client, runner, registry, view, receiver, clock)

    yield build
    for runner in runners:
        runner.release.set()
    for client in clients:
        await client.close()
