"""The command implementations behind ``kpr-exporter <command>``.

Each is ``async def name(settings, args) -> exit code``; the CLI parses flags
and loads settings, these do the work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from dataclasses import replace
from typing import Any

from exporter import app as app_module
from exporter.demo import Demo


async def _until_signalled(duration: float = 0.0) -> None:
    """Return on SIGINT/SIGTERM, or after ``duration`` seconds when positive."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if duration > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        else:
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def run(settings: Any, args: argparse.Namespace) -> int:
    exporter = app_module.Exporter(settings)
    await exporter.start()
    try:
        await _until_signalled()
    finally:
        await exporter.stop()
    return 0


async def simulate(settings: Any, args: argparse.Namespace) -> int:
    from exporter.simulator.runner import Simulator

    sim = Simulator(settings.simulator)
    ports = await sim.start()
    host = settings.simulator.grpc_listen_address.rpartition(":")[0] or "0.0.0.0"
    agents_host = settings.simulator.agents_listen_address.rpartition(":")[0] or "0.0.0.0"
    print(f"simulating scenario {sim.scenario.name!r} (seed {settings.simulator.seed}, "
          f"speed x{settings.simulator.speed})", flush=True)
    print(f"  Hubble Relay API   {host}:{ports.grpc}", flush=True)
    print(f"  agent metrics      http://{agents_host}:{ports.agents}/nodes", flush=True)
    try:
        await _until_signalled()
    finally:
        await sim.stop()
    return 0


async def demo(settings: Any, args: argparse.Namespace) -> int:
    # The simulator listens on ephemeral loopback ports unless told otherwise.
    sim_settings = settings.simulator
    defaults = type(sim_settings)()
    given = {k.removeprefix("flag:") for k in vars(args) if k.startswith("flag:")}
    if "--grpc.listen-address" not in given and sim_settings.grpc_listen_address == defaults.grpc_listen_address:
        sim_settings = replace(sim_settings, grpc_listen_address="127.0.0.1:0")
    if "--agents.listen-address" not in given and sim_settings.agents_listen_address == defaults.agents_listen_address:
        sim_settings = replace(sim_settings, agents_listen_address="127.0.0.1:0")
    demo_run = Demo(replace(settings, simulator=sim_settings), out=sys.stdout,
                    interval=args.interval, with_prometheus=args.with_prometheus,
                    report_dir=args.report)
    await demo_run.start()
    try:
        await demo_run.run_for(args.duration, _until_signalled)
    finally:
        await demo_run.stop()
    return 0
