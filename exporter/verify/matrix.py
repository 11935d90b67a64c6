"""The verification matrix: checks × nodes, each cell pass, fail or no result (pure).

A cell belongs to the node whose datapath handled the path (``CheckResult.served_by``),
so a NodePort broken on one node shows in that node's column whichever probe saw it.
A cell is ``fail`` when any result failed, ``pass`` when at least one passed and none
failed, ``n/a`` when the check cannot apply to the node (``not_applicable``: no local
endpoint of the eTP=Local Service there, no hostPort pod, no load-balancer address), and
``none`` otherwise, with the reason (nothing probed it, or only probe errors). Each cell
keeps the worst and the typical (median) connect time.

Exit codes (``exit_code``): 0 every applicable cell passes, 1 any cell fails, 2 otherwise
(a cell without a result, so the matrix cannot vouch for it).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from exporter.verify import results as r
from exporter.verify.targets import Targets

NONE = "none"
NOT_APPLICABLE = "n/a"
_MARK = {r.PASS: "ok", r.FAIL: "FAIL", NONE: "-", NOT_APPLICABLE: "n/a"}


@dataclass(frozen=True, slots=True)
class Cell:
    status: str
    reason: str = ""
    worst: float | None = None
    typical: float | None = None
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Matrix:
    datapaths: Mapping[str, str]  # node -> datapath, the columns in order
    cells: Mapping[tuple[str, str], Cell] = field(default_factory=dict)  # (check, node)
    checks: tuple[str, ...] = r.CHECKS

    def cell(self, check: str, node: str) -> Cell:
        return self.cells[(check, node)]


def not_applicable(targets: Targets) -> dict[tuple[str, str], str]:
    """(check, node) -> why the check cannot apply there."""
    out: dict[tuple[str, str], str] = {}
    for name, node in targets.nodes.items():
        if not node.etp_local_endpoints:
            out[(r.ETP_LOCAL_SOURCE_IP, name)] = "no local endpoint of the eTP=Local Service"
        if not node.hostport:
            out[(r.HOSTPORT, name)] = "no hostPort pod"
        if targets.loadbalancer is None:
            out[(r.LOADBALANCER, name)] = "no load-balancer address"
    return out


def build(results: Iterable[r.CheckResult], datapaths: Mapping[str, str],
          checks: tuple[str, ...] = r.CHECKS, *,
          skip: Mapping[tuple[str, str], str] | None = None) -> Matrix:
    """The matrix of ``results`` over the nodes of ``datapaths`` (results for other nodes
    are ignored; the caller knows the cluster). ``skip``: ``not_applicable`` cells."""
    grouped: dict[tuple[str, str], list[r.CheckResult]] = {}
    for res in results:
        node = res.served_by[0]
        if node in datapaths and res.check in checks:
            grouped.setdefault((res.check, node), []).append(res)
    skip = skip or {}
    cells = {(check, node): _cell(grouped.get((check, node), []), skip.get((check, node)))
             for check in checks for node in sorted(datapaths)}
    return Matrix(dict(sorted(datapaths.items())), cells, checks)


def _cell(found: list[r.CheckResult], skipped: str | None) -> Cell:
    times = sorted(x.connect_seconds for x in found if x.connect_seconds is not None)
    worst = times[-1] if times else None
    typical = statistics.median(times) if times else None
    failures = tuple(x.describe() for x in found if x.result == r.FAIL)
    if failures:
        return Cell(r.FAIL, "", worst, typical, failures)
    if any(x.result == r.PASS for x in found):
        return Cell(r.PASS, "", worst, typical)
    if skipped is not None:
        return Cell(NOT_APPLICABLE, skipped)
    errors = sorted({x.observed for x in found if x.result == r.ERROR})
    reason = ("probe error: " + "; ".join(errors)) if errors else "no result"
    return Cell(NONE, reason, worst, typical)


def exit_code(matrix: Matrix) -> int:
    statuses = {c.status for c in matrix.cells.values()}
    if r.FAIL in statuses:
        return 1
    return 0 if statuses <= {r.PASS, NOT_APPLICABLE} else 2


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f}"


def render_table(matrix: Matrix) -> str:
    """Checks down, nodes across (with their datapath), then worst / typical connect times
    and every failure and missing result spelled out."""
    nodes = list(matrix.datapaths)
    heads = [f"{n} ({matrix.datapaths[n]})" for n in nodes]
    width = max(len(c) for c in matrix.checks)
    cols = [max(len(h), 4) for h in heads]
    lines = ["  ".join([f"{'check':<{width}}", *(h.ljust(w) for h, w in zip(heads, cols))])]
    for check in matrix.checks:
        marks = [_MARK[matrix.cell(check, n).status].ljust(w) for n, w in zip(nodes, cols)]
        lines.append("  ".join([f"{check:<{width}}", *marks]).rstrip())
    lines.append("")
    lines.append("connect time, ms (worst / typical):")
    for node in nodes:
        times = [x for c in matrix.checks for x in [matrix.cell(c, node)] if x.worst is not None]
        worst = max((x.worst for x in times if x.worst is not None), default=None)
        typical = (statistics.median([x.typical for x in times if x.typical is not None])
                   if times else None)
        lines.append(f"  {node}: {_ms(worst)} / {_ms(typical)}")
    notes = [f"  {line}" for c in matrix.cells.values() for line in c.failures]
    notes += [f"  {check} on {node}: {cell.reason}"
              for (check, node), cell in matrix.cells.items()
              if cell.status in (NONE, NOT_APPLICABLE)]
    if notes:
        lines += ["", "details:", *notes]
    return "\n".join(lines) + "\n"


def to_json(matrix: Matrix) -> str:
    return json.dumps({
        "nodes": [{"name": n, "datapath": dp} for n, dp in matrix.datapaths.items()],
        "cells": [{"check": check, "node": node, "status": cell.status, "reason": cell.reason,
                   "worst_connect_seconds": cell.worst, "typical_connect_seconds": cell.typical,
                   "failures": list(cell.failures)}
                  for (check, node), cell in matrix.cells.items()],
        "exit_code": exit_code(matrix),
    }, indent=2)
