"""``Simulator``: one scenario served as Hubble Relay (gRPC) and as the agents' metrics (HTTP).

Scenario time runs at ``speed`` times the injected clock from construction on;
a background task advances the timeline every ``step_s`` wall seconds (with the
injected ``sleep``). Flow timestamps are ``epoch + scenario time``, so latencies
inside flows are scenario latencies whatever the speed. Tests that want to
step time themselves pass ``drive=False`` and call ``advance_to``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

import grpc
from aiohttp import web

from exporter.config_values import parse_listen
from exporter.roles import Clock, system_clock
from exporter.simulator.agent_hubble import AgentObserverServer
from exporter.simulator.agents import agents_app
from exporter.simulator.scenarios import Scenario, get_scenario
from exporter.simulator.server import ObserverServer, start_grpc_server
from exporter.simulator_settings import SimulatorSettings
from exporter.simulator.timeline import DEFAULT_CAPACITY, Timeline
from exporter.web import listen_error, probe_listen

log = logging.getLogger(__name__)

#: Scenario seconds released per step of a catch-up (the generator ticks once a second).
CATCH_UP_SLICE_S: Final = 1.0

Sleep = Callable[[float], Awaitable[object]]


class BoundPorts(NamedTuple):
    grpc: int
    agents: int
    #: node -> port of its simulated agent Hubble server (``node_grpc_listen_address``)
    nodes: Mapping[str, int] = MappingProxyType({})


class Simulator:
    """The simulated cluster; ``start()`` returns the bound ports, ``stop()`` releases them."""

    def __init__(self, settings: SimulatorSettings, *, clock: Clock = system_clock,
                 sleep: Sleep = asyncio.sleep, step_s: float = 0.05, drive: bool = True,
                 scenario: Scenario | None = None, capacity: int = DEFAULT_CAPACITY) -> None:
        self.settings = settings
        self.scenario = scenario or get_scenario(settings.scenario)
        self._clock = clock
        self._sleep = sleep
        self._step_s = step_s
        self._drive = drive
        self._wall0 = clock()
        self.timeline = Timeline(self.scenario, settings.seed,
                                 epoch_ns=int(self._wall0 * 1_000_000_000), capacity=capacity)
        self._grpc: grpc.aio.Server | None = None
        self._node_grpc: list[grpc.aio.Server] = []
        self._http: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self.ports: BoundPorts | None = None

    def scenario_time(self) -> float:
        """Scenario seconds since construction according to the clock and speed."""
        return max(0.0, (self._clock() - self._wall0) * self.settings.speed)

    def advance_to(self, scenario_s: float) -> int:
        """Release events up to ``scenario_s``; returns how many."""
        return self.timeline.advance_to(scenario_s)

    def _catch_up(self) -> None:
        self.timeline.advance_to(self.scenario_time())

    async def start(self) -> BoundPorts:
        grpc_address = self.settings.grpc_listen_address
        if grpc_address.startswith(":"):
            grpc_address = "[::]" + grpc_address
        # gRPC reports a failed bind in its own log first: probe, so the error is one line.
        probe_listen(grpc_address, "--grpc.listen-address")
        try:
            grpc_server, grpc_port = await start_grpc_server(
                ObserverServer(self.timeline).generic_handlers(), grpc_address)
        except (OSError, RuntimeError) as exc:
            raise listen_error(self.settings.grpc_listen_address, "--grpc.listen-address",
                               exc) from exc
        self._grpc = grpc_server
        try:
            app = agents_app(self.timeline, before_request=self._catch_up if self._drive else None)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            self._http = runner
            host, port = parse_listen(self.settings.agents_listen_address)
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise listen_error(self.settings.agents_listen_address,
                                   "--agents.listen-address", exc) from exc
            agents_port = runner.addresses[0][1]
            node_ports = await self._start_nodes()
        except BaseException:
            await self.stop()
            raise
        if self._drive:
            self._task = asyncio.create_task(self._run(), name="simulator-clock")
        self.ports = BoundPorts(grpc_port, agents_port, MappingProxyType(node_ports))
        log.info("simulator started", extra={"kv": {
            "scenario": self.scenario.name, "seed": self.settings.seed,
            "speed": self.settings.speed, "grpc_port": grpc_port, "agents_port": agents_port}})
        return self.ports

    async def _start_nodes(self) -> dict[str, int]:
        """One agent Hubble server per node on consecutive ports (or free ones with port 0)."""
        address = self.settings.node_grpc_listen_address
        if not address:
            return {}
        host, first = parse_listen(address)
        host = f"[{host}]" if ":" in host else host
        ports: dict[str, int] = {}
        for i, node in enumerate(self.timeline.nodes):
            wanted = f"{host}:{first + i if first else 0}"
            probe_listen(wanted, "--node-grpc.listen-address")
            try:
                server, port = await start_grpc_server(
                    AgentObserverServer(self.timeline, node).generic_handlers(), wanted)
            except (OSError, RuntimeError) as exc:
                raise listen_error(wanted, "--node-grpc.listen-address", exc) from exc
            self._node_grpc.append(server)
            ports[node] = port
        return ports

    async def _run(self) -> None:
        while True:
            await self._catch_up_in_slices()
            await self._sleep(self._step_s)

    async def _catch_up_in_slices(self) -> None:
        """Release what is due one scenario second at a time, yielding to the event loop in
        between: on a slow or busy machine a catch-up is then many short steps the servers
        (and an exporter in the same process) interleave with, never one long block."""
        target = self.scenario_time()
        while self.timeline.now_s < target:
            self.timeline.advance_to(min(target, self.timeline.now_s + CATCH_UP_SLICE_S))
            await asyncio.sleep(0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._grpc is not None:
            await self._grpc.stop(grace=None)
            self._grpc = None
        while self._node_grpc:
            await self._node_grpc.pop().stop(grace=None)
        if self._http is not None:
            await self._http.cleanup()
            self._http = None
