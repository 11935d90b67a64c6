"""The PromQL behind the judge over Prometheus (metric names from ``docs/metrics.md``).

Window increases are the report's window totals (``exporter.report.queries``): bucket,
attempt, flow and drop increases summed by (namespace, service, datapath) over every
exporter instance, evaluated at the judge's evaluation time over the window's length.
When the window's edges fall on scrape times, ``increase()`` extrapolates nothing and the
counts are exact; otherwise they are Prometheus' estimate within one scrape interval.

The verification probes' results join as the ``kpr-probe`` pseudo-services
(``exporter.judge.probes``): the same three parts over ``kpr_probe_*``, relabelled to
(namespace ``kpr-probe``, service = check, datapath), ``pass`` read as ``established`` and
``error`` results left out, with zero flows (the probes see none).

Health queries read each exporter's ``kpr_hubble_up`` (instances are ``job``/``instance``):
its value, the time of its newest sample, the instances seen in the short window that have
no current sample (a dead exporter; one replaced longer ago no longer counts), and those
with no sample at a window's start (the window is partial).
Pure module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from exporter import metrics_contract as mc
from exporter.judge.probes import NAMESPACE as PROBE_NAMESPACE
from exporter.report.queries import WINDOW_QUERIES, duration

#: Window query names, in the order ``assemble.window`` takes them.
WINDOW_PARTS: Final = ("buckets", "attempts", "flows", "drops")
#: The parts the probes' pseudo-services add to a window.
PROBE_PARTS: Final = ("buckets", "attempts", "flows")

#: Per-node Hubble events, by exporter (the lost-events gate, ``exporter.judge.losses``).
LOSS_METRICS: Final = {
    "flows": mc.NODE_HUBBLE_FLOWS.name,
    "lost": mc.NODE_HUBBLE_LOST.name,
    "agent_lost": mc.NODE_HUBBLE_AGENT_LOST.name,
}

HUBBLE_UP: Final = "kpr_hubble_up"
INSTANCE: Final = ("job", "instance")
_BY: Final = "job, instance"


def window_queries(seconds: float) -> dict[str, str]:
    """``{part: expr}`` of one window of ``seconds``."""
    return {part: WINDOW_QUERIES[part](seconds) for part in WINDOW_PARTS}


def loss_queries(seconds: float) -> dict[str, str]:
    """``{part: expr}``: each exporter's per-node flows and lost events over ``seconds``."""
    d = duration(seconds)
    return {part: f"sum by ({_BY}, node) (increase({metric}[{d}]))"
            for part, metric in LOSS_METRICS.items()}


_INCREASE = re.compile(r"increase\((kpr_[a-z_]+)\[")


def without_instances(expr: str, instances: Iterable[str]) -> str:
    """``expr`` with the series of the exporter ``instances`` left out of every increase."""
    pattern = "|".join(re.escape(i) for i in sorted(instances))
    escaped = pattern.replace("\\", "\\\\").replace('"', '\\"')
    out, n = _INCREASE.subn(lambda m: f'increase({m.group(1)}{{instance!~"{escaped}"}}[', expr)
    if not n:
        raise ValueError(f"no increase() of a kpr_ series to narrow in {expr!r}")
    return out


def probe_queries(seconds: float) -> dict[str, str]:
    """``{part: expr}`` of the probes' pseudo-services over one window of ``seconds``."""
    d = duration(seconds)
    checks = f'increase(kpr_probe_checks_total{{result=~"pass|fail"}}[{d}])'
    return {
        "buckets": _as_service("sum by (check, datapath, le) "
                               f"(increase(kpr_probe_duration_seconds_bucket[{d}]))"),
        "attempts": _as_service(f"label_replace(sum by (check, datapath, result) ({checks}), "
                                '"result", "established", "result", "pass")'),
        "flows": _as_service(f"0 * sum by (check, datapath) ({checks})"),
    }


def _as_service(expr: str) -> str:
    """``expr`` (by check) relabelled as the pseudo-service ``kpr-probe/<check>``."""
    return (f'label_replace(label_replace({expr}, "namespace", "{PROBE_NAMESPACE}", "", ""), '
            '"service", "$1", "check", "(.+)")')


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
