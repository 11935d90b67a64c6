"""Composition root: builds the exporter's parts from the settings and runs them.

Wiring only — every decision lives in the components. The parts:
Hubble reader -> SLI pipeline; agent scraper -> datapath tracker; Kubernetes
watchers (when reachable) -> tracker and backend map; judge and baseline on a
timer; webhook receiver -> rollback; one aiohttp server for all HTTP routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from prometheus_client import CollectorRegistry

from exporter.datapath.tracker import DatapathTracker
from exporter.model import Flow, LostEvents
from exporter.roles import Clock, DatapathResolver, FlowSource, ServiceDirectory, system_clock
from exporter.sli import Pipeline, StaticDatapathResolver
from exporter.sources.agents import AgentCollector, AgentScraper, static_discovery
from exporter.sources.hubble import HubbleReader
from exporter.web import Server, Surface, build_app

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]


class Exporter:
    """The running exporter: ``await start()``, then ``await stop()``."""

    def __init__(
        self,
        settings: Any,
        *,
        clock: Clock = system_clock,
        sleep: Sleep = asyncio.sleep,
        flow_source: FlowSource | None = None,
        directory: ServiceDirectory | None = None,
    ) -> None:
        self.settings = settings
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._sleep = sleep
        self._tasks: list[asyncio.Task[Any]] = []
        self.surface = Surface(registry=self.registry)

        self.tracker = DatapathTracker(clock=clock)
        self.registry.register(self.tracker)
        self.resolver: DatapathResolver = (
            StaticDatapathResolver(settings.datapath.static)
            if settings.datapath.static
            else self.tracker
        )

        self.pipeline = Pipeline(
            settings.sli, self.registry, datapaths=self.resolver, directory=directory, clock=clock
        )
        self.source: FlowSource = flow_source or HubbleReader(
            settings.hubble, registry=self.registry, clock=clock, sleep=sleep
        )
        self._ready_seen = False
        self.surface.readiness["hubble"] = self._hubble_readiness

        self.agents: AgentScraper | None = None
        if settings.agents.static:
            self.agents = AgentScraper(
                settings=settings.agents,
                discover=static_discovery(settings.agents.static),
                on_kpr_gauge=self.tracker.observe_agent_gauge,
                clock=clock,
                sleep=sleep,
            )
            self.registry.register(AgentCollector(source=self.agents, resolver=self.resolver))

        self.app = build_app(self.surface)
        self.server = Server(self.app, settings.web.listen_address)

    # --- readiness ---------------------------------------------------------------------

    def _hubble_readiness(self) -> str | None:
        """Ready once the Hubble stream delivered its first message (and from then on)."""
        ready = getattr(self.source, "ready", None)
        if ready is None or ready.is_set():
            self._ready_seen = True
        if self._ready_seen:
            return None
        status = self.source.status()
        return f"no message from Hubble at {status.address} yet" + (
            f" ({status.error})" if status.error else ""
        )

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        for line in self.pipeline.status():
            log.info("SLI handler", extra={"kv": {"status": line}})
        await self.server.start()
        self._spawn(self._consume(), "hubble-consumer")
        self._spawn(self._tick(), "sli-tick")
        if self.agents is not None:
            self._spawn(self.agents.run(), "agent-scraper")
        log.info("exporter started", extra={"kv": {
            "listen": self.server.url, "hubble": self.settings.hubble.address,
            "rollback_mode": self.settings.rollback.mode}})

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s stopped", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.agents is not None:
            await self.agents.aclose()
        await self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    # --- loops -------------------------------------------------------------------------

    async def _consume(self) -> None:
        process = self.pipeline.process
        lost = self.pipeline.events_lost
        async for event in self.source.events():
            if type(event) is Flow:
                process(event)
            elif type(event) is LostEvents:
                lost(event)

    async def _tick(self) -> None:
        while True:
            await self._sleep(1.0)
            self.pipeline.tick(self._clock())


def for_simulator(settings: Any, grpc_port: int, agents_port: int, nodes: list[str]) -> Any:
    """Settings pointing the exporter at a local simulator (demo and tests)."""
    base = f"http://127.0.0.1:{agents_port}/nodes"
    return replace(
        settings,
        hubble=replace(settings.hubble, address=f"127.0.0.1:{grpc_port}"),
        agents=replace(
            settings.agents,
            static={node: f"{base}/{node}/metrics" for node in nodes},
            interval_seconds=min(settings.agents.interval_seconds, 2.0),
        ),
        kube=replace(settings.kube, enabled="false"),
    )
