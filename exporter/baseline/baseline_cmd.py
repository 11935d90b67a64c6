"""``kpr-exporter baseline show|capture|clear``: the frozen baseline by hand.

* ``show``    prints the stored baseline (a table, or the JSON document); exit 1 when none.
* ``capture`` takes the kube-proxy counts between two snapshots (``capture_source`` for the
  window's end, ``earlier_source`` for its start; without it, everything counted so far)
  and stores them, replacing what was there. Refuses (exit 1) when no service had enough
  traffic, so an empty capture never replaces a useful baseline.
* ``clear``   removes the stored baseline; the next switch from an all-kube-proxy phase
  freezes a new one.

Sources may be plain or async callables (the CLI reads a running exporter).
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TextIO

from exporter.baseline.keeper import BaselineKeeper
from exporter.baseline.model import Baseline
from exporter.baseline.settings import BaselineSettings
from exporter.baseline.store import BaselineStore, StoreError, encode
from exporter.roles import Clock, system_clock
from exporter.snapshot import SliSnapshot

ACTIONS = ("show", "capture", "clear")
SnapshotSource = Callable[[], SliSnapshot | Awaitable[SliSnapshot]]


async def cmd_baseline(action: str, store: BaselineStore, *,
                       settings: BaselineSettings | None = None,
                       capture_source: SnapshotSource | None = None,
                       earlier_source: SnapshotSource | None = None,
                       fmt: str = "text", clock: Clock = system_clock,
                       out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one baseline action; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    if action not in ACTIONS:
        print(f"kpr-exporter baseline: unknown action {action!r} ({', '.join(ACTIONS)})", file=err)
        return 2
    try:
        if action == "show":
            baseline = await store.load()
            if baseline is None:
                print(f"no baseline stored ({store.describe()})", file=out)
                return 1
            out.write(encode(baseline) if fmt == "json" else render(baseline, store.describe()))
            return 0
        if action == "clear":
            await store.clear()
            print(f"baseline cleared ({store.describe()})", file=out)
            return 0
        return await _capture(store, settings or BaselineSettings(), capture_source,
                              earlier_source, clock, out, err)
    except StoreError as exc:
        print(f"kpr-exporter baseline {action}: {exc}", file=err)
        return 1


async def _capture(store: BaselineStore, settings: BaselineSettings,
                   capture_source: SnapshotSource | None, earlier_source: SnapshotSource | None,
                   clock: Clock, out: TextIO, err: TextIO) -> int:
    if capture_source is None:
        print("kpr-exporter baseline capture: no snapshot source to capture from", file=err)
        return 2
    try:
        earlier = await _call(earlier_source) if earlier_source else None
        later = await _call(capture_source)
    except Exception as exc:  # the CLI boundary: any failure of the source is reported
        print(f"kpr-exporter baseline capture: cannot read the SLIs: {exc}", file=err)
        return 1
    keeper = BaselineKeeper(settings, clock=clock)
    baseline = keeper.capture(later, earlier)
    if not baseline.services:
        print("kpr-exporter baseline capture: no service had enough kube-proxy traffic "
              f"(>= {settings.min_connections} handshakes or >= {settings.min_flows} flows); "
              "nothing stored", file=err)
        return 1
    await store.save(baseline)
    print(f"baseline captured: {len(baseline.services)} services ({store.describe()})", file=out)
    out.write(render(baseline, store.describe()))
    return 0


async def _call(source: SnapshotSource) -> SliSnapshot:
    result = source()
    if inspect.isawaitable(result):
        result = await result
    return result  # type: ignore[return-value]


def render(baseline: Baseline, where: str = "") -> str:
    """A plain-text summary: when, which window, and one line per service."""
    lines = [
        f"baseline ({baseline.source}, {baseline.datapath})" + (f" in {where}" if where else ""),
        f"  captured: {_when(baseline.captured_at)}",
        f"  window:   {_when(baseline.window_start)} .. {_when(baseline.window_end)} "
        f"({baseline.window_end - baseline.window_start:.0f} s)",
        f"  services: {len(baseline.services)}",
        "",
        f"{'NAMESPACE/SERVICE':40} {'CONNS':>8} {'P50 ms':>8} {'P90 ms':>8} {'P99 ms':>8} "
        f"{'FAIL %':>7} {'DROP %':>7} {'KPR %':>7}",
    ]
    for (namespace, service), cohort in sorted(baseline.services.items()):
        q = [baseline.quantile(namespace, service, p) * 1000 for p in (0.5, 0.9, 0.99)]
        r = Baseline.ratios(cohort)
        lines.append(
            f"{namespace + '/' + service:40} {cohort.connections:>8} "
            + " ".join(f"{_num(v, 3):>8}" for v in q) + " "
            + " ".join(f"{_num(r[k] * 100, 3):>7}" for k in
                       ("connect_failure_ratio", "drop_ratio", "kpr_sensitive_drop_ratio")))
    return "\n".join(lines) + "\n"


def _when(ts: float) -> str:
    if ts <= 0:
        return "counters start"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(value: float, digits: int) -> str:
    return "-" if not math.isfinite(value) else f"{value:.{digits}g}"
