"""``kpr-exporter migrate <action>``: options to a spec, the gates from the settings, the
Helm engine and the consent, then the command in :mod:`exporter.migrate.migrate_cmd`.

The gates are built from the settings the exporter already has
(:func:`exporter.migrate.gates.registry.from_settings`): ``verify`` reads the probes of
``probes.static`` or those found through the API, ``judge`` and ``alerts`` read the
Prometheus of ``judge.prometheus`` with its auth and TLS. A gate asked for whose collaborator is not configured is not
built: the controller then records it as inconclusive for every batch (never a pass), and
the reason is printed here before anything starts.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TextIO

from exporter.kube.client import KubeClient
from exporter.migrate import migrate_cmd as mc
from exporter.migrate.gates.base import Gate
from exporter.migrate.gates.registry import Collaborators, GateSetupError, build_gates, from_settings
from exporter.migrate.model import SpecError


def available_gates(names: Sequence[str], deps: Collaborators) -> tuple[dict[str, Gate], list[str]]:
    """The gates that can be built, and why the others cannot."""
    built: dict[str, Gate] = {}
    problems: list[str] = []
    for name in names:
        try:
            built[name] = build_gates([name], deps)[0]
        except GateSetupError as exc:
            problems.append(f"gate {exc} — it will count as inconclusive, never as a pass")
    return built, problems


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        print("refusing to act without --yes when not on a terminal", file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


async def dispatch(settings: Any, args: argparse.Namespace, kube: KubeClient, *, out: TextIO,
                   clock: Callable[[], float] = time.time,
                   gates: Mapping[str, Gate] | None = None, **controller: Any) -> int:
    """Run ``args.action``; ``gates`` and ``controller`` options replace the built ones (tests)."""
    r, m = settings.rollback, settings.migrate
    if args.action in ("pause", "resume", "promote", "abort"):
        confirm = None if args.yes else _ask
        return await mc.cmd_request(r, m, kube, args.action, out=out, by=_user(),
                                    confirm=confirm, reason=args.reason, clock=clock)
    if args.action == "status":
        return await mc.cmd_status(r, m, kube, out=out, watch=args.watch, clock=clock)
    try:
        spec = mc.spec_from(batches=args.batches, soak=args.soak, gates=args.gates,
                            on_fail=args.on_fail, on_inconclusive=args.on_inconclusive,
                            drain=args.drain, wait=args.wait, now=clock(), by=_user())
    except SpecError as exc:
        print(f"error: {exc}", file=out)
        return mc.BAD_INPUT
    if args.action == "plan":
        return await mc.cmd_plan(r, m, kube, spec, out=out)
    if args.action == "start":
        return await mc.cmd_start(r, m, kube, spec, out=out)
    if gates is None:
        gates, problems = available_gates(spec.gates, from_settings(settings, spec.wait_seconds,
                                                                       kube=kube))
        for problem in problems:
            print(f"warning: {problem}", file=out)
    if "kill_switch" not in controller:
        from exporter.webhook.service import kill_switch

        controller["kill_switch"] = kill_switch(r)
    if "upgrade" not in controller:
        from exporter.rollback import helm_edge

        controller["upgrade"] = partial(helm_edge.upgrade, kubeconfig=settings.kube.kubeconfig or None,
                                        context=settings.kube.context or None)
    return await mc.cmd_run(r, m, kube, spec, out=out, yes=args.yes, gates=gates, **controller)
