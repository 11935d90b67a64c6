"""The PromQL behind the judge over Prometheus (metric names from ``docs/metrics.md``).

Window increases are the report's window totals (``exporter.report.queries``): bucket,
attempt, flow and drop increases summed by (namespace, service, datapath) over every
exporter instance, evaluated at the judge's evaluation time over the window's length.
When the window's edges fall on scrape times, ``increase()`` extrapolates nothing and the
counts are exact; otherwise they are Prometheus' estimate within one scrape interval.

Health queries read each exporter's ``kpr_hubble_up`` (instances are ``job``/``instance``):
its value, the time of its newest sample, the instances seen in the short window that have
no current sample (a dead exporter; one replaced longer ago no longer counts), and those
with no sample at a window's start (the window is partial).
Pure module.
"""

from __future__ import annotations

from typing import Final

from exporter.report.queries import WINDOW_QUERIES, duration

#: Window query names, in the order ``assemble.window`` takes them.
WINDOW_PARTS: Final = ("buckets", "attempts", "flows", "drops")

HUBBLE_UP: Final = "kpr_hubble_up"
INSTANCE: Final = ("job", "instance")
_BY: Final = "job, instance"


def window_queries(seconds: float) -> dict[str, str]:
    """``{part: expr}`` of one window of ``seconds``."""
    return {part: WINDOW_QUERIES[part](seconds) for part in WINDOW_PARTS}


def up() -> str:
    """Each exporter's Hubble stream state now (1 up, 0 down)."""
    return f"max by ({_BY}) ({HUBBLE_UP})"


def newest_sample() -> str:
    """Each exporter's newest scraped sample time (within Prometheus' lookback)."""
    return f"max by ({_BY}) (timestamp({HUBBLE_UP}))"


def vanished(seconds: float) -> str:
    """Exporters that reported within the last ``seconds`` but have no current sample."""
    return (f"group by ({_BY}) (last_over_time({HUBBLE_UP}[{duration(seconds)}])) "
            f"unless on ({_BY}) {HUBBLE_UP}")


def late_starters(seconds: float) -> str:
    """Exporters reporting now with no sample at or before the start of the window."""
    return (f"group by ({_BY}) ({HUBBLE_UP}) "
            f"unless on ({_BY}) ({HUBBLE_UP} offset {duration(seconds)})")
