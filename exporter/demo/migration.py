"""``kpr-exporter demo --scenario guided-migration``: the guided migration, end to end, on
loopback.

The product's own ``MigrationController``, built and spawned by
``exporter.app_migrate.start_migration`` as the exporter does it with ``migrate.enabled``,
runs in enforce mode against a simulated Kubernetes API (``exporter.demo.migration_cluster``:
four nodes on kube-proxy, the cilium and kube-proxy DaemonSets, cilium-config) through the
product's ``KubeClient``, batch by batch (1 node, 50 %, 100 %): label, restart the agent,
prove the datapath on the node's own endpoints, soak, then the ``verify`` gate reads the
probes of an emulated loopback datapath (``exporter.demo.verification``) whose nodes switch
to eBPF when their agent restarts with kube-proxy replacement on. At the end cilium-config
is patched directly (the ``direct`` owner: the demo has no Helm release or GitOps tool), the
CiliumNodeConfig and the labels go, and only then the kube-proxy DaemonSet is deleted; its
backup stays for a rollback.

``guided-migration-regression`` runs the same migration on an emulated datapath whose eBPF
has a fault (``FAULTS``): the first batch's verify gate fails, the controller aborts and the
rollback executor returns the node to kube-proxy; kube-proxy is never deleted.

The probes run their checks, what the gate reads; only with ``--with-prometheus`` do they
also measure load and programming, for the report. Soak, wait and poll are scaled to a demo
(``Timing``). The migration's metrics (``kpr_migration_*``) are served on the demo's metrics
address, which ``--with-prometheus`` scrapes together with the probes, so ``--report`` has
the migration's timeline. The demo ends when the migration completes or is rolled back (or at
``--duration``). Everything runs on the demo's injected clock and sleep.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, TextIO

from prometheus_client import CollectorRegistry

from exporter.app_migrate import start_migration
from exporter.demo.migration_cluster import NAMESPACE, NODES, AgentsView, DemoCluster
from exporter.demo.session import Demo
from exporter.demo.verification import Verification
from exporter.kube.errors import KubeError
from exporter.migrate import view
from exporter.migrate.controller import MigrationController
from exporter.migrate.model import FINAL_STEPS, MigrationSpec, MigrationStatus
from exporter.migrate.store import StoreError
from exporter.model import EBPF
from exporter.roles import Clock, system_clock
from exporter.rollback.roles import ENFORCE
from exporter.tasks import cancel_until_done
from exporter.verify.emulator import scenario as emulator
from exporter.web import Server, Surface, build_app

Sleep = Callable[[float], Awaitable[object]]

#: Story -> the faults the emulated datapath has on eBPF nodes.
FAULTS: Final[Mapping[str, tuple[str, ...]]] = {
    "guided-migration": (),
    "guided-migration-regression": ("nodeport-loopback-refused",),
}
GATES: Final = ("verify",)


@dataclass(frozen=True)
class Timing:
    """The migration's pace, scaled to a demo (seconds of the demo's clock)."""

    batches: tuple[str, ...] = ("1", "50%", "100%")
    soak_seconds: float = 20.0
    wait_seconds: float = 45.0  # the migration's --wait (the proof after each agent restart)
    poll_seconds: float = 2.0
    probe_interval: float = 3.0
    proof_seconds: float = 60.0


#: With Prometheus: seconds before the first step and after the last one, so its range
#: queries (``exporter.report.queries.MIN_STEP`` apart) see the states around the migration.
REPORT_MARGIN: Final = 12.0
OWNER_NOTE: Final = ("cilium-config is patched directly at the end (migrate.owner=direct: "
                     "the demo has no Helm release or GitOps tool to own it)")


def emulated_datapath(story: str, nodes: tuple[str, ...]) -> emulator.Scenario:
    """The story's emulated datapath: every node on kube-proxy, with its faults on eBPF."""
    faults = list(FAULTS[story])
    return emulator.load({"name": story, "nodes": [
        {"name": n, **({"faults": {EBPF: faults}} if faults else {})} for n in nodes]})


def migration_settings(settings: Any, port: int, timing: Timing,
                       probes: Mapping[str, str]) -> Any:
    """The exporter's settings for the demo's migration: the controller on, enforce mode in
    the exporter's namespace, the datapath proof on the nodes' endpoints (``port``), the
    direct owner, the demo's pace, and the emulated datapath's ``probes`` (node -> URL)."""
    proof = replace(settings.rollback.proof, enabled=True, kube_proxy_health_port=port,
                    agent_metrics_port=port, timeout_seconds=timing.proof_seconds)
    rollback = replace(settings.rollback, mode=ENFORCE, namespace=NAMESPACE,
                       identity="kpr-exporter-demo", kill_switch=False, kill_switch_file="",
                       backup_file="", proof=proof)
    migrate = replace(settings.migrate, enabled=True, owner="direct",
                      poll_interval_seconds=timing.poll_seconds, drain_timeout_seconds=60.0)
    return replace(settings, rollback=rollback, migrate=migrate,
                   probes=replace(settings.probes, static=dict(probes)))


class MigrationDemo(Demo):
    """The guided-migration story; ``demo_class`` picks it for ``--scenario guided-migration*``.

    It keeps ``Demo``'s interface (start, run_for, write_report, stop) and its report and
    output helpers, but runs no flow simulator and no SLI pipeline: the story is the
    migration controller's, on a simulated cluster."""

    def __init__(self, settings: Any, *, out: TextIO, interval: float = 5.0,
                 with_prometheus: bool = False, report_dir: str | None = None,
                 emulated: Any = None, clock: Clock = system_clock,
                 sleep: Sleep = asyncio.sleep, timing: Timing = Timing(),
                 nodes: Mapping[str, str] = NODES) -> None:
        self.timing = timing
        self.settings, self.out, self.interval = settings, out, max(0.5, interval)
        self.clock, self.sleep = clock, sleep
        self.story = str(emulated)
        self.want_prometheus, self.report_dir = with_prometheus, report_dir
        self.stack = None
        self.exporter = None  # no SLI pipeline: the report is written without judge settings
        self._started = 0.0
        self._token_dir = tempfile.TemporaryDirectory(prefix="kpr-demo-")
        self._token = secrets.token_urlsafe(24)
        self.cluster = DemoCluster(Path(self._token_dir.name), sleep=sleep, nodes=nodes)
        agents = AgentsView(self.cluster, self.story)
        self.probes = Verification(
            emulated_datapath(self.story, agents.node_names), agents, clock=clock, sleep=sleep,
            interval=timing.probe_interval, seed=settings.simulator.seed,
            measure=with_prometheus)  # the gate reads the checks; the report, the measures
        self.verification = self.probes  # ``Demo``'s stack scrapes them
        self.registry = CollectorRegistry()  # the controller registers kpr_migration_* here
        self.server = Server(build_app(Surface(self.registry)), settings.web.listen_address)
        self.controller: MigrationController | None = None
        self.spec = MigrationSpec(id="demo", batches=timing.batches,
                                  soak_seconds=timing.soak_seconds, gates=GATES,
                                  wait_seconds=timing.wait_seconds,
                                  requested_by="kpr-exporter demo")
        self.status: MigrationStatus | None = None
        self.backup_name = ""
        self.done: asyncio.Event | None = None
        self._tasks: list[asyncio.Future[Any]] = []
        self._seen: set[tuple[float, str, str]] = set()
        self._shown: tuple[Any, ...] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def start(self) -> None:
        self.done = asyncio.Event()
        await self.cluster.start()
        await self.probes.start()
        await self.server.start()
        assert self.cluster.kube is not None
        if self.want_prometheus:  # first: the controller starts later when Prometheus runs
            await self._start_stack()
        settings = migration_settings(self.settings, self.cluster.endpoints.port, self.timing,
                                      dict(zip(self.cluster.nodes, self.probes.urls)))
        self.backup_name = f"{NAMESPACE}/{settings.rollback.backup_configmap}"
        # Built and spawned as the exporter builds it (``migrate.enabled``), on our clock.
        self.controller = start_migration(self.cluster.kube, settings, registry=self.registry,
                                          spawn=self._spawn, clock=self.clock,
                                          timer=self._wait)
        assert self.controller is not None
        self.spec = replace(self.spec, created_at=self.clock())
        await self.controller.store.create(self.spec, MigrationStatus())
        self._started = self.clock()
        self._print(self._intro())
        self._tasks.append(asyncio.ensure_future(self._watch()))

    def _spawn(self, work: Awaitable[Any], _: str) -> None:
        # With Prometheus, it records the state before the first step.
        margin = REPORT_MARGIN if self.stack is not None else 0.0

        async def later() -> None:
            await self.sleep(margin)
            await work

        self._tasks.append(asyncio.ensure_future(later()))

    async def _wait(self, seconds: float) -> None:
        await self.sleep(seconds)

    def _intro(self) -> str:
        nodes = ", ".join(f"{n} ({a})" for n, a in self.cluster.nodes.items())
        faults = FAULTS[self.story]
        stack = (f"  prometheus     {self.stack.prometheus_url} (scrapes the migration's "
                 "metrics and the probes)\n" if self.stack is not None else "")
        return (
            f"kpr-exporter demo: scenario {self.story!r} (guided migration, enforce mode)\n"
            f"  Kubernetes API {self.cluster.api.url} (simulated: cilium and kube-proxy "
            f"DaemonSets, cilium-config with KPR off)\n"
            f"  nodes          {nodes}, all on kube-proxy\n"
            f"  emulated       datapath on 127.{self.probes.scenario.network}.0.0/16, "
            + (f"eBPF faults: {', '.join(faults)}" if faults else "healthy on both datapaths")
            + "; each node follows its Cilium agent\n"
            f"  probes         {', '.join(u + '/metrics' for u in self.probes.urls)}\n"
            f"  metrics        {self.url}/metrics (kpr_migration_*)\n"
            f"{stack}"
            f"  migration      batches {', '.join(self.timing.batches)}; soak "
            f"{self.timing.soak_seconds:g}s; gates {', '.join(GATES)} (a fresh round of "
            "every probe after the soak)\n"
            f"  cluster-wide   {OWNER_NOTE}\n")

    async def _watch(self) -> None:
        """Follow the migration's record until it completes or is rolled back."""
        assert self.controller is not None and self.done is not None
        try:
            while True:
                try:
                    stored = await self.controller.store.load()
                except (KubeError, StoreError) as exc:
                    self._print(f"  >> cannot read the migration: {exc}")
                    stored = None
                if stored is not None:
                    self.status = stored.status
                    self._progress(stored.status)
                    if stored.status.step in FINAL_STEPS:
                        break
                await self.sleep(self.timing.poll_seconds)
            # the controller's next tick puts the final step in its metrics
            await self.sleep(self.timing.poll_seconds * 1.5)
        finally:
            self.done.set()

    def _progress(self, status: MigrationStatus) -> None:
        """Each new timeline entry, as it happens."""
        for entry in status.history:
            key = (entry.at, entry.step, entry.message)
            if key in self._seen:
                continue
            self._seen.add(key)
            batch = f" (batch {entry.batch + 1})" if entry.batch >= 0 else ""
            self._print(f"  >> [{entry.at - self._started:5.0f}s] {entry.step}{batch}: "
                        f"{entry.message}")

    async def run_for(self, duration: float,
                      until: Callable[[float], Awaitable[None]]) -> None:
        assert self.done is not None
        summaries = asyncio.ensure_future(self._summaries())
        ending = asyncio.ensure_future(until(duration))
        finished = asyncio.ensure_future(self.done.wait())
        try:
            await asyncio.wait({ending, finished}, return_when=asyncio.FIRST_COMPLETED)
            if finished.done() and self.stack is not None:
                await self.sleep(REPORT_MARGIN)  # ... and the state after the last one
        finally:
            await cancel_until_done([summaries, ending, finished])
        self._print(self.summary(force=True))
        if self.status is not None:
            self._print(self.outcome(self.status))

    def outcome(self, status: MigrationStatus) -> str:
        """How the story ended, in the cluster's own terms."""
        cluster = self.cluster
        on_ebpf = [n for n in cluster.nodes if cluster.datapath(n) == EBPF]
        proxied = cluster.kube_proxy_nodes()
        daemonset = ("deleted at cleanup" if cluster.kube_proxy_daemonset() is None
                     else "kept (never deleted)")
        lines = [f"migration {status.step}: " + (status.abort_reason or status.message)]
        lines.append(f"  nodes on eBPF: {', '.join(on_ebpf) or 'none'}; kube-proxy runs on: "
                     f"{', '.join(proxied) or 'none'}")
        lines.append(f"  kube-proxy DaemonSet {daemonset}; backup kept in ConfigMap "
                     f"{self.backup_name} for a rollback")
        if status.completed:
            lines.append(f"  {OWNER_NOTE}")
        return "\n".join(lines)

    async def _summaries(self) -> None:
        while True:
            await self.sleep(self.interval)
            self._print(self.summary())

    def summary(self, *, force: bool = False) -> str:
        """The migration's view (``exporter.migrate.view``) when its step, batch or gates
        changed since last shown, else one line; then the verify matrix."""
        status = self.status or MigrationStatus()
        now = self.clock()
        key = (status.step, status.batch, len(status.gate_results), status.paused)
        head = f"[{now - self._started:6.0f}s] migration {status.step}"
        if key != self._shown or force:
            self._shown = key
            text = view.render(self.spec, status, now)
            body = [head, *("  " + line if line else "" for line in text.rstrip().splitlines())]
        else:
            icon, word = view.state(status)
            body = [f"{head}: {icon} {word}  {status.message}"]
        return "\n".join([*body, *self.probes.lines()])

    async def _start_stack(self) -> None:
        await self._start_stack_for(f"127.0.0.1:{self.server.port}", self.url)

    async def stop(self) -> None:
        await cancel_until_done(self._tasks)
        if self.stack is not None:
            await self.stack.stop()
        await self.probes.stop()
        await self.server.stop()
        await self.cluster.stop()
        self._token_dir.cleanup()
        self._print("demo stopped")
