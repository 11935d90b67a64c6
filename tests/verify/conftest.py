"""Fixtures for the verification tests: emulated clusters on loopback, and rounds of checks
run from every node."""

from __future__ import annotations

from dataclasses import replace
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from exporter.model import EBPF
from exporter.verify import results as r
from exporter.verify.checks import Limits, ProbeContext
from exporter.verify.emulator import scenario as sc
from exporter.verify.emulator.cluster import EmulatedCluster
from exporter.verify.runner import run_checks
from tests.emulated_networks import next_network

#: Test limits: a healthy loopback exchange takes well under a millisecond, the timeout
#: leaves room for a loaded machine (only a dropping datapath waits it out); pings follow
#: each other at once (the ticks never wait).
LIMITS = Limits(timeout=2.0, affinity_requests=6, ping_interval=0.0)

def scenario(data: dict[str, Any]) -> sc.Scenario:
    """``data`` on a network of its own (``tests/emulated_networks.py``)."""
    return sc.load({"network": next_network(), **data})


@pytest.fixture
async def emulate() -> AsyncIterator[Callable[..., Any]]:
    started: list[EmulatedCluster] = []

    async def start(data: dict[str, Any]) -> EmulatedCluster:
        cluster = EmulatedCluster(scenario(data))
        await cluster.start()
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        await cluster.stop()


def context(cluster: EmulatedCluster, node: str, limits: Limits = LIMITS) -> ProbeContext:
    """A probe on ``node`` checking every node this round (full coverage)."""
    others = tuple(n for n in cluster.nodes if n != node)
    return ProbeContext(node=node, datapath=cluster.datapath(node),
                        host=cluster.dialer(node, "host"), pod=cluster.dialer(node, "pod"),
                        targets=cluster.targets(), sample=(node, *others), limits=limits,
                        datapath_now=lambda: cluster.datapath(node))


def switching_ticks(cluster: EmulatedCluster, node: str, datapath: str = EBPF) -> Callable[..., Any]:
    """Ping ticks that switch ``node`` to ``datapath`` after the first answered ping."""
    async def ticks() -> AsyncIterator[int]:
        yield 0
        await cluster.switch(node, datapath)
        yield 1
        yield 2
    return ticks


async def switch_round(cluster: EmulatedCluster, switching: str) -> list[r.CheckResult]:
    """The long-lived connection from every node, ``switching`` switching to eBPF while its
    connection is held; then every other check from every node, on the new datapaths."""
    out: list[r.CheckResult] = []
    for node in cluster.nodes:
        limits = LIMITS
        if node == switching:
            limits = replace(LIMITS, ticks=switching_ticks(cluster, node))
        out += await run_checks(context(cluster, node, limits), [r.LONG_LIVED_CONNECTION])
    rest = [c for c in r.CHECKS if c != r.LONG_LIVED_CONNECTION]
    for node in cluster.nodes:
        out += await run_checks(context(cluster, node), rest)
    return out
