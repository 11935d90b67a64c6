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
from collections.abc import Awaitable, Callable
from typing import Any

from exporter.config_values import local_url, parse_listen
from exporter.roles import Clock, system_clock

Sleep = Callable[[float], Awaitable[object]]


async def _until_signalled(duration: float = 0.0, sleep: Sleep = asyncio.sleep) -> None:
    """Return on SIGINT/SIGTERM, or after ``duration`` seconds (of ``sleep``) when positive."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    waits: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
    if duration > 0:
        waits.append(asyncio.ensure_future(sleep(duration)))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def run(settings: Any, args: argparse.Namespace) -> int:
    # The exporter is imported by the command that runs it: the other commands start
    # without its Kubernetes client, judge and gRPC reader.
    from exporter import app as app_module
    from exporter.kube.errors import KubeError
    from exporter.webhook.receiver import WebhookConfigError

    try:
        exporter = app_module.Exporter(settings)
    except (WebhookConfigError, KubeError) as exc:
        print(f"kpr-exporter run: {exc}", file=sys.stderr)
        return 2
    try:
        await exporter.start()
    except BaseException:
        await exporter.stop()  # a listener that could not bind: release the others
        raise
    try:
        await _until_signalled()
    finally:
        await exporter.stop()
    return 0


async def simulate(settings: Any, args: argparse.Namespace) -> int:
    from exporter.simulator.runner import Simulator

    sim = Simulator(settings.simulator)
    ports = await sim.start()
    host = parse_listen(settings.simulator.grpc_listen_address)[0]
    agents_host = parse_listen(settings.simulator.agents_listen_address)[0]
    print(f"simulating scenario {sim.scenario.name!r} (seed {settings.simulator.seed}, "
          f"speed x{settings.simulator.speed})", flush=True)
    print(f"  Hubble Relay API   {host}:{ports.grpc}", flush=True)
    print(f"  agent metrics      http://{agents_host}:{ports.agents}/nodes", flush=True)
    for node, port in ports.nodes.items():  # --node-grpc.listen-address
        node_host = parse_listen(settings.simulator.node_grpc_listen_address)[0]
        print(f"  Hubble of {node:<8} {node_host}:{port}", flush=True)
    try:
        await _until_signalled()
    finally:
        await sim.stop()
    return 0


async def demo(settings: Any, args: argparse.Namespace, *, clock: Clock = system_clock,
               sleep: Sleep = asyncio.sleep) -> int:
    """The demo, its summaries and its ``--duration`` on ``clock`` and ``sleep``."""
    # Only this command loads the demo (``run`` must not): imported here, not at the top.
    from exporter.demo import defaults as demo_defaults
    from exporter.demo.session import demo_class

    emulated = _demo_emulated(args)
    if emulated is None:
        return 2
    # Loopback, free simulator ports, the canary-regression story x10: unless told otherwise.
    given = {k.removeprefix("flag:") for k in vars(args) if k.startswith("flag:")}
    from_file = bool(getattr(args, "scenario_file", None))
    settings = demo_defaults.apply(settings, given, scenario_file=from_file)
    story = emulated or None
    demo_run = demo_class(story)(settings, out=sys.stdout, interval=args.interval,
                                 with_prometheus=args.with_prometheus, report_dir=args.report,
                                 emulated=story, clock=clock, sleep=sleep)
    try:
        await demo_run.start()
    except BaseException:
        await demo_run.stop()  # a listener that could not bind: release the others
        raise
    try:
        await demo_run.run_for(args.duration,
                               lambda duration: _until_signalled(duration, sleep))
        # The report reads the demo's Prometheus, so it is written before anything stops.
        code = await demo_run.write_report()
    finally:
        await demo_run.stop()
    return code


def _demo_emulated(args: argparse.Namespace) -> Any:
    """The demo's emulated-datapath scenario: its name, the one in ``--scenario-file``, ""
    for none, or None after printing why the file cannot be used."""
    from exporter.verify.emulator.cluster import load_scenario
    from exporter.verify.emulator.scenario import ScenarioError

    name = getattr(args, "emulated", None) or ""
    if not getattr(args, "scenario_file", None):
        return name
    if name:
        print(f"kpr-exporter demo: --scenario {name} and --scenario-file both name an "
              "emulated-datapath scenario; give one", file=sys.stderr)
        return None
    try:
        return load_scenario(file=args.scenario_file)
    except ScenarioError as exc:
        print(f"kpr-exporter demo: {exc}", file=sys.stderr)
        return None


def _kube_or_explain(settings: Any, command: str) -> Any:
    """A Kubernetes client, or None after printing what to do."""
    from exporter.kube.client import client_from_settings
    from exporter.kube.errors import KubeError

    try:
        kube = client_from_settings(settings.kube)
    except KubeError as exc:
        print(f"kpr-exporter {command}: {exc}", file=sys.stderr)
        return None
    if kube is None:
        print(f"kpr-exporter {command}: no Kubernetes configuration found "
              "(set KUBECONFIG, --kube.kubeconfig, or run inside the cluster)", file=sys.stderr)
    return kube


async def backup(settings: Any, args: argparse.Namespace) -> int:
    from exporter.rollback.backup_cmd import cmd_backup

    kube = _kube_or_explain(settings, "backup")
    if kube is None:
        return 1
    async with kube:
        return await cmd_backup(settings.rollback, kube, output=args.output, out=sys.stdout)


async def rollback(settings: Any, args: argparse.Namespace) -> int:
    from exporter.rollback.rollback_cmd import cmd_rollback

    kube = _kube_or_explain(settings, "rollback")
    if kube is None:
        return 1

    def confirm(plan: str) -> bool:
        if not sys.stdin.isatty():
            print("refusing to act without --yes when not on a terminal", file=sys.stderr)
            return False
        return input("Run this plan? [y/N] ").strip().lower() in ("y", "yes")

    if args.persist:
        return await _persist(settings, kube, None if args.yes else confirm)
    async with kube:
        return await cmd_rollback(settings.rollback, kube,
                                  dry_run=settings.rollback.mode != "enforce",
                                  scope=args.scope, out=sys.stdout,
                                  confirm=None if args.yes else confirm)


async def _persist(settings: Any, kube: Any, confirm: Any) -> int:
    from functools import partial

    from exporter.rollback import helm_edge
    from exporter.rollback.persist_cmd import cmd_persist

    upgrade = partial(helm_edge.upgrade, kubeconfig=settings.kube.kubeconfig or None,
                      context=settings.kube.context or None)
    async with kube:
        return await cmd_persist(settings.rollback, kube, out=sys.stdout, upgrade=upgrade,
                                 confirm=confirm)


async def preflight(settings: Any, args: argparse.Namespace) -> int:
    from exporter.preflight.preflight_cmd import cmd_preflight

    kube = _kube_or_explain(settings, "preflight")
    if kube is None:
        return 1
    async with kube:
        return await cmd_preflight(settings.rollback, kube, out=sys.stdout)


async def baseline(settings: Any, args: argparse.Namespace) -> int:
    import aiohttp

    from exporter import snapshot as snapshot_module
    from exporter.baseline.baseline_cmd import cmd_baseline
    from exporter.baseline.store import make_store
    from exporter.kube.client import client_from_settings

    kube = client_from_settings(settings.kube) if settings.baseline.store == "configmap" else None
    store = make_store(settings.baseline, kube=kube)

    exporter_url = settings.baseline.exporter_url or local_url(settings.web.listen_address)

    async def from_exporter() -> snapshot_module.SliSnapshot:
        url = exporter_url.rstrip("/") + "/api/v1/snapshot"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            async with session.get(url) as response:
                response.raise_for_status()
                return snapshot_module.from_json(await response.json())

    try:
        return await cmd_baseline(args.action, store, settings=settings.baseline,
                                  capture_source=from_exporter, out=sys.stdout)
    except (aiohttp.ClientError, ValueError) as exc:
        print(f"kpr-exporter baseline: cannot read the exporter at {exporter_url}: {exc}",
              file=sys.stderr)
        return 1
    finally:
        if kube is not None:
            await kube.close()


async def report(settings: Any, args: argparse.Namespace) -> int:
    from exporter.report.report_cmd import cmd_report

    return await cmd_report(args.prometheus, args.time_from, args.time_to, args.output,
                            out=sys.stdout, title=args.title, change_id=args.change_id,
                            judge=settings.judge)


async def echo(settings: Any, args: argparse.Namespace) -> int:
    import socket

    from exporter.verify.echo import EchoError, EchoServer, Identity

    cfg = settings.echo
    identity = Identity(cfg.pod_name or socket.gethostname(), cfg.node_name)
    try:
        server = EchoServer(identity, *parse_listen(cfg.listen_address))
        port = await server.start()
    except EchoError as exc:
        print(f"kpr-exporter echo: {exc}", file=sys.stderr)
        return 1
    print(f"echo {identity.pod} on node {identity.node or '?'} listening on "
          f"{server.host}:{port}", flush=True)
    try:
        await _until_signalled()
    finally:
        await server.stop()
    return 0


async def probe(settings: Any, args: argparse.Namespace) -> int:
    from exporter.verify.serve import ProbeSettingsError, serve

    try:
        await serve(settings.probe, _until_signalled, out=sys.stdout)
    except ProbeSettingsError as exc:
        print(f"kpr-exporter probe: {exc}", file=sys.stderr)
        return 2
    return 0


async def verify(settings: Any, args: argparse.Namespace) -> int:
    from exporter.verify.verify_cmd import cmd_verify

    urls = args.exporter_url
    if getattr(args, "from_cluster", False):
        if urls:
            print("kpr-exporter verify: --from-cluster reads the probes themselves; "
                  "drop --exporter-url", file=sys.stderr)
            return 2
        urls = await _probe_urls(settings)
        if urls is None:
            return 2
    return await cmd_verify(urls, fmt=args.format, wait=args.wait,
                            max_age=args.max_age, out=sys.stdout, err=sys.stderr)


async def _probe_urls(settings: Any) -> list[str] | None:
    """The running probe pods' metrics URLs, or None after printing why there are none."""
    from exporter import probe_pods

    kube = _kube_or_explain(settings, "verify")
    if kube is None:
        return None
    try:
        async with kube:
            return await probe_pods.cluster_urls(kube, settings.probes)
    except probe_pods.ProbeDiscoveryError as exc:
        print(f"kpr-exporter verify: {exc}", file=sys.stderr)
        return None


async def migrate(settings: Any, args: argparse.Namespace) -> int:
    from exporter.migrate.cli import dispatch

    kube = _kube_or_explain(settings, "migrate")
    if kube is None:
        return 1
    async with kube:
        return await dispatch(settings, args, kube, out=sys.stdout)
