"""``Simulator`` lifecycle and pacing, and ``SimulatorSettings``.

Matrix: start on port 0 returns both ports and they answer; the clock task
advances scenario time at ``speed`` under an injected clock and sleep; stop
releases the ports; settings defaults, flag names and every validation problem.
"""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import pytest

from exporter.config_constraints import problems as check
from exporter.simulator.runner import Simulator
from exporter.simulator.scenarios import SCENARIO_NAMES
from exporter.simulator_settings import SimulatorSettings


class ManualTime:
    """A clock the test moves and a sleep that returns when the test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeping = asyncio.Event()
        self.wake = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, _: float) -> None:
        self.sleeping.set()
        await self.wake.wait()
        self.wake.clear()

    async def step(self, seconds: float) -> None:
        """Move the clock, let the simulator's loop run once, wait until it sleeps again."""
        self.now += seconds
        self.sleeping.clear()
        self.wake.set()
        await asyncio.wait_for(self.sleeping.wait(), 5)


async def test_start_paces_scenario_time_and_stop_releases_ports() -> None:
    time = ManualTime()
    settings = SimulatorSettings(scenario="canary-improvement", speed=10.0,
                                 grpc_listen_address="127.0.0.1:0",
                                 agents_listen_address="127.0.0.1:0")
    sim = Simulator(settings, clock=time.clock, sleep=time.sleep)
    ports = await sim.start()
    try:
        assert ports.grpc > 0 and ports.agents > 0 and ports != (4245, 9962)
        await asyncio.wait_for(time.sleeping.wait(), 5)
        assert sim.timeline.now_s == 0.0
        await time.step(3.0)
        assert sim.timeline.now_s == 30.0 and sim.timeline.total > 0
        assert sim.timeline.epoch_ns == int(1_800_000_000 * 1e9)
        time.now += 1.0  # an agent scrape catches up even between two clock steps
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{ports.agents}/nodes/node-a/metrics") as resp:
                assert resp.status == 200
        assert sim.timeline.now_s == 40.0
    finally:
        await sim.stop()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{ports.agents}/nodes")


async def test_a_long_catch_up_yields_to_the_event_loop_every_scenario_second() -> None:
    time = ManualTime()
    settings = SimulatorSettings(scenario="canary-improvement", speed=10.0,
                                 grpc_listen_address="127.0.0.1:0",
                                 agents_listen_address="127.0.0.1:0")
    sim = Simulator(settings, clock=time.clock, sleep=time.sleep)
    await sim.start()
    seen: list[float] = []
    watching = True

    async def watch() -> None:  # another task on the loop: what it sees between slices
        while watching:
            seen.append(sim.timeline.now_s)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.wait_for(time.sleeping.wait(), 5)
        await time.step(2.5)  # the machine stalled: 25 scenario seconds are due at once
        assert sim.timeline.now_s == 25.0
        during = sorted(set(seen) - {0.0})
        assert len(during) >= 20  # the other task ran between the slices
        assert all(b - a <= 1.0 for a, b in zip([0.0, *during], during))
    finally:
        watching = False
        await watcher
        await sim.stop()


def test_settings_defaults_and_flags() -> None:
    s = SimulatorSettings()
    assert (s.scenario, s.seed, s.speed) == ("baseline", 1, 1.0)
    assert (s.grpc_listen_address, s.agents_listen_address) == ("127.0.0.1:4245", "127.0.0.1:9962")
    flags = {f.name: f.metadata["flag"] for f in dataclasses.fields(s)}
    assert flags == {"scenario": "--scenario", "seed": "--seed", "speed": "--speed",
                     "grpc_listen_address": "--grpc.listen-address",
                     "node_grpc_listen_address": "--node-grpc.listen-address",
                     "agents_listen_address": "--agents.listen-address"}
    assert s.node_grpc_listen_address == ""  # no per-node Hubble servers unless asked
    # The settings declare the scenario names without importing the scenarios (the settings
    # tree loads no simulator code): they must be the scenarios' names, in their order.
    assert dataclasses.fields(s)[0].metadata["choices"] == SCENARIO_NAMES
    assert all(f.metadata["help"] for f in dataclasses.fields(s))
    assert check(s, "simulator") == []


def test_settings_problems_lists_every_one() -> None:
    bad = SimulatorSettings(scenario="nope", seed=-1, speed=0.0, grpc_listen_address="localhost",
                            agents_listen_address="x:99999")
    problems = check(bad, "simulator")
    assert len(problems) == 5
    assert any("nope" in p for p in problems) and any("speed" in p for p in problems)
    assert check(SimulatorSettings(speed=float("nan")), "simulator")


