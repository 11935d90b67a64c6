"""Shared harness of the agent scraper tests: one real aiohttp server on 127.0.0.1 playing
several Cilium agents at ``/nodes/<node>/metrics``, the scraper wired to a registry, and
readers of the exposition it produces.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.sources.agents import AgentCollector, AgentScraper, static_discovery
from exporter.sources.agents_settings import AgentSettings

DATA = Path(__file__).resolve().parents[1] / "data" / "agent_metrics"
LOGGER = "exporter.sources.agents"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fixture(name: str) -> str:
    return (DATA / name).read_text()


def counters(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of ``name`` in ``text``: sorted label pairs -> value."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


class Agents:
    """One local HTTP server playing several agents at /nodes/<node>/metrics."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.never = asyncio.Event()  # the hanging agent waits on it; no test sets it
        self._runner: web.AppRunner | None = None
        self.port = 0

    def serve(self, node: str, handler: Handler) -> str:
        self.handlers[node] = handler
        return self.url(node)

    def url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.port}/nodes/{node}/metrics"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/nodes/{node}/metrics", self._route)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _route(self, request: web.Request) -> web.StreamResponse:
        handler = self.handlers.get(request.match_info["node"])
        if handler is None:
            raise web.HTTPNotFound()
        return await handler(request)

    # --- behaviours ------------------------------------------------------------------

    @staticmethod
    def text(body: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(text=body, content_type="text/plain", charset="utf-8")

        return handler

    def hang(self) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            await self.never.wait()
            return web.Response(text="too late")

        return handler

    @staticmethod
    def status(code: int) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=code, text="boom")

        return handler

    @staticmethod
    def streamed(body: str) -> Handler:
        """Chunked transfer: no Content-Length for the client to check up front."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            data = body.encode()
            for start in range(0, len(data), 8192):
                await response.write(data[start:start + 8192])
            await response.write_eof()
            return response

        return handler

    @staticmethod
    def repeated(head: bytes, block: bytes, times: int, tail: bytes = b"") -> Handler:
        """Chunked transfer of ``head + block * times + tail``, one block per write: a body
        of any size without building it in memory."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                await response.write(head)
                for _ in range(times):
                    await response.write(block)
                await response.write(tail)
                await response.write_eof()
            except (ConnectionError, RuntimeError):
                pass  # the scraper hung up (over its limit): expected
            return response

        return handler


class Resolver:
    def __init__(self, datapaths: dict[str, str]) -> None:
        self.datapaths = datapaths

    def datapath(self, node: str) -> str:
        return self.datapaths.get(node, "unknown")


class Gauges:
    """Records what the scraper hands to the datapath tracker."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    def __call__(self, node: str, value: float | None) -> None:
        self.calls.append((node, value))

    def last(self) -> dict[str, float | None]:
        return dict(self.calls)


@pytest.fixture
async def agents() -> AsyncIterator[Agents]:
    server = Agents()
    await server.start()
    yield server
    await server.stop()


def make(
    targets: dict[str, str], **overrides: object
) -> tuple[AgentScraper, CollectorRegistry, Gauges]:
    settings = AgentSettings(**{"timeout_seconds": 2.0, "max_body_bytes": 200_000, **overrides})
    gauges = Gauges()
    scraper = AgentScraper(
        settings=settings, discover=static_discovery(targets), on_kpr_gauge=gauges,
        clock=lambda: 1_700_000_000.0,
    )
    registry = CollectorRegistry()
    registry.register(AgentCollector(source=scraper, resolver=Resolver({"worker-1": "ebpf"})))
    return scraper, registry, gauges


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


def series(registry: CollectorRegistry, name: str, node: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of ``name`` for ``node``, keyed by the remaining labels (sorted pairs)."""
    text = generate_latest(registry).decode()
    return {
        tuple(sorted((k, v) for k, v in labels if k != "node")): value
        for labels, value in (
            (tuple(s.labels.items()), s.value)
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == name and s.labels.get("node") == node
        )
    }
