"""The probes' measurements in the demo: the load option and the programming chase.

Each probe gets a ``LoadRunner`` at the load option's default rates (``ProbeSettings``),
its two phases shortened to fit the demo's round interval by the option's own rule (both
together at most half the interval), and a ``ProgrammingWatch`` that chases new echo
endpoints through the ClusterIP, both exported as in ``kpr-exporter probe``.

The demo has no Kubernetes API, so ``EndpointRollout`` stands in for the EndpointSlice
controller and the probes' watch: every ``every`` seconds it adds an echo endpoint on the
next node (``EmulatedCluster.add_endpoint``; each node serves it after its datapath's
programming delay), hands it to every probe's watch with the addition as its change time,
and takes out the added endpoints no probe chases any more, so the Service keeps its size.
Each added endpoint gives one ``kpr_probe_programming_latency_seconds`` sample per probe.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from exporter.verify.emulator.cluster import EmulatedCluster
from exporter.verify.load import LoadPlan, LoadRunner
from exporter.verify.measure_metrics import MeasureMetrics
from exporter.verify.programming import NewEndpoint
from exporter.verify.programming_watch import ProgrammingWatch
from exporter.verify.service import ProbeLoop
from exporter.verify.settings import ProbeSettings

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[object]]

#: Seconds (of the demo's clock) between two added echo endpoints.
ROLLOUT_EVERY = 0.5
#: Longest wait for the echo's count of a load stream: on a shaped datapath it comes when
#: the last byte got through, up to about six seconds after the stream's window (the
#: regression story's eBPF forwards 45 KiB/s of the 256 KiB/s offered).
LOAD_ANSWER_TIMEOUT = 10.0


def load_plan(interval: float) -> LoadPlan:
    """The load option's default rates, each phase at most a quarter of ``interval``."""
    defaults = ProbeSettings()
    return LoadPlan(defaults.load_connections_per_second, defaults.load_bytes_per_second,
                    min(defaults.load_seconds, interval / 4), timeout=LOAD_ANSWER_TIMEOUT)


def attach(loop: ProbeLoop, cluster: EmulatedCluster, metrics: MeasureMetrics, *,
           interval: float, clock: Callable[[], float], sleep: Sleep) -> ProgrammingWatch:
    """Give ``loop`` the load option; returns its programming watch (not yet running)."""
    loop.load_runner = LoadRunner(load_plan(interval), metrics, clock=clock, sleep=sleep)
    defaults = ProbeSettings()
    node = loop.node
    return ProgrammingWatch(
        node, loop.pod, lambda: loop.current.cluster_ip if loop.current else None,
        lambda: cluster.datapath(node), metrics,
        polls_per_second=defaults.programming_polls_per_second,
        timeout=defaults.programming_timeout_seconds, connect_timeout=defaults.timeout_seconds,
        clock=clock, sleep=sleep)


@dataclass
class EndpointRollout:
    """New echo endpoints for ``watches`` to chase, one every ``every`` seconds."""

    cluster: EmulatedCluster
    watches: Sequence[ProgrammingWatch]
    sleep: Sleep
    every: float = ROLLOUT_EVERY
    added: int = 0
    removed: int = 0

    def chased(self) -> set[str]:
        return {pod for watch in self.watches for pod in watch.pending.pending}

    async def step(self) -> None:
        """Take out the added endpoints nobody chases, then add one on the next node."""
        chased = self.chased()
        for backend in self.cluster.added_endpoints():
            if backend.pod not in chased:
                await self.cluster.remove_endpoint(backend.pod)
                self.removed += 1
        nodes = tuple(self.cluster.nodes)
        backend = await self.cluster.add_endpoint(nodes[self.added % len(nodes)])
        self.added += 1
        assert backend.since is not None
        for watch in self.watches:
            watch.learn([NewEndpoint(backend.pod, backend.since)])

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:  # an echo that cannot start must not end the rollout
                log.exception("adding an echo endpoint failed")
            await self.sleep(self.every)
