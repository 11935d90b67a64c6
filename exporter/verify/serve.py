"""``kpr-exporter probe`` assembled: the probe loop and its ``/metrics`` listener.

``serve`` runs until ``until`` returns. The dialers default to the settings' source
addresses with the kernel's view of virtual addresses; tests hand in the emulator's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from prometheus_client import CollectorRegistry

from exporter import config_constraints
from exporter.tasks import cancel_until_done
from exporter.verify import results as r
from exporter.verify import targetfile
from exporter.verify.checks import Limits
from exporter.verify.load import LoadPlan, LoadRunner
from exporter.verify.measure_metrics import MeasureMetrics
from exporter.verify.metrics import ProbeMetrics, ProbeStatus
from exporter.verify.net import Dialer
from exporter.verify.service import ProbeLoop, Sleep
from exporter.verify.settings import ProbeSettings
from exporter.web import Server, Surface, build_app

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from exporter.kube.client import KubeClient
    from exporter.verify.extra import ServiceLister


class ProbeSettingsError(ValueError):
    """The probe's settings lack what it needs to run."""


@dataclass(frozen=True)
class Dialers:
    host: Dialer
    pod: Dialer


def _lister(cfg: ProbeSettings, kube: KubeClient | None) -> ServiceLister | None:
    """The listing of the user's Services when a selector is set (the Kubernetes client is
    loaded only then); raises ProbeSettingsError without a usable configuration."""
    if not cfg.extra_service_selector:
        return None
    from exporter.verify.extra import ServiceLister

    if kube is None:
        kube = _connect(cfg, "--probe.extra-service-selector")
    return ServiceLister(kube, cfg.extra_service_selector, cfg.extra_service_namespace)


def _connect(cfg: ProbeSettings, flag: str) -> KubeClient:
    """A Kubernetes client from ``cfg.kubeconfig``; raises ProbeSettingsError naming
    ``flag`` (the setting that needs it)."""
    from exporter.kube.client import KubeClient
    from exporter.kube.errors import KubeConfigError

    try:
        return KubeClient.connect(cfg.kubeconfig)
    except KubeConfigError as exc:
        raise ProbeSettingsError(f"{flag}: {exc}") from None


def _measures(cfg: ProbeSettings, loop: ProbeLoop, registry: CollectorRegistry,
              sleep: Sleep, kube: KubeClient | None) -> None:
    """Attach the load option and the programming chase to ``loop`` when enabled."""
    if not (cfg.load_enabled or cfg.programming_service):
        return
    metrics = MeasureMetrics(registry)
    if cfg.load_enabled:
        plan = LoadPlan(cfg.load_connections_per_second, cfg.load_bytes_per_second,
                        cfg.load_seconds, timeout=cfg.timeout_seconds)
        loop.load_runner = LoadRunner(plan, metrics, sleep=sleep)
    if cfg.programming_service:
        from exporter.verify.programming_watch import ProgrammingWatch, SliceFeed

        client = kube or _connect(cfg, "--probe.programming-service")
        watch = ProgrammingWatch(
            cfg.node_name, loop.pod, lambda: loop.current.cluster_ip if loop.current else None,
            loop.datapath_now, metrics, polls_per_second=cfg.programming_polls_per_second,
            timeout=cfg.programming_timeout_seconds, connect_timeout=cfg.timeout_seconds,
            sleep=sleep)

        def failed() -> None:
            loop.status.target_errors += 1

        loop.programming = SliceFeed(watch, client, cfg.programming_service, on_failure=failed)


def build(cfg: ProbeSettings, *, dialers: Dialers | None = None, limits: Limits | None = None,
          sleep: Sleep = asyncio.sleep,
          kube: KubeClient | None = None) -> tuple[ProbeLoop, Server]:
    """The loop and its (not yet started) listener; raises ProbeSettingsError. ``limits``
    replaces the settings' (tests run the long-lived connection's pings at once); ``kube``
    lists the extra Services instead of a client from ``cfg.kubeconfig``."""
    if missing := cfg.missing():
        raise ProbeSettingsError("; ".join(missing))
    if problems := config_constraints.problems(cfg, "probe"):
        raise ProbeSettingsError("; ".join(problems))
    registry = CollectorRegistry()
    dialers = dialers or Dialers(Dialer(cfg.host_address), Dialer(cfg.pod_address))
    loop = ProbeLoop(
        node=cfg.node_name, host=dialers.host, pod=dialers.pod,
        load=lambda: targetfile.load(cfg.targets_file),
        metrics=ProbeMetrics(registry), status=ProbeStatus(cfg.node_name, registry),
        interval=cfg.interval_seconds, k=cfg.sample_size, checks=cfg.checks or r.CHECKS,
        limits=limits or Limits(timeout=cfg.timeout_seconds), sleep=sleep,
        extra=_lister(cfg, kube))
    _measures(cfg, loop, registry, sleep, kube)
    server = Server(build_app(Surface(registry)), cfg.listen_address,
                    flag="--probe.listen-address")
    return loop, server


async def serve(cfg: ProbeSettings, until: Callable[[], Awaitable[object]], *,
                out: TextIO, dialers: Dialers | None = None,
                sleep: Sleep = asyncio.sleep) -> None:
    """Run the probe until ``until`` returns. Raises ProbeSettingsError, or ListenError
    when the listen address cannot be bound."""
    loop, server = build(cfg, dialers=dialers, sleep=sleep)
    await server.start()
    print(f"probe on node {cfg.node_name}: {len(loop.checks)} checks every "
          f"{cfg.interval_seconds:g}s, {cfg.sample_size} other nodes per round; "
          f"metrics at {server.url}/metrics", file=out, flush=True)
    if loop.load_runner is not None:
        plan = loop.load_runner.plan
        print(f"load after each round: {plan.connections_per_second:g} connections/s and "
              f"{plan.bytes_per_second} bytes/s for {plan.seconds:g}s each", file=out,
              flush=True)
    if loop.programming is not None:
        print(f"programming latency: watching the EndpointSlices of "
              f"{loop.programming.service}", file=out, flush=True)
    tasks = [asyncio.ensure_future(loop.run())]
    if loop.programming is not None:
        tasks.append(asyncio.ensure_future(loop.programming.run()))
    try:
        await until()
    finally:
        for error in await cancel_until_done(tasks):
            log.error("probe task had failed: %r", error)
        await server.stop()
        for part in (loop.extra, loop.programming):
            if (close := getattr(part, "close", None)) is not None:
                await close()
