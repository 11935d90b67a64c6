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

from exporter.rulegen.names import KPR_SENSITIVE_AGENT_TEXTS, KPR_SENSITIVE_ENUM_NAMES

# Range queries at most this many points per series (Prometheus refuses more than 11,000).
TARGET_POINTS: Final = 240
MIN_STEP: Final = 5.0
MIN_RATE_WINDOW: Final = 60.0

# --- timeline (range) ------------------------------------------------------------------
PHASE: Final = "max by (phase) (kpr_migration_phase)"
DATAPATH: Final = "max by (node, datapath, source) (kpr_node_datapath_info)"
SWITCHES: Final = "max by (node) (kpr_node_datapath_switch_timestamp_seconds)"
ROLLBACKS: Final = "sum by (result, mode) (kpr_rollbacks_total)"

# --- current state (instant at the end) ---------------------------------------------------
VERDICTS: Final = "kpr_verdict"
OWNERS: Final = "max by (object, owner, owner_name) (kpr_config_owner_info)"
PERSISTED: Final = "min by (owner, release, namespace, evidence) (kpr_rollback_persisted)"
EFFECTS: Final = "kpr_verdict_effect_size"


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
    return f"sum by (reason, datapath) (rate(kpr_service_drops_total[{duration(window)}]))"


def node_drop_rates(window: float) -> str:
    return f"sum by (reason, datapath) (rate(kpr_node_drops_total[{duration(window)}]))"


def handshake_p99(window: float) -> str:
    return ("histogram_quantile(0.99, sum by (datapath, le) "
            f"(rate(kpr_service_connect_duration_seconds_bucket[{duration(window)}])))")


def baseline_quantiles(window: float) -> str:
    return ("max by (namespace, service, q) "
            f"(last_over_time(kpr_baseline_connect_duration_seconds[{duration(window)}]))")


def baseline_drop_ratio(window: float) -> str:
    return ("max by (namespace, service) "
            f"(last_over_time(kpr_baseline_drop_ratio[{duration(window)}]))")


def hubble_uptime(window: float) -> str:
    return f"min(avg_over_time(kpr_hubble_up[{duration(window)}]))"


def lost_events(window: float) -> str:
    return f"sum by (source) (increase(kpr_hubble_lost_events_total[{duration(window)}]))"


def agent_uptime(window: float) -> str:
    return f"min by (node) (avg_over_time(kpr_agent_up[{duration(window)}]))"


def node_drops(window: float) -> str:
    return f"sum by (reason, datapath) (increase(kpr_node_drops_total[{duration(window)}]))"


# --- window totals (instant at the window's end) -----------------------------------------

def buckets(window: float) -> str:
    return ("sum by (namespace, service, datapath, le) "
            f"(increase(kpr_service_connect_duration_seconds_bucket[{duration(window)}]))")


def attempts(window: float) -> str:
    return ("sum by (namespace, service, datapath, result) "
            f"(increase(kpr_service_connect_attempts_total[{duration(window)}]))")


def flows(window: float) -> str:
    return ("sum by (namespace, service, datapath) "
            f"(increase(kpr_service_flows_total[{duration(window)}]))")


def drops(window: float) -> str:
    return ("sum by (namespace, service, datapath, reason) "
            f"(increase(kpr_service_drops_total[{duration(window)}]))")


def probe_checks(window: float) -> str:
    """The probes' results per check, node, datapath and result over a phase's window."""
    return ("sum by (check, node, datapath, result) "
            f"(increase(kpr_probe_checks_total[{duration(window)}]))")


#: Window queries by name, as the fetch layer runs them for each window.
WINDOW_QUERIES: Final = {"buckets": buckets, "attempts": attempts, "flows": flows, "drops": drops}

#: KPR-sensitive drop reasons in both spellings (Hubble enum names and agent texts).
SENSITIVE_REASONS: Final = frozenset(KPR_SENSITIVE_ENUM_NAMES) | frozenset(KPR_SENSITIVE_AGENT_TEXTS)
