"""The three shipped Grafana dashboards: migration overview, service drill-down, datapath health.

They read the exporter's metrics directly (with ``$__rate_interval``) rather than the recording
rules, so they work whatever rule profile is loaded and at any zoom level; ``dashboard_files``
returns ``{file name: JSON text}`` for ``python -m exporter.rulegen`` to write into dashboards/.
"""

from __future__ import annotations

import json
from typing import Any, Final

from exporter.rulegen import names as n
from exporter.rulegen.dashboard_migration import migration_annotations
from exporter.rulegen.dashboard_claims import claims_row
from exporter.rulegen.dashboard_probe import verification_row
from exporter.rulegen.grafana import (
    NODE, SCOPE, SERVICE, Panel, Row, Target, dashboard, prometheus_annotation, quantile,
    query_variable, rate, scope_variables, sel, summed_rate, value_map,
)
from exporter.rulegen.measurement import node_lost_share

TAGS: Final = ("kpr-exporter", "cilium", "kube-proxy-replacement")
UID_OVERVIEW: Final = "kpr-migration-overview"
UID_SERVICE: Final = "kpr-service-drilldown"
UID_HEALTH: Final = "kpr-datapath-health"
COHORTS: Final = 'datapath=~"kube-proxy|ebpf"'
SENSITIVE: Final = f'reason=~"{n.regex_alternation(n.KPR_SENSITIVE_ENUM_NAMES)}"'
NODE_SENSITIVE: Final = f'reason=~"{n.regex_alternation(n.KPR_SENSITIVE_AGENT_TEXTS)}"'
SVC_DP: Final = ("namespace", "service", "datapath")
NODE_DP: Final = ("node", "datapath")

VERDICT_MAP: Final = value_map([("-1", "better", "green"), ("0", "same", "blue"),
                                ("1", "worse", "red"), ("NaN", "inconclusive", "orange")])
DATAPATH_MAP: Final = value_map([("0", "unknown", "orange"), ("1", "kube-proxy", "blue"),
                                 ("2", "ebpf", "purple")])
UP_MAP: Final = value_map([("0", "down", "red"), ("1", "up", "green")])


def _namespace_service_variables(*, multi_service: bool = True) -> list[dict[str, Any]]:
    flows = n.FLOWS
    return [
        query_variable("namespace", "Namespace",
                       f'label_values({flows}{{job=~"$job",instance=~"$instance"}}, namespace)'),
        query_variable("service", "Service",
                       f'label_values({flows}{{job=~"$job",instance=~"$instance",'
                       f'namespace=~"$namespace"}}, service)',
                       multi=multi_service, include_all=multi_service),
    ]


def _node_variable() -> dict[str, Any]:
    return query_variable("node", "Node", f'label_values({n.DATAPATH_INFO}{{job=~"$job",'
                                          f'instance=~"$instance"}}, node)')


def _ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator, with a missing numerator read as 0 where the denominator exists."""
    return f"(\n{numerator}\nor\n0 * {denominator}\n)\n/\n{denominator}"


def _baseline_quantile(q: str) -> str:
    return f"max by (namespace, service) ({sel(n.BASELINE_CONNECT, SERVICE, f'q={json.dumps(q)}')})"


def _datapath_code(scope: tuple[str, ...]) -> str:
    """0 unknown, 1 kube-proxy, 2 ebpf per node (for a state timeline)."""
    def one(dp: str, factor: int) -> str:
        return f'max by (node) ({sel(n.DATAPATH_INFO, scope, f"datapath={json.dumps(dp)}")} == 1) * {factor}'
    return "\nor\n".join((one("ebpf", 2), one("kube-proxy", 1), one("unknown", 0)))


def _annotations() -> list[dict[str, Any]]:
    return [
        prometheus_annotation(
            "Datapath switches",
            f"changes({sel(n.SWITCH_TIMESTAMP, NODE)}[$__rate_interval]) > 0",
            title="Datapath switch", text="{{node}} switched datapath", tags="node",
            color="purple"),
        prometheus_annotation(
            "Rollbacks",
            f"{summed_rate(n.ROLLBACKS, ('result', 'mode'), SCOPE, fn='increase')} > 0",
            title="Rollback", text="{{result}} ({{mode}})", tags="result,mode", color="red"),
    ]


def _links() -> list[dict[str, Any]]:
    return [{"title": "kpr-exporter", "type": "dashboards", "tags": ["kpr-exporter"],
             "asDropdown": True, "includeVars": True, "keepTime": True}]


def migration_overview() -> dict[str, Any]:
    p99 = quantile(0.99, n.CONNECT_DURATION, SVC_DP, SERVICE, COHORTS)
    p50 = quantile(0.5, n.CONNECT_DURATION, SVC_DP, SERVICE, COHORTS)
    ebpf = 'datapath="ebpf"'
    rows = [
        Row("Migration", [
            Panel("stat", "Migration phase",
                  "The cluster's phase: before (no eBPF node), canary (mixed), after (all eBPF), "
                  "rolled-back.", "none",
                  [Target(f"max by (phase) ({sel(n.MIGRATION_PHASE)}) == 1", "{{phase}}", True)],
                  width=6, height=5, options={"reduceOptions": {"calcs": ["lastNotNull"],
                                                                "fields": "", "values": False},
                                              "textMode": "name", "colorMode": "background",
                                              "graphMode": "none", "justifyMode": "center",
                                              "orientation": "auto"}),
            Panel("stat", "Nodes per datapath",
                  "How many nodes translate Services with kube-proxy, eBPF, or an undetermined "
                  "datapath.", "short",
                  [Target(f"count by (datapath) (max by (node, datapath) "
                          f"({sel(n.DATAPATH_INFO, NODE)}) == 1)", "{{datapath}}", True)],
                  width=6, height=5),
            Panel("table", "Node datapath map",
                  "Each node's datapath and the signal that decided it (feature gauge, "
                  "CiliumNodeConfig, cilium-config, kube-proxy pod).", "none",
                  [Target(f"max by (node, datapath, source) ({sel(n.DATAPATH_INFO, NODE)}) == 1",
                          "", True)],
                  width=12, height=5,
                  transformations=[{"id": "organize", "options": {
                      "excludeByName": {"Time": True, "Value": True},
                      "indexByName": {"node": 0, "datapath": 1, "source": 2}}}]),
            Panel("state-timeline", "Node datapath over time",
                  "Datapath per node over the time range; switches and rollbacks are also "
                  "annotated on every graph.", "none",
                  [Target(_datapath_code(NODE), "{{node}}")], width=24, height=6,
                  mappings=DATAPATH_MAP),
            Panel("table", "Verdicts",
                  "The exporter's own judgement per service, SLI and comparison: better, same, "
                  "worse, or inconclusive (too little data).", "none",
                  [Target(f"max by (namespace, service, sli, comparison) "
                          f"({sel(n.VERDICT, SERVICE)})", "", True)],
                  width=24, height=7, mappings=VERDICT_MAP,
                  custom={"cellOptions": {"type": "color-background"}},
                  transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True},
                                                                  "renameByName": {"Value": "verdict"}}}]),
        ]),
        Row("Canary vs control: eBPF and kube-proxy nodes at the same time", [
            Panel("timeseries", "Handshake p99 per service and datapath",
                  "99th percentile of the TCP handshake time (client SYN to SYN-ACK at the "
                  "client's node), eBPF and kube-proxy clients side by side.", "s",
                  [Target(p99, "{{namespace}}/{{service}} {{datapath}}")]),
            Panel("timeseries", "Handshake p50 per service and datapath",
                  "Median TCP handshake time; if it moves with p99 every connection changed, "
                  "if only p99 moves look at retransmissions and drops.", "s",
                  [Target(p50, "{{namespace}}/{{service}} {{datapath}}")]),
            Panel("timeseries", "Drop ratio per service and datapath",
                  "Dropped flows / flows towards the service, all reasons.", "percentunit",
                  [Target(_ratio(summed_rate(n.SERVICE_DROPS, SVC_DP, SERVICE, COHORTS),
                                 summed_rate(n.FLOWS, SVC_DP, SERVICE, COHORTS)),
                          "{{namespace}}/{{service}} {{datapath}}")]),
            Panel("timeseries", "KPR-sensitive drop ratio per service and datapath",
                  "Flows dropped for Service backend not found, stale or unroutable IP, CT map "
                  "insertion, NAT masquerade mapping or FIB lookup, per flow.", "percentunit",
                  [Target(_ratio(summed_rate(n.SERVICE_DROPS, SVC_DP, SERVICE, COHORTS, SENSITIVE),
                                 summed_rate(n.FLOWS, SVC_DP, SERVICE, COHORTS)),
                          "{{namespace}}/{{service}} {{datapath}}")]),
        ]),
        Row("After vs baseline: eBPF now against the frozen pre-switch values", [
            Panel("timeseries", "Handshake p99 on eBPF vs baseline",
                  "eBPF clients' p99 handshake time now, and the p99 frozen before the switch.",
                  "s",
                  [Target(quantile(0.99, n.CONNECT_DURATION, ("namespace", "service"), SERVICE, ebpf),
                          "{{namespace}}/{{service}} ebpf"),
                   Target(_baseline_quantile("0.99"),
                          "{{namespace}}/{{service}} baseline")]),
            Panel("timeseries", "Handshake p50 on eBPF vs baseline",
                  "eBPF clients' median handshake time now, and the median frozen before the "
                  "switch.", "s",
                  [Target(quantile(0.5, n.CONNECT_DURATION, ("namespace", "service"), SERVICE, ebpf),
                          "{{namespace}}/{{service}} ebpf"),
                   Target(_baseline_quantile("0.5"),
                          "{{namespace}}/{{service}} baseline")]),
            Panel("timeseries", "Drop ratio on eBPF vs baseline",
                  "eBPF clients' drop ratio now, and the drop ratio frozen before the switch.",
                  "percentunit",
                  [Target(_ratio(summed_rate(n.SERVICE_DROPS, ("namespace", "service"), SERVICE, ebpf),
                                 summed_rate(n.FLOWS, ("namespace", "service"), SERVICE, ebpf)),
                          "{{namespace}}/{{service}} ebpf"),
                   Target(f"max by (namespace, service) ({sel(n.BASELINE_DROP_RATIO, SERVICE)})",
                          "{{namespace}}/{{service}} baseline")], width=24),
        ]),
        verification_row(),
        claims_row(),
    ]
    return dashboard(
        uid=UID_OVERVIEW, title="kpr-exporter / Migration overview",
        description="kube-proxy to Cilium KPR migration: phase, node datapaths, canary vs "
                    "control and after vs baseline per service, verification, and the claims "
                    "(throughput, latency, CPU, programming) against what eBPF nodes measure.",
        tags=TAGS, variables=[*scope_variables(n.HUBBLE_UP), *_namespace_service_variables(),
                              _node_variable()],
        rows=rows, annotations=[*_annotations(), *migration_annotations()], links=_links())


def service_drilldown() -> dict[str, Any]:
    by_dp = ("datapath",)
    rows = [
        Row("Handshakes", [
            Panel("timeseries", "Handshake time quantiles by datapath",
                  "p50, p90 and p99 of the TCP handshake time of the selected service.", "s",
                  [Target(quantile(q, n.CONNECT_DURATION, by_dp, SERVICE), f"p{int(q * 100)} {{{{datapath}}}}")
                   for q in (0.5, 0.9, 0.99)]),
            Panel("heatmap", "Handshake time distribution",
                  "Handshakes per histogram bucket over time, all datapaths.", "s",
                  [Target(summed_rate(n.CONNECT_DURATION + "_bucket", ("le",), SERVICE), "{{le}}")]),
            Panel("timeseries", "Handshakes per second by datapath and result",
                  "Established, refused (RST answering the SYN) and timed-out handshakes.", "cps",
                  [Target(summed_rate(n.CONNECT_ATTEMPTS, ("datapath", "result"), SERVICE),
                          "{{datapath}} {{result}}")]),
            Panel("timeseries", "Connect failure ratio by datapath",
                  "Refused and timed-out handshakes / all handshakes.", "percentunit",
                  [Target(_ratio(summed_rate(n.CONNECT_ATTEMPTS, by_dp, SERVICE,
                                             f'result!="{n.RESULT_ESTABLISHED}"'),
                                 summed_rate(n.CONNECT_ATTEMPTS, by_dp, SERVICE)), "{{datapath}}")]),
        ]),
        Row("Drops", [
            Panel("timeseries", "Drops per second by datapath and reason",
                  "Dropped flows attributed to the service, by Hubble drop reason.", "cps",
                  [Target(summed_rate(n.SERVICE_DROPS, ("datapath", "reason"), SERVICE),
                          "{{datapath}} {{reason}}")]),
            Panel("timeseries", "Drop ratio by datapath",
                  "Dropped flows / flows towards the service; KPR-sensitive reasons separately.",
                  "percentunit",
                  [Target(_ratio(summed_rate(n.SERVICE_DROPS, by_dp, SERVICE),
                                 summed_rate(n.FLOWS, by_dp, SERVICE)), "{{datapath}} all"),
                   Target(_ratio(summed_rate(n.SERVICE_DROPS, by_dp, SERVICE, SENSITIVE),
                                 summed_rate(n.FLOWS, by_dp, SERVICE)), "{{datapath}} KPR-sensitive")]),
            Panel("timeseries", "Flows per second by datapath and verdict",
                  "Flows towards the service (the denominator of the drop ratio).", "cps",
                  [Target(summed_rate(n.FLOWS, ("datapath", "verdict"), SERVICE),
                          "{{datapath}} {{verdict}}")], width=24),
        ]),
        Row("L7 (where L7 visibility is on)", [
            Panel("timeseries", "HTTP p99 by datapath",
                  "99th percentile of the HTTP response latency from Hubble L7 records.", "s",
                  [Target(quantile(0.99, n.REQUEST_DURATION, ("datapath", "protocol"), SERVICE),
                          "{{datapath}} {{protocol}}")], width=8),
            Panel("timeseries", "HTTP 5xx ratio by datapath",
                  "5xx responses / all responses.", "percentunit",
                  [Target(_ratio(summed_rate(n.REQUESTS, by_dp, SERVICE, 'code_class="5xx"'),
                                 summed_rate(n.REQUESTS, by_dp, SERVICE)), "{{datapath}}")], width=8),
            Panel("timeseries", "HTTP responses per second by status class",
                  "L7 responses by datapath and status class.", "reqps",
                  [Target(summed_rate(n.REQUESTS, ("datapath", "code_class"), SERVICE),
                          "{{datapath}} {{code_class}}")], width=8),
        ]),
        Row("Judgement and baseline", [
            Panel("table", "Verdicts",
                  "The exporter's verdict per SLI and comparison for the selected service.",
                  "none",
                  [Target(f"max by (sli, comparison) ({sel(n.VERDICT, SERVICE)})", "", True)],
                  mappings=VERDICT_MAP, custom={"cellOptions": {"type": "color-background"}},
                  transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True},
                                                                  "renameByName": {"Value": "verdict"}}}]),
            Panel("stat", "Baseline handshake quantiles",
                  "The handshake quantiles frozen before the switch.", "s",
                  [Target(f"max by (q) ({sel(n.BASELINE_CONNECT, SERVICE)})", "q{{q}}",
                          True)], width=6),
            Panel("stat", "Baseline drop ratio",
                  "The drop ratio frozen before the switch.", "percentunit",
                  [Target(f"max ({sel(n.BASELINE_DROP_RATIO, SERVICE)})", "baseline", True)], width=6),
        ]),
    ]
    return dashboard(
        uid=UID_SERVICE, title="kpr-exporter / Service drill-down",
        description="One service's handshakes, failures, drops and L7 by datapath, with its "
                    "verdicts and frozen baseline.",
        tags=TAGS, variables=[*scope_variables(n.HUBBLE_UP),
                              *_namespace_service_variables(multi_service=False)],
        rows=rows, annotations=_annotations()[1:], links=_links())


def datapath_health() -> dict[str, Any]:
    forwards = summed_rate(n.NODE_FORWARDS, NODE_DP, NODE)
    rows = [
        Row("Node drops (Cilium agent counters)", [
            Panel("timeseries", "Drops per second by node and reason",
                  "The agents' drop counters (Cilium's reason wording).", "pps",
                  [Target(summed_rate(n.NODE_DROPS, ("node", "datapath", "reason"), NODE),
                          "{{node}} ({{datapath}}) {{reason}}")]),
            Panel("timeseries", "Drops per second by node and direction",
                  "INGRESS, EGRESS, SERVICE or UNKNOWN, as the agent reports them.", "pps",
                  [Target(summed_rate(n.NODE_DROPS, ("node", "direction"), NODE),
                          "{{node}} {{direction}}")]),
            Panel("timeseries", "KPR-sensitive drop ratio by node",
                  "Packets dropped for the KPR-sensitive reasons / forwarded + dropped packets.",
                  "percentunit",
                  [Target(_ratio(summed_rate(n.NODE_DROPS, NODE_DP, NODE, NODE_SENSITIVE),
                                 f"(\n{forwards}\n+\n({summed_rate(n.NODE_DROPS, NODE_DP, NODE)}"
                                 f" or 0 * {forwards})\n)"),
                          "{{node}} ({{datapath}})")]),
            Panel("timeseries", "Forwarded packets per second by node",
                  "The agents' forward counters.", "pps",
                  [Target(summed_rate(n.NODE_FORWARDS, ("node", "datapath"), NODE),
                          "{{node}} ({{datapath}})")]),
        ]),
        Row("Agents and datapath signals", [
            Panel("state-timeline", "Agent scrape",
                  "Whether the exporter can scrape each node's Cilium agent.", "none",
                  [Target(f"max by (node) ({sel(n.AGENT_UP, NODE)})", "{{node}}")], width=8,
                  mappings=UP_MAP),
            Panel("timeseries", "Agent scrape duration",
                  "Duration of the last scrape of each agent.", "s",
                  [Target(f"max by (node) ({sel(n.AGENT_SCRAPE_DURATION, NODE)})",
                          "{{node}}")], width=8),
            Panel("timeseries", "Agent scrape errors per second",
                  "Failed agent scrapes by node and kind (timeout, connect, http, oversize, parse).",
                  "cps",
                  [Target(summed_rate(n.AGENT_SCRAPE_ERRORS, ("node", "kind"), NODE),
                          "{{node}} {{kind}}")], width=8),
            Panel("table", "Datapath disagreements",
                  "Nodes whose datapath signals contradict each other, or whose "
                  "kube-proxy-replacement value is not honoured (e.g. strict); 1 while it "
                  "lasts, 0 when the signals agree.", "none",
                  [Target(f"max by (node, kind) ({sel(n.DATAPATH_DISAGREEMENT, NODE)})", "", True)],
                  width=24, height=6,
                  transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}]),
        ]),
        Row("Hubble stream", [
            Panel("state-timeline", "Hubble stream",
                  "Whether each exporter's GetFlows stream is connected.", "none",
                  [Target(f"max by (instance) ({sel(n.HUBBLE_UP)})", "{{instance}}")], width=8,
                  mappings=UP_MAP),
            Panel("timeseries", "Flows received per second",
                  "Flow messages received from Hubble, per exporter.", "cps",
                  [Target(summed_rate(n.HUBBLE_FLOWS, ("instance",)), "{{instance}}")], width=8),
            Panel("timeseries", "Lost events per second by source",
                  "Events Hubble reported lost: the SLIs undercount while this is above zero.",
                  "cps",
                  [Target(summed_rate(n.HUBBLE_LOST, ("source",)), "{{source}}")], width=8),
            Panel("timeseries", "Lost share by node",
                  "Per node, the events Hubble lost / (lost + flows received), the larger of "
                  "the stream's and the agent's count. Above judge.max_lost_share (1 %) the "
                  "judge leaves the node's samples out of that window.", "percentunit",
                  [Target(node_lost_share(lambda m: rate(m, NODE)), "{{node}}")], width=24),
            Panel("timeseries", "Stream reconnects",
                  "Reconnections of the GetFlows stream per interval.", "short",
                  [Target(summed_rate(n.HUBBLE_RECONNECTS, ("instance",), fn="increase"),
                          "{{instance}}")], width=12),
            Panel("timeseries", "Relay peers by state",
                  "Hubble Relay's view of the agents (connected, unavailable, ...).", "short",
                  [Target(f"sum by (state) ({sel(n.HUBBLE_NODES)})", "{{state}}")], width=12),
        ]),
        Row("Exporter", [
            Panel("timeseries", "Connection table entries",
                  "Half-open handshakes and KPR trace-sock links held in memory.", "short",
                  [Target(f"sum by (table) ({sel(n.CONNTABLE_ENTRIES)})", "{{table}}")], width=8),
            Panel("timeseries", "Connection table evictions per second",
                  "Entries removed without a judgement: capacity (table full) or age.", "cps",
                  [Target(summed_rate(n.CONNTABLE_EVICTIONS, ("table", "reason")),
                          "{{table}} {{reason}}")], width=8),
            Panel("timeseries", "Unattributed connections per second",
                  "Handshakes no rule could attribute to a Service (counted, never guessed).",
                  "cps",
                  [Target(summed_rate(n.UNATTRIBUTED, ("datapath", "result")),
                          "{{datapath}} {{result}}")], width=8),
            Panel("timeseries", "Label overflow and handler errors per second",
                  "Samples folded into service=\"__other__\" by metric, and flows a handler "
                  "raised on.", "cps",
                  [Target(summed_rate(n.LABEL_OVERFLOW, ("metric",)), "overflow {{metric}}"),
                   Target(summed_rate(n.HANDLER_ERRORS, ("handler",)), "error {{handler}}")],
                  width=8),
            Panel("timeseries", "Webhook deliveries per second by outcome",
                  "Alertmanager deliveries to the rollback webhook.", "reqps",
                  [Target(summed_rate(n.WEBHOOK_REQUESTS, ("outcome",)), "{{outcome}}")], width=8),
            Panel("timeseries", "Rollbacks",
                  "Rollbacks by result and mode per interval, and whether one is running.",
                  "short",
                  [Target(summed_rate(n.ROLLBACKS, ("result", "mode"), fn="increase"),
                          "{{result}} ({{mode}})"),
                   Target(f"max ({sel(n.ROLLBACK_IN_PROGRESS)})", "in progress")], width=8),
        ]),
    ]
    return dashboard(
        uid=UID_HEALTH, title="kpr-exporter / Datapath health",
        description="Per-node drops and forwards from the Cilium agents, agent and Hubble "
                    "health, and the exporter's own state.",
        tags=TAGS, variables=[*scope_variables(n.HUBBLE_UP), _node_variable()],
        rows=rows, annotations=_annotations(), links=_links())


DASHBOARDS: Final = {
    "kpr-migration-overview.json": migration_overview,
    "kpr-service-drilldown.json": service_drilldown,
    "kpr-datapath-health.json": datapath_health,
}


def dashboard_files() -> dict[str, str]:
    """File name -> JSON text (sorted keys, two-space indent, trailing newline)."""
    return {name: json.dumps(build(), indent=2, sort_keys=True) + "\n"
            for name, build in DASHBOARDS.items()}
