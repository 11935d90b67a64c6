"""Composition root: builds the exporter's parts from the settings and runs them.

Wiring only — every decision lives in the components. The parts:
Hubble reader -> SLI pipeline; agent scraper -> datapath tracker; Kubernetes
watchers (when reachable) -> tracker and backend map; judge and baseline on a
timer; webhook receiver -> rollback; one aiohttp server for all HTTP routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import prometheus_client
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.datapath.tracker import DatapathTracker
from exporter.kube.backends import BackendMap, BackendWatcher
from exporter.kube.client import KubeClient, client_from_settings
from exporter.kube.datapath_feed import DatapathWatcher
from exporter.kube.resources import PODS
from exporter.roles import Clock, DatapathResolver, FlowSource, ServiceDirectory, system_clock
from exporter.sli import Pipeline, StaticDatapathResolver
from exporter.sources.agent_collector import agent_lost_events
from exporter.sources.agents import AgentCollector, AgentScraper, static_discovery
from exporter.sources.kube_proxy import KubeProxyScraper, ServiceDatapathCollector
from exporter.sources.hubble import HubbleReader
from exporter import buildinfo, topology
from exporter.app_migrate import start_migration
from exporter.app_owners import watch_owners
from exporter.app_probes import ProbeResults
from exporter.baseline.collector import BaselineCollector
from exporter.baseline.keeper import BaselineKeeper
from exporter.baseline.service import BaselineService
from exporter.baseline.store import StoreError, make_store
from exporter.judge.verdict_json import QueryError, verdicts_body
from exporter.judge.collector import VerdictCollector
from exporter.judge.driver import Judge
from exporter.judge.losses import with_agent_lost
from exporter.judge_prom import PrometheusEvidence
from exporter.rollback.roles import TrackerView
from exporter.snapshot import to_json as snapshot_json
from exporter.web import Server, Surface, build_app
from exporter.webhook.service import StaticView, build_rollback_service

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
        kube: KubeClient | None = None,
        planner: Any = None,
    ) -> None:
        self.settings = settings
        # ``_created`` samples double the series count and nothing here reads them.
        prometheus_client.disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        buildinfo.register(self.registry)
        self._clock = clock
        self._sleep = sleep
        self._tasks: list[asyncio.Task[Any]] = []
        self.surface = Surface(registry=self.registry)
        self.kube = kube if kube is not None else client_from_settings(settings.kube)
        # web.role: a collector only collects; a central instance only decides (node mode).
        self.duties = duty = topology.duties(settings.web.role)

        self.tracker = DatapathTracker(clock=clock)
        self.registry.register(self.tracker)
        self.resolver: DatapathResolver = (
            StaticDatapathResolver(settings.datapath.static)
            if settings.datapath.static
            else self.tracker
        )

        self.backends: BackendMap | None = None
        if directory is None and self.kube is not None and settings.kube.backend_map \
                and duty.collects:
            self.backends = BackendMap(max_entries=settings.kube.backend_map_max_entries)
            self.registry.register(self.backends)
            directory = self.backends

        # The SLI pipeline's series are rendered by the pipeline itself (fast text
        # format); its registry only serves OpenMetrics-only clients.
        self.pipeline_registry = CollectorRegistry(auto_describe=True)
        self.pipeline = Pipeline(
            settings.sli, self.pipeline_registry, datapaths=self.resolver,
            directory=directory, clock=clock,
        )
        self.surface.text_renderers.append(self.pipeline.render)
        self.surface.openmetrics_registries.append(self.pipeline_registry)
        # A central instance reads no Hubble: no kpr_hubble_up of its own in the fleet's sums.
        self.source: FlowSource | None = None
        if duty.collects:
            self.source = flow_source or HubbleReader(
                settings.hubble, registry=self.registry, clock=clock, sleep=sleep)
            self.surface.readiness["hubble"] = self._hubble_readiness

        self.agents: AgentScraper | None = None
        discover = None if not duty.collects else (
            static_discovery(settings.agents.static) if settings.agents.static
            else self._discover_agents if self.kube is not None
            else None
        )
        if discover is not None:
            self.agents = AgentScraper(
                settings=settings.agents,
                discover=discover,
                on_kpr_gauge=self.tracker.observe_agent_gauge,
                clock=clock,
                sleep=sleep,
            )
            self.registry.register(AgentCollector(source=self.agents, resolver=self.resolver))
            self.surface.readiness["agents"] = self.agents.readiness
        # kube-proxy's own metrics: with the agents', the per-node Service datapath CPU and
        # programming latency.
        self.kube_proxies: KubeProxyScraper | None = None
        kp = settings.kube_proxy
        kp_discover = None if not (kp.enabled and duty.collects) else (
            static_discovery(kp.static) if kp.static
            else self._discover_kube_proxies if self.kube is not None else None)
        if kp_discover is not None:
            self.kube_proxies = KubeProxyScraper(settings=kp, discover=kp_discover, clock=clock,
                                                 sleep=sleep)
        self.registry.register(ServiceDatapathCollector(
            kube_proxy=self.kube_proxies, agents=self.agents, resolver=self.resolver))
        # The verification probes' results: served again here and judged as pseudo-services.
        self.probes = ProbeResults.build(settings.probes, kube=self.kube, collects=duty.collects,
                                         registry=self.registry, clock=clock, sleep=sleep)

        # judge.source prometheus: the same statistics over the fleet's series in Prometheus.
        self.judge_evidence: PrometheusEvidence | None = (
            PrometheusEvidence(settings.judge, registry=self.registry)
            if settings.judge.source == "prometheus" and duty.decides else None)
        # The baseline (its pre-switch window from Prometheus when the judge reads it there).
        self.baseline = BaselineService(
            BaselineKeeper(settings.baseline, clock=clock),
            make_store(settings.baseline, kube=self.kube), clock=clock,
            remote=self.judge_evidence.window_at if self.judge_evidence else None,
        )
        self.judge = Judge(settings.judge)
        if duty.decides:
            self.registry.register(BaselineCollector(lambda: self.baseline.baseline))
            self.registry.register(VerdictCollector(self.judge))

        self.app = build_app(self.surface)
        self.app.router.add_get("/api/v1/snapshot", self._snapshot_api)
        self.surface.links.append(("/api/v1/snapshot", "SLI snapshot (JSON)"))
        stop_within = settings.webhook.shutdown_timeout_seconds  # below the pod's grace period
        self.server = Server(self.app, settings.web.listen_address, shutdown_timeout=stop_within)
        # A static datapath map states the phase; otherwise the tracker learns it. The
        # webhook, the baseline and the judge all read the phase from this one view.
        self.view = (StaticView(settings.datapath.static) if settings.datapath.static
                     else TrackerView(self.tracker))
        # The webhook, the rollback executor and the verdicts are the deciding instance's.
        self.webhook_server: Server | None = None
        self.rollback: Any = None
        if duty.decides:
            self.app.router.add_get("/api/v1/verdicts", self._verdicts_api)
            self.surface.links.insert(0, ("/api/v1/verdicts", "Verdicts (JSON)"))
            self._build_webhook(settings, planner, stop_within)
        else:  # what a collector's readiness probe asks: its listener serves /metrics
            self.surface.readiness["listener"] = self.server.readiness

    def _build_webhook(self, settings: Any, planner: Any, stop_within: float) -> None:
        # The webhook shares the main listener unless it has its own (required for TLS).
        webhook_app = self.app
        if settings.webhook.listen_address:
            webhook_app = web.Application(client_max_size=settings.webhook.max_body_bytes + 1)
        self.rollback = build_rollback_service(
            webhook_app, webhook=settings.webhook, rollback=settings.rollback,
            view=self.view, kube=self.kube, registry=self.registry, clock=self._clock,
            planner=planner,
        )
        if settings.webhook.listen_address:
            self.webhook_server = Server(webhook_app, settings.webhook.listen_address,
                                         ssl_context=self.rollback.ssl_context,
                                         flag="--webhook.listen-address",
                                         shutdown_timeout=stop_within)
        # What the Pod's readiness probe asks (/readyz/webhook): a Hubble outage must not
        # take the webhook out of the Service (docs/install.md, "Health endpoints").
        self.surface.readiness["webhook"] = self._webhook_readiness

    async def _discover_agents(self) -> dict[str, str]:
        """Cilium agent pods -> {node: metrics URL}, from the Kubernetes API."""
        return await self._discover_pods(self.settings.agents)

    async def _discover_kube_proxies(self) -> dict[str, str]:
        """kube-proxy pods (host network: the pod IP is the node's) -> {node: metrics URL}."""
        return await self._discover_pods(self.settings.kube_proxy)

    async def _discover_pods(self, agents: Any) -> dict[str, str]:
        """Running pods of a section's ``selector`` -> {node: the section's URL for the pod}."""
        assert self.kube is not None
        pods = await self.kube.list(
            PODS, agents.namespace, label_selector=agents.selector,
            field_selector=f"spec.nodeName={agents.node_name}" if agents.node_name else "")
        found: dict[str, str] = {}
        for pod in pods.items:
            node = (pod.get("spec") or {}).get("nodeName")
            ip = (pod.get("status") or {}).get("podIP")
            if node and ip and (pod.get("status") or {}).get("phase") == "Running":
                found[node] = agents.url_for(ip)
        return found

    async def _snapshot_api(self, request: web.Request) -> web.Response:
        return web.json_response(snapshot_json(self.pipeline.snapshot(self._clock())))

    async def _verdicts_api(self, request: web.Request) -> web.Response:
        try:
            body = verdicts_body(self.judge, dict(request.query))
        except QueryError as exc:
            return web.json_response({"status": "error", "error": str(exc)}, status=400)
        return web.json_response(body, dumps=lambda o: json.dumps(o, allow_nan=False))

    # --- readiness ---------------------------------------------------------------------

    def _hubble_readiness(self) -> str | None:
        """Ready while the Hubble stream is up now; it is not what the Pod's probe
        asks (``/readyz/webhook``), see web.py."""
        if self.source is None:
            return "this instance reads no Hubble (web.role central)"
        status = self.source.status()
        if status.up:
            return None
        return f"Hubble stream at {status.address} is down" + (
            f" ({status.error})" if status.error else "")

    def _webhook_readiness(self) -> str | None:
        """Ready while the webhook's listener serves (it serves /readyz too when shared)."""
        server = self.webhook_server or self.server
        return server.readiness()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        for line in self.pipeline.status():
            log.info("SLI handler", extra={"kv": {"status": line}})
        await self.server.start()
        if self.webhook_server is not None:
            await self.webhook_server.start()
        if self.source is not None:
            self._spawn(self._consume(), "hubble-consumer")
        self._spawn(self._tick(), "sli-tick")
        if self.agents is not None:
            self._spawn(self.agents.run(), "agent-scraper")
        if self.kube_proxies is not None:
            self._spawn(self.kube_proxies.run(), "kube-proxy-scraper")
        if self.probes is not None:
            self._spawn(self.probes.scraper.run(), "probe-scraper")
        if self.kube is not None:
            watcher = None
            if not self.settings.datapath.static:
                watcher = DatapathWatcher(self.kube, self.settings.kube, self.tracker)
                self._spawn(watcher.run(), "kube-datapath-watch")
            if self.duties.decides:
                watch_owners(self.kube, self.settings, registry=self.registry, watcher=watcher,
                             tracker=self.tracker, spawn=self._spawn, clock=self._clock,
                             sleep=self._sleep)
            if self.backends is not None:
                self._spawn(BackendWatcher(self.kube, self.settings.kube, self.backends).run(),
                            "kube-backend-watch")
        if self.duties.decides:
            # Resumes an interrupted rollback now and whenever a dead holder's Lease expires.
            self._spawn(self.rollback.run(self._sleep), "rollback-resume")
            if self.kube is not None:
                start_migration(self.kube, self.settings, registry=self.registry,
                                spawn=self._spawn, clock=self._clock, timer=self._sleep,
                                rollback_busy=lambda: self.rollback.runner.busy)
            self._spawn(self._judge_loop(), "judge")
        log.info("exporter started", extra={"kv": {
            "listen": self.server.url, "role": self.settings.web.role,
            "hubble": self.settings.hubble.address,
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
        if self.kube_proxies is not None:
            await self.kube_proxies.aclose()
        if self.probes is not None:
            await self.probes.scraper.aclose()
        # Both listeners drain at once: the whole stop stays within one shutdown timeout.
        await asyncio.gather(*(s.stop() for s in (self.server, self.webhook_server) if s is not None))
        if self.kube is not None:
            await self.kube.close()

    @property
    def url(self) -> str:
        return self.server.url

    # --- loops -------------------------------------------------------------------------

    async def _consume(self) -> None:
        handle = self.pipeline.handle
        assert self.source is not None, "only an instance that collects consumes flows"
        async for event in self.source.events():
            handle(event)

    def sources_problem(self) -> str:
        """Why the judge must not trust the data right now ("" when it may)."""
        if why := self._hubble_readiness():
            return why
        if self.agents is not None and (why := self.agents.readiness()):
            return why
        return ""

    async def judge_once(self) -> None:
        """One round: snapshot -> baseline -> judge."""
        now = self._clock()
        snapshot = self.pipeline.snapshot(now)
        if self.agents is not None:  # the agents' own lost-event counts join the gate
            snapshot = with_agent_lost(snapshot, agent_lost_events(self.agents.states()))
        if self.probes is not None:
            snapshot = self.probes.judge_snapshot(snapshot)
        phase = self.view.phase()
        await self.baseline.observe(snapshot, phase)
        if self.judge_evidence is not None:
            evidence = await self.judge_evidence.evidence(now)
            await asyncio.to_thread(self.judge.evaluate_evidence, now, evidence,
                                    baseline=self.baseline.baseline, phase=phase)
            return
        problem = self.sources_problem()
        # Thousands of services take a second or two of statistics: off the event loop.
        await asyncio.to_thread(
            self.judge.evaluate, now, [snapshot], baseline=self.baseline.baseline, phase=phase,
            sources_ok=not problem, sources_reason=problem)

    async def _judge_loop(self) -> None:
        try:
            await self.baseline.start()
        except StoreError as exc:
            log.error("cannot load the baseline; running without one until it can be read",
                      extra={"kv": {"error": str(exc)}})
        while True:
            try:
                await self.judge_once()
            except Exception:  # noqa: BLE001 - a bad round must not end judgement
                log.exception("judge round failed")
            await self._sleep(self.settings.judge.evaluation_interval_seconds)

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
        # The simulated kube-proxies answer 404 on nodes switched to eBPF (none runs there).
        kube_proxy=replace(
            settings.kube_proxy,
            static={node: f"{base}/{node}/kube-proxy/metrics" for node in nodes},
            interval_seconds=min(settings.kube_proxy.interval_seconds, 2.0),
        ),
        kube=replace(settings.kube, enabled="false"),
    )
