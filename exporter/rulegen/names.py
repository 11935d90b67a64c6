"""Names the rules and dashboards are written against: exporter metrics and their label values.

Everything here comes from the metric contract (``docs/metrics.md``); a test checks that every
metric a rule or dashboard reads is listed there. Pure constants.
"""

from __future__ import annotations

from typing import Final

from exporter.cilium import AFTER, STRICT_NOT_HONOURED
from exporter.judge.verdict import AFTER_VS_BASELINE, CANARY_VS_CONTROL
from exporter.model import EBPF, KPR_SENSITIVE_DROP_REASONS, KUBE_PROXY
from exporter.rollback.api import FAILED, PLANNED, REFUSED, SUCCEEDED

# --- flow-derived, per service and datapath ----------------------------------
CONNECT_DURATION: Final = "kpr_service_connect_duration_seconds"
CONNECT_ATTEMPTS: Final = "kpr_service_connect_attempts_total"
REQUEST_DURATION: Final = "kpr_service_request_duration_seconds"
REQUESTS: Final = "kpr_service_requests_total"
FLOWS: Final = "kpr_service_flows_total"
SERVICE_DROPS: Final = "kpr_service_drops_total"

# --- agent-derived, per node --------------------------------------------------
NODE_DROPS: Final = "kpr_node_drops_total"
NODE_FORWARDS: Final = "kpr_node_forwards_total"
AGENT_UP: Final = "kpr_agent_up"
AGENT_SCRAPE_DURATION: Final = "kpr_agent_scrape_duration_seconds"
AGENT_SCRAPE_ERRORS: Final = "kpr_agent_scrape_errors_total"

# --- state and judgement --------------------------------------------------------
DATAPATH_INFO: Final = "kpr_node_datapath_info"
DATAPATH_DISAGREEMENT: Final = "kpr_node_datapath_disagreement"
SWITCH_TIMESTAMP: Final = "kpr_node_datapath_switch_timestamp_seconds"
MIGRATION_PHASE: Final = "kpr_migration_phase"
BASELINE_CONNECT: Final = "kpr_baseline_connect_duration_seconds"
BASELINE_DROP_RATIO: Final = "kpr_baseline_drop_ratio"
VERDICT: Final = "kpr_verdict"
VERDICT_EFFECT: Final = "kpr_verdict_effect_size"
JUDGE_LAST_EVALUATION: Final = "kpr_judge_last_evaluation_timestamp_seconds"
ROLLBACK_PERSISTED: Final = "kpr_rollback_persisted"
ROLLBACK_UNDONE: Final = "kpr_rollback_undone"

# --- self-observability -----------------------------------------------------------
HUBBLE_UP: Final = "kpr_hubble_up"
HUBBLE_FLOWS: Final = "kpr_hubble_flows_received_total"
HUBBLE_LOST: Final = "kpr_hubble_lost_events_total"
HUBBLE_RECONNECTS: Final = "kpr_hubble_reconnects_total"
HUBBLE_NODES: Final = "kpr_hubble_nodes"
CONNTABLE_ENTRIES: Final = "kpr_connection_table_entries"
CONNTABLE_EVICTIONS: Final = "kpr_connection_table_evictions_total"
UNATTRIBUTED: Final = "kpr_unattributed_connections_total"
LABEL_OVERFLOW: Final = "kpr_label_overflow_total"
HANDLER_ERRORS: Final = "kpr_handler_errors_total"
WEBHOOK_REQUESTS: Final = "kpr_webhook_requests_total"
ROLLBACKS: Final = "kpr_rollbacks_total"
ROLLBACK_IN_PROGRESS: Final = "kpr_rollback_in_progress"

# --- active verification (probes) ----------------------------------------------------
PROBE_CHECKS: Final = "kpr_probe_checks_total"
PROBE_DURATION: Final = "kpr_probe_duration_seconds"

# --- label values -------------------------------------------------------------------
DATAPATH_EBPF: Final = EBPF
DATAPATH_KUBE_PROXY: Final = KUBE_PROXY
RESULT_ESTABLISHED: Final = "established"
QUANTILE_P99: Final = "0.99"
PHASE_AFTER: Final = AFTER
VERDICT_WORSE: Final = 1  # kpr_verdict: 1 worse, 0 not worse, -1 better, NaN inconclusive
COMPARISON_CANARY: Final = CANARY_VS_CONTROL
COMPARISON_BASELINE: Final = AFTER_VS_BASELINE
DISAGREEMENT_STRICT: Final = STRICT_NOT_HONOURED
ROLLBACK_DONE_RESULTS: Final = (SUCCEEDED, PLANNED)
ROLLBACK_FAILED_RESULTS: Final = (FAILED, REFUSED)

#: KPR-sensitive drop reasons as Hubble names them (``kpr_service_drops_total{reason}``).
KPR_SENSITIVE_ENUM_NAMES: Final = tuple(sorted(KPR_SENSITIVE_DROP_REASONS))

#: The same reasons as the Cilium agent words them (``kpr_node_drops_total{reason}``).
KPR_SENSITIVE_AGENT_TEXTS: Final = (
    "CT: Map insertion failed",
    "FIB lookup failed",
    "No mapping for NAT masquerade",
    "Service backend not found",
    "Stale or unroutable IP",
)

#: Label sets the service-level recording rules keep.
SERVICE_LABELS: Final = ("namespace", "service", "datapath")
NODE_LABELS: Final = ("node", "datapath")


def regex_alternation(values: tuple[str, ...]) -> str:
    """A PromQL regex matching exactly ``values`` (which must hold no regex metacharacters)."""
    special = set(".^$*+?()[]{}|\\\"")
    for value in values:
        if special & set(value):
            raise ValueError(f"label value needs escaping, not supported: {value!r}")
    return "|".join(values)
