"""The programming-latency chase of one probe: follow the echo Service's EndpointSlices,
and while a new endpoint waits, connect to the ClusterIP at a capped rate until it answers.

``ProgrammingWatch.learn`` takes ``NewEndpoint``s (from ``follow``, the Kubernetes watch,
or a test); ``chase`` polls until nothing waits; ``run`` chases whenever something is
learnt. Each answer's pod is compared with the waiting ones: the first answer from a new
pod observes ``kpr_probe_programming_latency_seconds`` for this node's datapath; a pod
not reached within the timeout counts in ``kpr_probe_programming_missed_total``.

The measure is an upper bound: it includes the delivery of the watch event to the probe
and up to one poll period per backend (a ClusterIP picks among the backends), the same on
both datapaths, so they compare like with like. Node and API server clocks are assumed in
sync (NTP), as kube-proxy's own metric assumes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from exporter.verify.measure_metrics import MeasureMetrics
from exporter.verify.net import Dialer, ProbeError
from exporter.verify.pacing import Clock, Sleep
from exporter.verify.programming import Chase, EndpointTracker, NewEndpoint
from exporter.verify.targets import Endpoint, show

log = logging.getLogger(__name__)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass
class ProgrammingWatch:
    """Chases new echo endpoints from ``node`` through ``target()`` (the ClusterIP, None
    while there are no targets) with ``dialer`` (the pod network)."""

    node: str
    dialer: Dialer
    target: Callable[[], Endpoint | None]
    datapath: Callable[[], str]
    metrics: MeasureMetrics
    polls_per_second: float = 10.0
    timeout: float = 30.0
    connect_timeout: float = 2.0
    clock: Clock = time.time  # wall clock: compared with the API server's timestamps
    sleep: Sleep = asyncio.sleep
    tracker: EndpointTracker = field(init=False)
    pending: Chase = field(init=False)
    polls: int = 0

    def __post_init__(self) -> None:
        self.tracker = EndpointTracker(max_age=self.timeout)
        self.pending = Chase(self.timeout)
        self._wake = asyncio.Event()

    def learn(self, news: Iterable[NewEndpoint]) -> None:
        now = self.clock()
        for new in news:
            log.info("new echo endpoint %s (changed %.3fs ago): chasing it from %s",
                     new.pod, now - new.changed_at, self.node)
            self.pending.add(new, now)
            self._wake.set()

    def on_event(self, kind: str, obj: dict[str, Any] | None,
                 objects: Iterable[dict[str, Any]] = ()) -> None:
        """One watch event of the Service's EndpointSlices."""
        now = self.clock()
        if kind == "SYNC":
            self.learn(self.tracker.sync(objects, now))
        elif kind == "DELETED" and obj is not None:
            self.tracker.delete(obj)
        elif obj is not None:
            self.learn(self.tracker.update(obj, now))

    async def poll(self) -> None:
        """One connection to the ClusterIP; its answer may reach a waiting pod."""
        endpoint = self.target()
        pod = await self._answering_pod(endpoint) if endpoint is not None else ""
        now = self.clock()
        latency = self.pending.reached(pod, now) if pod else None
        if latency is not None:
            datapath = self.datapath()
            self.metrics.programmed(self.node, datapath, latency)
            log.info("new echo endpoint %s reached from %s [%s] %.3fs after its change",
                     pod, self.node, datapath, latency)
        for gone in self.pending.expired(now):
            self.metrics.missed(self.node, self.datapath())
            log.warning("new echo endpoint %s not reached from %s through %s within %gs",
                        gone, self.node, show(endpoint) if endpoint else "(no targets)",
                        self.timeout)

    async def _answering_pod(self, endpoint: Endpoint) -> str:
        self.polls += 1
        try:
            seen = await self.dialer.line(endpoint, self.connect_timeout)
        except ProbeError as exc:
            log.warning("programming chase from %s: %s", self.node, exc)
            return ""
        return str((seen.reply or {}).get("pod", "")) if seen.answered else ""

    async def chase(self) -> None:
        """Poll at ``polls_per_second`` at most until no new endpoint waits."""
        step = 1.0 / self.polls_per_second
        while self.pending.pending:
            started = self.clock()
            await self.poll()
            if (wait := started + step - self.clock()) > 0:
                await self.sleep(wait)

    async def run(self) -> None:
        """Chase whenever something new is learnt, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.chase()
            except Exception:  # a bug must not end the probe: logged, next news chased
                log.exception("programming chase from %s failed", self.node)


async def follow(watch: ProgrammingWatch, events: AsyncIterator[Any]) -> None:
    """Feed ``watch`` the events of ``KubeClient.watch`` on the Service's EndpointSlices."""
    async for event in events:
        watch.on_event(event.type, event.object, event.objects)


def slice_selector(service: str) -> tuple[str, str]:
    """``namespace/name`` -> (namespace, the label selector of its EndpointSlices)."""
    namespace, _, name = service.partition("/")
    return namespace, f"{SERVICE_NAME_LABEL}={name}"


@dataclass
class SliceFeed:
    """``watch`` fed from the Kubernetes API: the EndpointSlices of ``service``
    (``namespace/name``) through ``client``; a refused or failed watch is logged, counted
    in ``failures`` and retried after ``retry_seconds`` (the chase keeps what it learnt)."""

    watch: ProgrammingWatch
    client: Any  # exporter.kube.client.KubeClient
    service: str
    retry_seconds: float = 30.0
    failures: int = 0
    #: Called on each failure (the probe counts it in ``kpr_probe_target_errors_total``).
    on_failure: Callable[[], None] | None = None

    async def follow(self) -> None:
        from exporter.kube.errors import KubeError
        from exporter.kube.resources import ENDPOINTSLICES

        namespace, selector = slice_selector(self.service)
        while True:
            try:
                await follow(self.watch, self.client.watch(ENDPOINTSLICES, namespace,
                                                           label_selector=selector))
            except KubeError as exc:
                self.failures += 1
                log.error("cannot watch the EndpointSlices of %s (programming latency not "
                          "measured; retrying in %gs): %s", self.service, self.retry_seconds,
                          exc)
            except Exception:  # a bug must not end the probe: logged, retried
                self.failures += 1
                log.exception("following the EndpointSlices of %s failed", self.service)
            if self.on_failure is not None:
                self.on_failure()
            await self.watch.sleep(self.retry_seconds)

    async def run(self) -> None:
        """Follow the slices and chase new endpoints, until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.follow(), name="watch echo endpointslices")
            group.create_task(self.watch.run(), name="programming chase")

    async def close(self) -> None:
        await self.client.close()
