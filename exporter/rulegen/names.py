"""Names the rules and dashboards are written against: exporter metrics and their label values.

Every metric name comes from the metric contract (``exporter.metrics_contract``, the code
form of ``docs/metrics.md``); a test checks that every metric a rule or dashboard reads is
listed there. Pure constants.
"""

from __future__ import annotations

from typing import Final

from exporter import metrics_contract as mc
from exporter.cilium import AFTER, STRICT_NOT_HONOURED
from exporter.judge.verdict import AFTER_VS_BASELINE, CANARY_VS_CONTROL
from exporter.model import EBPF, KUBE_PROXY
from exporter.rollback.roles import FAILED, PLANNED, REFUSED, SUCCEEDED

# --- flow-derived, per service and datapath ----------------------------------
CONNECT_DURATION: Final = mc.SERVICE_CONNECT_DURATION.name
CONNECT_ATTEMPTS: Final = mc.SERVICE_CONNECT_ATTEMPTS.name
REQUEST_DURATION: Final = mc.SERVICE_REQUEST_DURATION.name
REQUESTS: Final = mc.SERVICE_REQUESTS.name
FLOWS: Final = mc.SERVICE_FLOWS.name
SERVICE_DROPS: Final = mc.SERVICE_DROPS.name

# --- agent-derived, per node --------------------------------------------------
NODE_DROPS: Final = mc.NODE_DROPS.name
NODE_FORWARDS: Final = mc.NODE_FORWARDS.name
AGENT_UP: Final = mc.AGENT_UP.name
AGENT_SCRAPE_DURATION: Final = mc.AGENT_SCRAPE_DURATION.name
AGENT_SCRAPE_ERRORS: Final = mc.AGENT_SCRAPE_ERRORS.name

# --- state and judgement --------------------------------------------------------
DATAPATH_INFO: Final = mc.DATAPATH_INFO.name
DATAPATH_DISAGREEMENT: Final = mc.DATAPATH_DISAGREEMENT.name
SWITCH_TIMESTAMP: Final = mc.SWITCH_TIMESTAMP.name
MIGRATION_PHASE: Final = mc.MIGRATION_PHASE.name
MIGRATION_STEP: Final = mc.MIGRATION_STEP.name
MIGRATION_GATE: Final = mc.MIGRATION_GATE.name
BASELINE_CONNECT: Final = mc.BASELINE_CONNECT.name
BASELINE_DROP_RATIO: Final = mc.BASELINE_DROP_RATIO.name
VERDICT: Final = mc.VERDICT.name
VERDICT_EFFECT: Final = mc.VERDICT_EFFECT.name
JUDGE_LAST_EVALUATION: Final = mc.JUDGE_LAST_EVALUATION.name
ROLLBACK_PERSISTED: Final = mc.ROLLBACK_PERSISTED.name
ROLLBACK_UNDONE: Final = mc.ROLLBACK_UNDONE.name

# --- self-observability -----------------------------------------------------------
HUBBLE_UP: Final = mc.HUBBLE_UP.name
HUBBLE_FLOWS: Final = mc.HUBBLE_FLOWS.name
HUBBLE_LOST: Final = mc.HUBBLE_LOST.name
HUBBLE_RECONNECTS: Final = mc.HUBBLE_RECONNECTS.name
NODE_HUBBLE_FLOWS: Final = mc.NODE_HUBBLE_FLOWS.name
NODE_HUBBLE_LOST: Final = mc.NODE_HUBBLE_LOST.name
NODE_HUBBLE_AGENT_LOST: Final = mc.NODE_HUBBLE_AGENT_LOST.name
HUBBLE_NODES: Final = mc.HUBBLE_NODES.name
CONNTABLE_ENTRIES: Final = mc.CONNTABLE_ENTRIES.name
CONNTABLE_EVICTIONS: Final = mc.CONNTABLE_EVICTIONS.name
UNATTRIBUTED: Final = mc.UNATTRIBUTED.name
LABEL_OVERFLOW: Final = mc.LABEL_OVERFLOW.name
HANDLER_ERRORS: Final = mc.HANDLER_ERRORS.name
WEBHOOK_REQUESTS: Final = mc.WEBHOOK_REQUESTS.name
ROLLBACKS: Final = mc.ROLLBACKS.name
ROLLBACK_IN_PROGRESS: Final = mc.ROLLBACK_IN_PROGRESS.name

# --- active verification (probes) ----------------------------------------------------
PROBE_CHECKS: Final = mc.PROBE_CHECKS.name
PROBE_DURATION: Final = mc.PROBE_DURATION.name

# --- what the Service datapath costs, and how it pays off (claims vs measured) ---------
SERVICE_DATAPATH_CPU: Final = mc.NODE_SERVICE_DATAPATH_CPU.name
PROCESS_CPU: Final = mc.NODE_PROCESS_CPU.name
PROGRAMMING_DURATION: Final = mc.NODE_PROGRAMMING_DURATION.name
PROBE_LOAD_CONNECTIONS: Final = mc.PROBE_LOAD_CONNECTIONS.name
PROBE_LOAD_CONNECT_DURATION: Final = mc.PROBE_LOAD_CONNECT_DURATION.name
PROBE_LOAD_BYTES: Final = mc.PROBE_LOAD_BYTES.name
PROBE_LOAD_SECONDS: Final = mc.PROBE_LOAD_SECONDS.name
PROBE_PROGRAMMING: Final = mc.PROBE_PROGRAMMING_LATENCY.name
#: Other exporters' metrics the report reads when the cluster's Prometheus has them.
CADVISOR_CPU: Final = "container_cpu_usage_seconds_total"
KSM_SERVICE_INFO: Final = "kube_service_info"
#: cAdvisor's container names of the two processes that serve Services.
SERVICE_CONTAINERS: Final = ("kube-proxy", "cilium-agent")

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
KPR_SENSITIVE_ENUM_NAMES: Final = tuple(sorted(mc.KPR_SENSITIVE_DROP_REASONS))

#: The same reasons as the Cilium agent words them (``kpr_node_drops_total{reason}``).
KPR_SENSITIVE_AGENT_TEXTS: Final = tuple(sorted(mc.KPR_SENSITIVE_AGENT_TEXTS))

#: Label sets the service-level recording rules keep.
SERVICE_LABELS: Final = mc.SLI_CONTEXT
NODE_LABELS: Final = ("node", "datapath")


def regex_alternation(values: tuple[str, ...]) -> str:
    """A PromQL regex matching exactly ``values`` (which must hold no regex metacharacters)."""
    special = set(".^$*+?()[]{}|\\\"")
    for value in values:
        if special & set(value):
            raise ValueError(f"label value needs escaping, not supported: {value!r}")
    return "|".join(values)
