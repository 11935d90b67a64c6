"""Preflight: the checks users trip on before switching Services to Cilium's eBPF KPR.

``evaluate(facts, settings)`` is pure and returns one :class:`Row` per check in
:data:`CHECKS`: pass / warn / fail, what it found, why it matters (with the failure class of
the KPR failure table) and what to do. ``gather`` (in :mod:`exporter.preflight.gather`)
reads the facts from the API. A check whose input could not be read fails with the reason:
no data is never a pass. ``render_table`` prints rows for people; ``exit_code`` is 1 when
any row failed. A new check is one function in ``checks/`` and one line in ``CHECKS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final

from exporter.preflight.checks import api_server, config, kernel, undo, workloads
from exporter.preflight.model import FAIL, PASS, WARN, Facts, Row
from exporter.rollback.settings import RollbackSettings

Check = Callable[[Facts, RollbackSettings], Row]

CHECKS: Final[tuple[Check, ...]] = (
    api_server.service_host,
    api_server.api_server_ha,
    kernel.kernel,
    config.kpr_value,
    config.lb_mode,
    config.lb_map,
    workloads.external_traffic_policy,
    workloads.session_affinity,
    workloads.host_port,
    workloads.mesh_socket_lb,
    undo.kube_proxy_mode,
    undo.owners,
    undo.backup,
    undo.backup_freshness,
)

__all__ = ["CHECKS", "FAIL", "PASS", "WARN", "Facts", "Row", "evaluate", "exit_code",
           "render_table"]


def evaluate(facts: Facts, settings: RollbackSettings) -> list[Row]:
    return [check(facts, settings) for check in CHECKS]


def exit_code(rows: Iterable[Row]) -> int:
    return 1 if any(r.status == FAIL for r in rows) else 0


def render_table(rows: Sequence[Row]) -> str:
    """One line per check; under a warning or failure, why it matters and what to do."""
    width = max([len("CHECK"), *(len(r.check) for r in rows)])
    lines = [f"{'CHECK':<{width}}  STATUS  MESSAGE"]
    for r in rows:
        lines.append(f"{r.check:<{width}}  {r.status.upper():<6}  {r.message}")
        if r.status != PASS:
            lines += [f"{'':<{width}}          {label}: {text}"
                      for label, text in (("why", r.why), ("do", r.todo)) if text]
    fails = sum(r.status == FAIL for r in rows)
    warns = sum(r.status == WARN for r in rows)
    lines.append(f"{len(rows)} checks: {fails} failed, {warns} warnings")
    return "\n".join(lines)
