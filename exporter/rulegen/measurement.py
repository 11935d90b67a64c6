"""Alerts about the measurement itself (inconclusive: page, never roll back) and about rollbacks.

Every rule here carries ``severity`` ``warning``, ``info`` or ``critical`` but never
``kpr_action``: a broken measurement must not be mistaken for a regression, and the outcome of
a rollback must not trigger another one. Pure functions returning plain dicts.
"""

from __future__ import annotations

from collections.abc import Callable

from exporter.rulegen import names as n
from exporter.rulegen.alerting import alert_rule, human_ratio, number, paren
from exporter.rulegen.profiles import Profile, format_duration
from exporter.rulegen.recording import record_name

WARNING = {"severity": "warning"}
INCONCLUSIVE = "Until this is fixed, regressions cannot be judged (inconclusive); no rollback is requested."


def new_or_increase(metric: str, window: str) -> str:
    """Counts added within ``window``, also for a series born inside it with a non-zero value.

    ``increase()`` needs two samples, so a counter that first appears already at 120 (its
    first loss) would be missed; ``metric unless metric offset window`` catches it.
    """
    return f"(\n  {metric}\n  unless\n  {metric} offset {window}\n)\nor\nincrease({metric}[{window}])"


def node_lost_share(increase: Callable[[str], str]) -> str:
    """Per node, lost / (lost + flows) as the judge's lost-events gate takes it
    (``exporter.judge.losses``): the larger of the stream's and the agent's count.
    ``increase(metric)`` is the per-series increase or rate over the wanted window. Losses
    the stream names no node for are in ``KprHubbleLostEvents``."""
    lost = (f'max by (node) (\n  label_replace(sum by (node) ({increase(n.NODE_HUBBLE_LOST)}), '
            '"counted_by", "stream", "", "")\n  or\n  label_replace(sum by (node) '
            f'({increase(n.NODE_HUBBLE_AGENT_LOST)}), "counted_by", "agent", "", "")\n)')
    return f"{lost}\n/\n(\n{lost}\n+\nsum by (node) ({increase(n.NODE_HUBBLE_FLOWS)})\n)"


def measurement_rules(p: Profile, runbook: str) -> list[dict[str, object]]:
    short, long_ = p.window("short"), p.window("long")
    pending = p.for_measurement
    lost = (
        f"sum by (source) (\n  {new_or_increase(n.HUBBLE_LOST, long_).replace(chr(10), chr(10) + '  ')}\n)\n"
        f"/ on() group_left()\nsum(increase({n.HUBBLE_FLOWS}[{long_}]))\n> {number(p.lost_events_ratio)}"
    )
    flows_long = f"sum by (namespace, service) ({record_name('service_flows', 'increase', 'long')})"
    flows_short = f"sum by (namespace, service) ({record_name('service_flows', 'increase', 'short')})"
    return [
        alert_rule(
            "KprExporterAbsent", f"absent({n.HUBBLE_UP})", pending, WARNING,
            "Prometheus has no metrics from any kpr-exporter.",
            "Prometheus {{ $externalURL }} has scraped no kpr-exporter for "
            f"{format_duration(pending)} ({n.HUBBLE_UP} is absent). Check the exporter pods "
            "and the ServiceMonitor. "
            + INCONCLUSIVE,
            runbook,
        ),
        alert_rule(
            "KprHubbleStreamDown", f"{n.HUBBLE_UP} == 0", pending, WARNING,
            "A kpr-exporter has no Hubble flow stream.",
            "kpr-exporter {{ $labels.instance }} has had no working GetFlows stream to Hubble "
            f"for {format_duration(pending)}, so its flow-derived SLIs stand still. " + INCONCLUSIVE,
            runbook,
        ),
        alert_rule(
            "KprHubbleLostEvents", lost, pending, WARNING,
            "Hubble is losing flow events; the SLIs undercount.",
            "Hubble reported {{ $value | humanizePercentage }} as many lost events "
            "(source {{ $labels.source }}) as flows received over the last "
            f"{long_} (threshold {human_ratio(p.lost_events_ratio)}). Handshakes and drops "
            "are missing from the SLIs in an unknown way. " + INCONCLUSIVE,
            runbook,
        ),
        alert_rule(
            "KprNodeHubbleLostShareHigh",
            f"{node_lost_share(lambda m: f'increase({m}[{long_}])')}\n> "
            f"{number(p.node_lost_share)}",
            pending, WARNING,
            "Hubble loses too many events on a node; the judge leaves its samples out.",
            "Hubble lost {{ $value | humanizePercentage }} of the events on node "
            "{{ $labels.node }} over the last "
            f"{long_} (threshold {human_ratio(p.node_lost_share)}). The judge leaves the "
            "samples of that node's exporter out of each window it lost too much in, and "
            "in relay mode every sample, so verdicts there are inconclusive. " + INCONCLUSIVE,
            runbook,
        ),
        alert_rule(
            "KprAgentScrapeDown", f"{n.AGENT_UP} == 0", pending, WARNING,
            "The Cilium agent metrics of a node cannot be scraped.",
            "kpr-exporter could not scrape the Cilium agent on node {{ $labels.node }} for "
            f"{format_duration(pending)}; node drop and forward counters and the agent's KPR "
            "feature gauge are missing for it. " + INCONCLUSIVE,
            runbook,
        ),
        alert_rule(
            "KprServiceFlowDataMissing",
            f"{flows_long} >= {p.min_flows}\nunless on(namespace, service)\n{flows_short} > 0",
            pending, WARNING,
            "A Service that had traffic has no flow data any more.",
            "{{ $labels.namespace }}/{{ $labels.service }} had {{ $value | humanize }} flows "
            f"over the last {long_} but none in the last {short}. Either its clients stopped, "
            "or flows are no longer observed or attributed (Hubble, the exporter, or the eBPF "
            "trace-sock events). " + INCONCLUSIVE,
            runbook,
        ),
        alert_rule(
            "KprBaselineMissing",
            f'max({n.MIGRATION_PHASE}{{phase="{n.PHASE_AFTER}"}}) == 1\nunless on()\n'
            f"count({n.BASELINE_CONNECT}) > 0",
            pending, WARNING,
            "Every node runs eBPF but no pre-switch baseline exists.",
            "The migration phase is 'after' ({{ with query `count(" + n.DATAPATH_INFO
            + '{datapath="' + n.DATAPATH_EBPF + '"} == 1)` }}{{ . | first | value }}'
            "{{ else }}all{{ end }} nodes on eBPF, no kube-proxy node left to compare with) "
            "and no frozen pre-switch baseline is exported, so after-vs-baseline comparisons "
            "cannot run. Capture or restore the baseline (kpr-exporter baseline). " + INCONCLUSIVE,
            runbook,
        ),
        alert_rule(
            "KprNodeDatapathUnknown",
            f'{n.DATAPATH_INFO}{{datapath="unknown"}} == 1', pending, WARNING,
            "The datapath of a node cannot be determined.",
            "No signal tells whether node {{ $labels.node }} runs kube-proxy or eBPF (decided "
            "by: {{ $labels.source }}); its samples carry datapath=\"unknown\" and take part "
            "in no comparison. " + INCONCLUSIVE,
            runbook,
        ),
        alert_rule(
            "KprDatapathSignalsDisagree",
            f'{n.DATAPATH_DISAGREEMENT}{{kind!="{n.DISAGREEMENT_STRICT}"}} == 1',
            pending, WARNING,
            "Signals about a node's datapath disagree.",
            "Node {{ $labels.node }}: {{ $labels.kind }}. The agent's KPR feature gauge, the "
            "CiliumNodeConfig or cilium-config value and the kube-proxy pods do not tell the "
            "same story (a half-applied switch, an agent not restarted yet, a value Cilium does "
            "not honour), so the node's samples may carry the wrong datapath. " + INCONCLUSIVE,
            runbook,
        ),
        alert_rule(
            "KprNodeConfiguredStrict",
            f'{n.DATAPATH_DISAGREEMENT}{{kind="{n.DISAGREEMENT_STRICT}"}} == 1',
            pending, WARNING,
            "A node is configured with kube-proxy-replacement=strict.",
            "Node {{ $labels.node }} gets kube-proxy-replacement \"strict\". Since Cilium 1.14 "
            "only \"true\" enables the replacement (strict leaves it off) and 1.16 rejects the "
            "value; set \"true\" or \"false\". The node keeps running kube-proxy's datapath "
            "although the configuration looks migrated. " + INCONCLUSIVE,
            runbook,
        ),
        alert_rule(
            "KprJudgeStalled",
            f"time() - {n.JUDGE_LAST_EVALUATION} > {p.judge_stalled_after}",
            pending, WARNING,
            "The exporter's statistical judge has stopped evaluating.",
            "The judge of kpr-exporter {{ $labels.instance }} last evaluated "
            "{{ $value | humanizeDuration }} ago (bound "
            f"{format_duration(p.judge_stalled_after)}), so its {n.VERDICT} series are stale: "
            "KprJudgeServiceWorse can neither fire nor resolve on fresh evidence. "
            + INCONCLUSIVE,
            runbook,
        ),
    ]


def rollback_rules(p: Profile, runbook: str) -> list[dict[str, object]]:
    short = p.window("short")
    done = n.regex_alternation(n.ROLLBACK_DONE_RESULTS)
    failed = n.regex_alternation(n.ROLLBACK_FAILED_RESULTS)

    def added(results: str) -> str:
        inner = new_or_increase(f'{n.ROLLBACKS}{{result=~"{results}"}}', short)
        return f"sum by (result, mode) {paren(inner)} > 0"

    return [
        alert_rule(
            "KprRollbackExecuted", added(done), p.for_rollback, {"severity": "info"},
            "kpr-exporter carried out (or, in dry-run, planned) a rollback.",
            "{{ $value | humanize }} rollback(s) with result {{ $labels.result }} in mode "
            f"{{{{ $labels.mode }}}} in the last {short}. In dry-run nothing was changed: "
            "read the exporter's log for the plan. In enforce mode kube-proxy is back and KPR "
            "is off on the affected nodes; the regression alerts should resolve.",
            runbook,
        ),
        alert_rule(
            "KprRollbackFailed", added(failed), p.for_rollback, {"severity": "critical"},
            "A requested rollback failed or was refused.",
            "{{ $value | humanize }} rollback(s) ended with result {{ $labels.result }} in mode "
            f"{{{{ $labels.mode }}}} in the last {short}. The regression that requested it is "
            "still in place; a human has to finish or undo the switch (see the runbook).",
            runbook,
        ),
        alert_rule(
            "KprRollbackNotPersisted", f"{n.ROLLBACK_PERSISTED} == 0", p.for_measurement,
            WARNING,
            "The rollback holds only until the next helm upgrade of Cilium.",
            "Helm release {{ $labels.namespace }}/{{ $labels.release }} still has "
            "kubeProxyReplacement on (evidence: {{ $labels.evidence }}), so the next "
            "`helm upgrade --reuse-values` or server-side apply turns KPR back on or conflicts "
            "with the rollback's patch. Make it durable, as someone who may upgrade Cilium: "
            "`kpr-exporter rollback --persist` (uses the release's own chart), or "
            "`helm upgrade {{ $labels.release }} cilium/{{ $labels.chart }} --version "
            "{{ $labels.chart_version }} -n {{ $labels.namespace }} --reuse-values --set "
            "kubeProxyReplacement=false`.",
            runbook,
        ),
        alert_rule(
            "KprReenabledAfterRollback", f"max by (node) ({n.ROLLBACK_UNDONE}) == 1",
            p.for_measurement, {"severity": "critical"},
            "The kube-proxy replacement came back on after a rollback.",
            "Node {{ $labels.node }} runs the eBPF kube-proxy replacement again although the "
            "last rollback restored it and no migration was started since. Something undid "
            "the rollback (a Helm upgrade, a GitOps sync, a CiliumNodeConfig). kpr-exporter "
            "does not fight the owner: find it, commit kubeProxyReplacement=false where it "
            "lives, or start a migration on purpose.",
            runbook,
        ),
    ]
