"""Connections from an emulated node: the probe's ``Dialer`` with the handshake cost of the
datapath that translates the connection.

A virtual address (ClusterIP, load-balancer address, NodePort on loopback) is translated
by the client's own node; a NodePort, health-check port or hostPort on a node's address by
that node. When the scenario gives that node's datapath a ``connect_seconds`` cost, each
handshake waits a draw of it (log-normal with the scenario's median and p99) before the
connection is handed over, and that draw is its handshake time: the emulated datapath's
handshake, as the simulator's flows carry their profile's. The loopback handshake and the
event loop's delays in a busy process are no part of the emulated datapath (they would drown
a sub-millisecond difference), so they are not counted. Without a cost, or towards an address
no node translates, the dialer measures as the plain one does.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable

from exporter.verify.net import Dialer, Resolver

#: z-score of the 99th percentile of the standard normal distribution.
_Z99 = 2.3263478740408408


def lognormal(median: float, p99: float, rng: random.Random, cap: float) -> float:
    """One draw of the log-normal with this median and 99th percentile, at most ``cap``."""
    sigma = math.log(p99 / median) / _Z99 if p99 > median else 0.0
    return min(cap, median * math.exp(sigma * rng.gauss(0.0, 1.0)))


class EmulatedDialer(Dialer):
    """``Dialer`` whose handshakes also cost ``cost(translating address)`` seconds."""

    def __init__(self, source: str, *, resolve: Resolver, cost: Callable[[str], float],
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(source, resolve=resolve, clock=clock)
        self._cost = cost
        self._sleep = sleep

    def rebound(self, source: str) -> Dialer:
        return EmulatedDialer(source, resolve=self._resolve, cost=self._cost, sleep=self._sleep,
                              clock=self._clock)

    async def open(self, host: str, port: int, timeout: float) -> tuple[
            asyncio.StreamReader, asyncio.StreamWriter, float]:
        delay = self._cost(self._resolve(host, port)[0])
        if delay > 0:
            await self._sleep(delay)
        reader, writer, took = await super().open(host, port, timeout)
        return reader, writer, delay if delay > 0 else took
