"""The PromQL the report runs, written against the metric contract (``docs/metrics.md``).

Every expression reads raw exporter metrics (no recording rule is needed) and is valid for
Prometheus 2.42. Aggregations sum (counters, histograms) or take the max (0/1 state gauges)
over exporter instances, so node mode (one exporter per node) reports like relay mode.

Three kinds of queries:

- timeline (range queries over the whole report range at ``step``): phase, node datapaths,
  switch times, rollbacks, drop rates by reason, handshake p99 per datapath;
- window totals (instant queries at a window's end over the window's length): histogram
  bucket increases, handshake outcomes, flows, drops;
- current state (instant queries at the report's end): verdicts, baseline, data quality;
- per phase (instant queries at the end of each migration phase over its length): the
  probes' check results, for the verification matrices.

Pure module.
"""

from __future__ import annotations

import math
from typing import Final

from exporter import metrics_contract as mc

# Range queries at most this many points per series (Prometheus refuses more than 11,000).
TARGET_POINTS: Final = 240
MIN_STEP: Final = 5.0
MIN_RATE_WINDOW: Final = 60.0

# --- timeline (range) ------------------------------------------------------------------
PHASE: Final = f"max by (phase) ({mc.MIGRATION_PHASE.name})"
DATAPATH: Final = f"max by (node, datapath, source) ({mc.DATAPATH_INFO.name})"
SWITCHES: Final = f"max by (node) ({mc.SWITCH_TIMESTAMP.name})"
ROLLBACKS: Final = f"sum by (result, mode) ({mc.ROLLBACKS.name})"

# --- current state (instant at the end) ---------------------------------------------------
VERDICTS: Final = mc.VERDICT.name
OWNERS: Final = f"max by (object, owner, owner_name) ({mc.CONFIG_OWNER.name})"
PERSISTED: Final = f"min by (owner, release, namespace, evidence) ({mc.ROLLBACK_PERSISTED.name})"
EFFECTS: Final = mc.VERDICT_EFFECT.name


def duration(seconds: float) -> str:
    """A PromQL range duration in whole seconds (at least 1s)."""
    return f"{max(1, int(round(seconds)))}s"


def step_for(start: float, end: float) -> float:
    """Range-query resolution: about ``TARGET_POINTS`` points, never below ``MIN_STEP``."""
    return float(max(MIN_STEP, math.ceil((end - start) / TARGET_POINTS)))


def rate_window_for(step: float) -> float:
    """The ``rate()`` window of the timeline plots: four steps, at least one minute."""
    return max(MIN_RATE_WINDOW, 4 * step)


def service_drop_rates(window: float) -> str:
    return f"sum by (reason, datapath) (rate({mc.SERVICE_DROPS.name}[{duration(window)}]))"


def node_drop_rates(window: float) -> str:
    return f"sum by (reason, datapath) (rate({mc.NODE_DROPS.name}[{duration(window)}]))"


def handshake_p99(window: float) -> str:
    return ("histogram_quantile(0.99, sum by (datapath, le) "
            f"(rate({mc.SERVICE_CONNECT_DURATION.name}_bucket[{duration(window)}])))")


def baseline_quantiles(window: float) -> str:
    return ("max by (namespace, service, q) "
            f"(last_over_time({mc.BASELINE_CONNECT.name}[{duration(window)}]))")


def baseline_drop_ratio(window: float) -> str:
    return ("max by (namespace, service) "
            f"(last_over_time({mc.BASELINE_DROP_RATIO.name}[{duration(window)}]))")


def hubble_uptime(window: float) -> str:
    return f"min(avg_over_time({mc.HUBBLE_UP.name}[{duration(window)}]))"


def lost_events(window: float) -> str:
    return f"sum by (source) (increase({mc.HUBBLE_LOST.name}[{duration(window)}]))"


def agent_uptime(window: float) -> str:
    return f"min by (node) (avg_over_time({mc.AGENT_UP.name}[{duration(window)}]))"


def node_drops(window: float) -> str:
    return f"sum by (reason, datapath) (increase({mc.NODE_DROPS.name}[{duration(window)}]))"


# --- window totals (instant at the window's end) -----------------------------------------

def buckets(window: float) -> str:
    return ("sum by (namespace, service, datapath, le) "
            f"(increase({mc.SERVICE_CONNECT_DURATION.name}_bucket[{duration(window)}]))")


def attempts(window: float) -> str:
    return ("sum by (namespace, service, datapath, result) "
            f"(increase({mc.SERVICE_CONNECT_ATTEMPTS.name}[{duration(window)}]))")


def flows(window: float) -> str:
    return ("sum by (namespace, service, datapath) "
            f"(increase({mc.SERVICE_FLOWS.name}[{duration(window)}]))")


def drops(window: float) -> str:
    return ("sum by (namespace, service, datapath, reason) "
            f"(increase({mc.SERVICE_DROPS.name}[{duration(window)}]))")


def probe_checks(window: float) -> str:
    """The probes' results per check, node, datapath and result over a phase's window."""
    return ("sum by (check, node, datapath, result) "
            f"(increase({mc.PROBE_CHECKS.name}[{duration(window)}]))")


#: Window queries by name, as the fetch layer runs them for each window.
WINDOW_QUERIES: Final = {"buckets": buckets, "attempts": attempts, "flows": flows, "drops": drops}

#: KPR-sensitive drop reasons in both spellings (Hubble enum names and agent texts).
SENSITIVE_REASONS: Final = mc.KPR_SENSITIVE_DROP_REASONS | mc.KPR_SENSITIVE_AGENT_TEXTS
