"""The metric contract as code: every exported metric's name, type and labels, the
histogram buckets, the drop-reason table and the label that marks a rollback alert.

``docs/metrics.md`` is the contract for people; ``tests/test_metrics_contract.py`` checks
that it and this module list the same metrics with the same types and labels, and that
the code exports exactly those. Producers, snapshots, rule and dashboard generation, the
report's queries, the simulator and the demo take names, labels and buckets from here
instead of writing them again. Pure: imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

COUNTER: Final = "counter"
GAUGE: Final = "gauge"
HISTOGRAM: Final = "histogram"

#: The labels every flow-derived SLI starts with, in this order.
SLI_CONTEXT: Final = ("namespace", "service", "datapath")
#: The ``service`` value that stands for every service beyond a metric's cap.
OTHER_SERVICE: Final = "__other__"


def le_label(bound: float) -> str:
    """The ``le`` spelling of a bucket's upper bound, as Prometheus clients write it
    (``0.001``, ``1.0``, ``2.5e-05``, ``+Inf``): the exposition and the rules that select
    single buckets both use it."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


@dataclass(frozen=True, slots=True)
class Metric:
    """One exported metric family: its exposition name (counters end in ``_total``), its
    type, its label names in exposition order (``le`` of histograms aside) and, for a
    histogram, its upper bounds in seconds (``+Inf`` implicit)."""

    name: str
    type: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def family(self) -> str:
        """The name prometheus_client gives the family (a counter's without ``_total``)."""
        return self.name.removesuffix("_total") if self.type == COUNTER else self.name

    @property
    def le_values(self) -> tuple[str, ...]:
        """A histogram's ``le`` label values as exported, ``+Inf`` last (``le_label``)."""
        return tuple(le_label(b) for b in self.buckets) + (le_label(float("inf")),)

    @property
    def extra_labels(self) -> tuple[str, ...]:
        """A flow-derived SLI's own labels, after ``SLI_CONTEXT``."""
        if self.labels[:len(SLI_CONTEXT)] != SLI_CONTEXT:
            raise ValueError(f"{self.name} is not a flow-derived SLI")
        return self.labels[len(SLI_CONTEXT):]


# --- histogram buckets (docs/metrics.md §5) --------------------------------------------
#: ``kpr_service_connect_duration_seconds`` and ``kpr_probe_duration_seconds``.
CONNECT_BUCKETS: Final[tuple[float, ...]] = (
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.1, 0.5, 1.5, 3.5, 7.5,
)
#: ``kpr_service_request_duration_seconds``.
REQUEST_BUCKETS: Final[tuple[float, ...]] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

_SVC = SLI_CONTEXT
_NODE = ("node", "datapath")

# --- 1. flow-derived SLIs ---------------------------------------------------------------
SERVICE_CONNECT_DURATION: Final = Metric("kpr_service_connect_duration_seconds", HISTOGRAM,
                                         _SVC, CONNECT_BUCKETS)
SERVICE_CONNECT_ATTEMPTS: Final = Metric("kpr_service_connect_attempts_total", COUNTER,
                                         (*_SVC, "result"))
SERVICE_REQUEST_DURATION: Final = Metric("kpr_service_request_duration_seconds", HISTOGRAM,
                                         (*_SVC, "protocol"), REQUEST_BUCKETS)
SERVICE_REQUESTS: Final = Metric("kpr_service_requests_total", COUNTER,
                                 (*_SVC, "protocol", "code_class"))
SERVICE_FLOWS: Final = Metric("kpr_service_flows_total", COUNTER, (*_SVC, "verdict"))
SERVICE_DROPS: Final = Metric("kpr_service_drops_total", COUNTER, (*_SVC, "reason"))

# --- 2. agent-derived, and what the Service datapath costs a node -------------------------
NODE_DROPS: Final = Metric("kpr_node_drops_total", COUNTER, (*_NODE, "reason", "direction"))
NODE_FORWARDS: Final = Metric("kpr_node_forwards_total", COUNTER, (*_NODE, "direction"))
AGENT_UP: Final = Metric("kpr_agent_up", GAUGE, ("node",))
AGENT_SCRAPE_DURATION: Final = Metric("kpr_agent_scrape_duration_seconds", GAUGE, ("node",))
AGENT_SCRAPE_ERRORS: Final = Metric("kpr_agent_scrape_errors_total", COUNTER, ("node", "kind"))
AGENT_SERIES_DROPPED: Final = Metric("kpr_agent_series_dropped_total", COUNTER, ("node",))
AGENT_DUPLICATE_SAMPLES: Final = Metric("kpr_agent_duplicate_samples_total", COUNTER, ("node",))
NODE_SERVICE_DATAPATH_CPU: Final = Metric("kpr_node_service_datapath_cpu_seconds_total",
                                          COUNTER, (*_NODE, "source"))
NODE_PROCESS_CPU: Final = Metric("kpr_node_process_cpu_seconds_total", COUNTER,
                                 (*_NODE, "process"))
NODE_PROGRAMMING_DURATION: Final = Metric("kpr_node_programming_duration_seconds", HISTOGRAM,
                                          (*_NODE, "source", "ip_family", "action"))
NODE_RULES_SYNC_DURATION: Final = Metric("kpr_node_rules_sync_duration_seconds", HISTOGRAM,
                                         (*_NODE, "source", "ip_family"))
NODE_RULES_LAST_SYNC: Final = Metric("kpr_node_rules_last_sync_timestamp_seconds", GAUGE,
                                     (*_NODE, "source", "ip_family"))
KUBE_PROXY_UP: Final = Metric("kpr_kube_proxy_up", GAUGE, ("node",))
KUBE_PROXY_SCRAPE_DURATION: Final = Metric("kpr_kube_proxy_scrape_duration_seconds", GAUGE,
                                           ("node",))
KUBE_PROXY_SCRAPE_ERRORS: Final = Metric("kpr_kube_proxy_scrape_errors_total", COUNTER,
                                         ("node", "kind"))
KUBE_PROXY_SERIES_DROPPED: Final = Metric("kpr_kube_proxy_series_dropped_total", COUNTER,
                                          ("node",))
PROBES_UP: Final = Metric("kpr_probes_up", GAUGE, ("probe",))
PROBES_SCRAPE_DURATION: Final = Metric("kpr_probes_scrape_duration_seconds", GAUGE, ("probe",))
PROBES_SCRAPE_ERRORS: Final = Metric("kpr_probes_scrape_errors_total", COUNTER,
                                     ("probe", "kind"))
PROBES_SERIES_DROPPED: Final = Metric("kpr_probes_series_dropped_total", COUNTER, ("probe",))

# --- 3. state and judgement -----------------------------------------------------------------
DATAPATH_INFO: Final = Metric("kpr_node_datapath_info", GAUGE, (*_NODE, "source"))
DATAPATH_DISAGREEMENT: Final = Metric("kpr_node_datapath_disagreement", GAUGE, ("node", "kind"))
CONFIG_INVALID_SELECTORS: Final = Metric("kpr_node_config_invalid_selectors", GAUGE)
SWITCH_TIMESTAMP: Final = Metric("kpr_node_datapath_switch_timestamp_seconds", GAUGE, ("node",))
MIGRATION_PHASE: Final = Metric("kpr_migration_phase", GAUGE, ("phase",))
MIGRATION_STEP: Final = Metric("kpr_migration_step", GAUGE, ("step",))
MIGRATION_BATCH: Final = Metric("kpr_migration_batch", GAUGE)
MIGRATION_NODES: Final = Metric("kpr_migration_nodes", GAUGE, ("datapath",))
MIGRATION_GATE: Final = Metric("kpr_migration_gate", GAUGE, ("gate", "result"))
BASELINE_CONNECT: Final = Metric("kpr_baseline_connect_duration_seconds", GAUGE,
                                 ("namespace", "service", "q"))
BASELINE_DROP_RATIO: Final = Metric("kpr_baseline_drop_ratio", GAUGE, ("namespace", "service"))
BASELINE_CAPTURED: Final = Metric("kpr_baseline_capture_timestamp_seconds", GAUGE)
VERDICT: Final = Metric("kpr_verdict", GAUGE, ("namespace", "service", "sli", "comparison"))
VERDICT_EFFECT: Final = Metric("kpr_verdict_effect_size", GAUGE,
                               ("namespace", "service", "sli", "comparison"))
JUDGE_LAST_EVALUATION: Final = Metric("kpr_judge_last_evaluation_timestamp_seconds", GAUGE)
CONFIG_OWNER: Final = Metric("kpr_config_owner_info", GAUGE, ("object", "owner", "owner_name"))
PROBE_CHECKS: Final = Metric("kpr_probe_checks_total", COUNTER,
                             ("check", *_NODE, "result", "probe"))
PROBE_DURATION: Final = Metric("kpr_probe_duration_seconds", HISTOGRAM,
                               ("check", *_NODE, "probe"), CONNECT_BUCKETS)
PROBE_ROUNDS: Final = Metric("kpr_probe_rounds_total", COUNTER, ("probe_node", "probe"))
PROBE_LAST_ROUND: Final = Metric("kpr_probe_last_round_timestamp_seconds", GAUGE,
                                 ("probe_node", "probe"))
PROBE_COVERAGE_ROUNDS: Final = Metric("kpr_probe_coverage_rounds", GAUGE, ("probe_node", "probe"))
PROBE_TARGET_ERRORS: Final = Metric("kpr_probe_target_errors_total", COUNTER,
                                    ("probe_node", "probe"))
PROBE_NOT_APPLICABLE: Final = Metric("kpr_probe_not_applicable", GAUGE,
                                     ("check", "node", "reason", "probe"))
PROBE_TARGET_DATAPATH: Final = Metric("kpr_probe_target_datapath_info", GAUGE, (*_NODE, "probe"))
#: ``kpr_probe_programming_latency_seconds``: eBPF in milliseconds, kube-proxy within its
#: sync period or up to a full resync; the chase's poll period bounds the resolution.
PROGRAMMING_BUCKETS: Final[tuple[float, ...]] = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
PROBE_LOAD_CONNECTIONS: Final = Metric("kpr_probe_load_connections_total", COUNTER,
                                       (*_NODE, "result", "probe"))
PROBE_LOAD_CONNECT_DURATION: Final = Metric("kpr_probe_load_connect_duration_seconds",
                                            HISTOGRAM, (*_NODE, "probe"), CONNECT_BUCKETS)
PROBE_LOAD_STREAMS: Final = Metric("kpr_probe_load_streams_total", COUNTER,
                                   (*_NODE, "result", "probe"))
PROBE_LOAD_BYTES: Final = Metric("kpr_probe_load_bytes_total", COUNTER, (*_NODE, "probe"))
PROBE_LOAD_SECONDS: Final = Metric("kpr_probe_load_seconds_total", COUNTER, (*_NODE, "probe"))
PROBE_PROGRAMMING_LATENCY: Final = Metric("kpr_probe_programming_latency_seconds", HISTOGRAM,
                                          (*_NODE, "probe"), PROGRAMMING_BUCKETS)
PROBE_PROGRAMMING_MISSED: Final = Metric("kpr_probe_programming_missed_total", COUNTER,
                                         (*_NODE, "probe"))

# --- 4. self-observability ----------------------------------------------------------------
HUBBLE_UP: Final = Metric("kpr_hubble_up", GAUGE)
HUBBLE_FLOWS: Final = Metric("kpr_hubble_flows_received_total", COUNTER)
HUBBLE_LOST: Final = Metric("kpr_hubble_lost_events_total", COUNTER, ("source",))
HUBBLE_RECONNECTS: Final = Metric("kpr_hubble_reconnects_total", COUNTER)
HUBBLE_DIAL_FAILURES: Final = Metric("kpr_hubble_dial_failures_total", COUNTER)
HUBBLE_NODES: Final = Metric("kpr_hubble_nodes", GAUGE, ("state",))
NODE_HUBBLE_FLOWS: Final = Metric("kpr_node_hubble_flows_total", COUNTER, ("node",))
NODE_HUBBLE_LOST: Final = Metric("kpr_node_hubble_lost_events_total", COUNTER, ("node",))
NODE_HUBBLE_AGENT_LOST: Final = Metric("kpr_node_hubble_agent_lost_events_total", COUNTER,
                                       ("node", "source"))
CONNTABLE_ENTRIES: Final = Metric("kpr_connection_table_entries", GAUGE, ("table",))
CONNTABLE_EVICTIONS: Final = Metric("kpr_connection_table_evictions_total", COUNTER,
                                    ("table", "reason"))
UNATTRIBUTED: Final = Metric("kpr_unattributed_connections_total", COUNTER,
                             ("datapath", "result"))
LABEL_OVERFLOW: Final = Metric("kpr_label_overflow_total", COUNTER, ("metric",))
HANDLER_ERRORS: Final = Metric("kpr_handler_errors_total", COUNTER, ("handler",))
BACKEND_MAP_ENTRIES: Final = Metric("kpr_backend_map_entries", GAUGE, ("map",))
BACKEND_MAP_OVERFLOW: Final = Metric("kpr_backend_map_overflow_total", COUNTER)
WEBHOOK_REQUESTS: Final = Metric("kpr_webhook_requests_total", COUNTER, ("outcome",))
ROLLBACKS: Final = Metric("kpr_rollbacks_total", COUNTER, ("result", "mode"))
ROLLBACK_IN_PROGRESS: Final = Metric("kpr_rollback_in_progress", GAUGE)
ROLLBACK_PERSISTED: Final = Metric("kpr_rollback_persisted", GAUGE, (
    "owner", "release", "namespace", "chart", "chart_version", "evidence"))
ROLLBACK_UNDONE: Final = Metric("kpr_rollback_undone", GAUGE, ("node",))
JUDGE_SOURCE_ERRORS: Final = Metric("kpr_judge_source_errors_total", COUNTER, ("kind",))
BUILD_INFO: Final = Metric("kpr_exporter_build_info", GAUGE,
                           ("version", "revision", "python_version"))

#: Every exported metric by name; docs/metrics.md lists the same.
METRICS: Final = MappingProxyType({m.name: m for m in (
    SERVICE_CONNECT_DURATION, SERVICE_CONNECT_ATTEMPTS, SERVICE_REQUEST_DURATION,
    SERVICE_REQUESTS, SERVICE_FLOWS, SERVICE_DROPS,
    NODE_DROPS, NODE_FORWARDS, AGENT_UP, AGENT_SCRAPE_DURATION, AGENT_SCRAPE_ERRORS,
    AGENT_SERIES_DROPPED, AGENT_DUPLICATE_SAMPLES, NODE_SERVICE_DATAPATH_CPU, NODE_PROCESS_CPU,
    NODE_PROGRAMMING_DURATION, NODE_RULES_SYNC_DURATION, NODE_RULES_LAST_SYNC, KUBE_PROXY_UP,
    KUBE_PROXY_SCRAPE_DURATION, KUBE_PROXY_SCRAPE_ERRORS, KUBE_PROXY_SERIES_DROPPED, PROBES_UP,
    PROBES_SCRAPE_DURATION, PROBES_SCRAPE_ERRORS, PROBES_SERIES_DROPPED,
    DATAPATH_INFO, DATAPATH_DISAGREEMENT, CONFIG_INVALID_SELECTORS, SWITCH_TIMESTAMP,
    MIGRATION_PHASE, MIGRATION_STEP, MIGRATION_BATCH, MIGRATION_NODES, MIGRATION_GATE,
    BASELINE_CONNECT, BASELINE_DROP_RATIO, BASELINE_CAPTURED, VERDICT,
    VERDICT_EFFECT, JUDGE_LAST_EVALUATION, CONFIG_OWNER, PROBE_CHECKS, PROBE_DURATION,
    PROBE_ROUNDS, PROBE_LAST_ROUND, PROBE_COVERAGE_ROUNDS, PROBE_TARGET_ERRORS,
    PROBE_NOT_APPLICABLE, PROBE_TARGET_DATAPATH, PROBE_LOAD_CONNECTIONS,
    PROBE_LOAD_CONNECT_DURATION, PROBE_LOAD_STREAMS, PROBE_LOAD_BYTES, PROBE_LOAD_SECONDS,
    PROBE_PROGRAMMING_LATENCY, PROBE_PROGRAMMING_MISSED,
    HUBBLE_UP, HUBBLE_FLOWS, HUBBLE_LOST, HUBBLE_RECONNECTS, HUBBLE_DIAL_FAILURES, HUBBLE_NODES,
    NODE_HUBBLE_FLOWS, NODE_HUBBLE_LOST, NODE_HUBBLE_AGENT_LOST,
    CONNTABLE_ENTRIES, CONNTABLE_EVICTIONS, UNATTRIBUTED, LABEL_OVERFLOW, HANDLER_ERRORS,
    BACKEND_MAP_ENTRIES, BACKEND_MAP_OVERFLOW, WEBHOOK_REQUESTS, ROLLBACKS, ROLLBACK_IN_PROGRESS,
    ROLLBACK_PERSISTED, ROLLBACK_UNDONE, JUDGE_SOURCE_ERRORS, BUILD_INFO,
)})


# --- the rollback alert label -------------------------------------------------------------
#: The label (and its value) that makes an alert ask the webhook for a rollback: written by
#: the generated rules, matched by the webhook's decision and the demo's Alertmanager route.
ROLLBACK_ALERT_LABEL: Final = "kpr_action"
ROLLBACK_ALERT_VALUE: Final = "rollback"
ROLLBACK_ALERT_LABELS: Final = MappingProxyType({ROLLBACK_ALERT_LABEL: ROLLBACK_ALERT_VALUE})
#: The same as an Alertmanager / PromQL matcher.
ROLLBACK_ALERT_MATCHER: Final = f'{ROLLBACK_ALERT_LABEL}="{ROLLBACK_ALERT_VALUE}"'


# --- drop reasons -----------------------------------------------------------------------
# Hubble's ``flow.DropReason`` code -> (enum name, as ``kpr_service_drops_total{reason}``
# carries it; the agent's text, as ``cilium_drop_count_total{reason}`` and so
# ``kpr_node_drops_total{reason}`` carry it, "" where Cilium has none: pkg/monitor/api/drop.go).
_DROP_REASONS: Final = {
    0: ("DROP_REASON_UNKNOWN", ""), 130: ("INVALID_SOURCE_MAC", ""),
    131: ("INVALID_DESTINATION_MAC", ""), 132: ("INVALID_SOURCE_IP", "Invalid source ip"),
    133: ("POLICY_DENIED", "Policy denied"), 134: ("INVALID_PACKET_DROPPED", "Invalid packet"),
    135: ("CT_TRUNCATED_OR_INVALID_HEADER", ""), 136: ("CT_MISSING_TCP_ACK_FLAG", ""),
    137: ("CT_UNKNOWN_L4_PROTOCOL", ""), 138: ("CT_CANNOT_CREATE_ENTRY_FROM_PACKET", ""),
    139: ("UNSUPPORTED_L3_PROTOCOL", "Unsupported L3 protocol"),
    140: ("MISSED_TAIL_CALL", "Missed tail call"),
    141: ("ERROR_WRITING_TO_PACKET", "Error writing to packet"),
    142: ("UNKNOWN_L4_PROTOCOL", "Unknown L4 protocol"),
    143: ("UNKNOWN_ICMPV4_CODE", "Unknown ICMPv4 code"),
    144: ("UNKNOWN_ICMPV4_TYPE", "Unknown ICMPv4 type"),
    145: ("UNKNOWN_ICMPV6_CODE", "Unknown ICMPv6 code"),
    146: ("UNKNOWN_ICMPV6_TYPE", "Unknown ICMPv6 type"),
    147: ("ERROR_RETRIEVING_TUNNEL_KEY", "Error retrieving tunnel key"),
    148: ("ERROR_RETRIEVING_TUNNEL_OPTIONS", ""), 149: ("INVALID_GENEVE_OPTION", ""),
    150: ("UNKNOWN_L3_TARGET_ADDRESS", "Unknown L3 target address"),
    151: ("STALE_OR_UNROUTABLE_IP", "Stale or unroutable IP"),
    152: ("NO_MATCHING_LOCAL_CONTAINER_FOUND", ""),
    153: ("ERROR_WHILE_CORRECTING_L3_CHECKSUM", "Error while correcting L3 checksum"),
    154: ("ERROR_WHILE_CORRECTING_L4_CHECKSUM", "Error while correcting L4 checksum"),
    155: ("CT_MAP_INSERTION_FAILED", "CT: Map insertion failed"),
    156: ("INVALID_IPV6_EXTENSION_HEADER", "Invalid IPv6 extension header"),
    157: ("IP_FRAGMENTATION_NOT_SUPPORTED", "IP fragmentation not supported"),
    158: ("SERVICE_BACKEND_NOT_FOUND", "Service backend not found"),
    160: ("NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT",
          "No tunnel/encapsulation endpoint (datapath BUG!)"),
    161: ("FAILED_TO_INSERT_INTO_PROXYMAP", ""),
    162: ("REACHED_EDT_RATE_LIMITING_DROP_HORIZON", "Reached EDT rate-limiting drop horizon"),
    163: ("UNKNOWN_CONNECTION_TRACKING_STATE", "Unknown connection tracking state"),
    164: ("LOCAL_HOST_IS_UNREACHABLE", "Local host is unreachable"),
    165: ("NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION", ""),
    166: ("UNSUPPORTED_L2_PROTOCOL", "Unsupported L2 protocol"),
    167: ("NO_MAPPING_FOR_NAT_MASQUERADE", "No mapping for NAT masquerade"),
    168: ("UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE", "Unsupported protocol for NAT masquerade"),
    169: ("FIB_LOOKUP_FAILED", "FIB lookup failed"),
    170: ("ENCAPSULATION_TRAFFIC_IS_PROHIBITED", "Encapsulation traffic is prohibited"),
    171: ("INVALID_IDENTITY", "Invalid identity"), 172: ("UNKNOWN_SENDER", "Unknown sender"),
    173: ("NAT_NOT_NEEDED", "NAT not needed"), 174: ("IS_A_CLUSTERIP", "Is a ClusterIP"),
    175: ("FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND", "First logical datagram fragment not found"),
    176: ("FORBIDDEN_ICMPV6_MESSAGE", "Forbidden ICMPv6 message"),
    177: ("DENIED_BY_LB_SRC_RANGE_CHECK", "Denied by LB src range check"),
    178: ("SOCKET_LOOKUP_FAILED", "Socket lookup failed"),
    179: ("SOCKET_ASSIGN_FAILED", "Socket assign failed"),
    180: ("PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL",
          "Proxy redirection not supported for protocol"),
    181: ("POLICY_DENY", "Policy denied by denylist"), 182: ("VLAN_FILTERED", ""),
    183: ("INVALID_VNI", ""), 184: ("INVALID_TC_BUFFER", ""), 185: ("NO_SID", ""),
    186: ("MISSING_SRV6_STATE", ""), 187: ("NAT46", ""), 188: ("NAT64", ""),
    189: ("AUTH_REQUIRED", "Authentication required"), 190: ("CT_NO_MAP_FOUND", ""),
    191: ("SNAT_NO_MAP_FOUND", ""), 192: ("INVALID_CLUSTER_ID", ""),
    193: ("UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP",
          "Unsupported packet protocol for DSR encapsulation"),
    194: ("NO_EGRESS_GATEWAY", "No egress gateway found"),
    195: ("UNENCRYPTED_TRAFFIC", "Traffic is unencrypted"), 196: ("TTL_EXCEEDED", "TTL exceeded"),
    197: ("NO_NODE_ID", "No node ID found"), 198: ("DROP_RATE_LIMITED", "Rate limited"),
    199: ("IGMP_HANDLED", ""), 200: ("IGMP_SUBSCRIBED", ""), 201: ("MULTICAST_HANDLED", ""),
    202: ("DROP_HOST_NOT_READY", "Host datapath not ready"),
    203: ("DROP_EP_NOT_READY", "Endpoint policy program not available"),
    204: ("DROP_NO_EGRESS_IP", "No Egress IP configured"),
    205: ("DROP_PUNT_PROXY", "Punt to proxy"), 207: ("DROP_FRAG_NOT_FOUND_WORLD", ""),
}

#: Hubble ``DropReason`` code -> enum name.
DROP_REASON_NAMES: Final = MappingProxyType({c: n for c, (n, _) in _DROP_REASONS.items()})
#: Enum name -> Hubble ``DropReason`` code.
DROP_REASON_CODES: Final = MappingProxyType({n: c for c, (n, _) in _DROP_REASONS.items()})
#: Hubble ``DropReason`` code -> the agent's text for the same reason (where it has one).
DROP_REASON_TEXT: Final = MappingProxyType({c: t for c, (_, t) in _DROP_REASONS.items() if t})

_KPR_SENSITIVE_CODES: Final = (151, 155, 158, 167, 169)
#: The drop reasons whose odds KPR changes (compare, never ignore), as Hubble names them ...
KPR_SENSITIVE_DROP_REASONS: Final = frozenset(DROP_REASON_NAMES[c] for c in _KPR_SENSITIVE_CODES)
#: ... and as the agent words them.
KPR_SENSITIVE_AGENT_TEXTS: Final = frozenset(DROP_REASON_TEXT[c] for c in _KPR_SENSITIVE_CODES)


def drop_reason_name(code: int) -> str:
    """``kpr_service_drops_total{reason}`` for a code: the enum name, else the number."""
    name = DROP_REASON_NAMES.get(code)
    return name if name is not None else str(code)


def drop_reason_text(code: int) -> str:
    """The agent's ``reason`` for a code: its text, else the number."""
    return DROP_REASON_TEXT.get(code, str(code))
