"""Alerting rules: regressions that request rollback, measurement problems that only page, and
the outcome of rollbacks.

A regression compares the eBPF cohort with a reference: the kube-proxy cohort at the same time
(``canary-vs-control``) or, when no kube-proxy node carries enough of the service's traffic,
the frozen pre-switch baseline (``after-vs-baseline``). It is "worse" only when the relative
factor AND the absolute floor are exceeded in BOTH windows, every cohort passed its traffic
guard, and all of that held for ``for:``. Comparisons are one-sided, so an improvement never
fires. Measurement problems (no stream, lost events, dead agent scrape, vanished data,
contradicting datapath signals) carry ``severity="warning"`` and never ``kpr_action``. Pure
functions returning plain dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from exporter.metrics_contract import ROLLBACK_ALERT_LABELS
from exporter.rulegen import names as n
from exporter.rulegen.profiles import Profile, Threshold, format_duration
from exporter.rulegen.recording import record_name

EBPF: Final = f'{{datapath="{n.DATAPATH_EBPF}"}}'
KUBE_PROXY: Final = f'{{datapath="{n.DATAPATH_KUBE_PROXY}"}}'
ROLLBACK_LABELS: Final = {"severity": "critical", **ROLLBACK_ALERT_LABELS}
CANARY: Final = n.COMPARISON_CANARY
BASELINE: Final = n.COMPARISON_BASELINE
#: kpr_scope the webhook reads, per comparison. canary-vs-control: the eBPF nodes. A comparison
#: with the frozen baseline names no scope: it fires in the canary phase too (a Service whose
#: traffic no kube-proxy node carries), so the webhook scopes by phase: the eBPF nodes while
#: the cluster is mixed, the whole cluster once every node is on eBPF.
SCOPES: Final = ((CANARY, "canary"), (BASELINE, None))


BY_PHASE: Final = ("the nodes on eBPF (the whole cluster once every node is on eBPF; only "
                   "the switched nodes while the cluster is mixed)")


def scope_labels(scope: str | None) -> dict[str, str]:
    return {} if scope is None else {"kpr_scope": scope}


def number(value: float) -> str:
    """A threshold as PromQL and humans read it (``2``, ``1.25``, ``0.001``)."""
    return f"{value:g}"


def human_seconds(value: float) -> str:
    return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"


def human_ratio(value: float) -> str:
    return f"{value * 100:g}%"


def paren(expr: str) -> str:
    return "(\n  " + expr.replace("\n", "\n  ") + "\n)"


def all_of(*conditions: str) -> str:
    return "\nand\n".join(paren(c) for c in conditions)


@dataclass(frozen=True, slots=True)
class Guard:
    """``record`` (an increase over the short window) must reach the profile's ``minimum``."""

    record: str
    minimum: Callable[[Profile], int]
    both_cohorts: bool  # False: only the eBPF side (e.g. a minimum number of drops)
    what: str


@dataclass(frozen=True, slots=True)
class Regression:
    """One SLI judged eBPF-vs-reference; renders a canary rule and, if set, a baseline rule."""

    alert: str
    sli: str
    record: str  # recording rule base name, without the window suffix
    threshold: str  # key in Profile.thresholds
    guards: tuple[Guard, ...]
    baseline: str | None  # recording rule of the frozen baseline, or None
    humanize: str  # Go template function for $value
    human: Callable[[float], str]
    summary: str
    subject: str  # "p99 TCP handshake time", used in the description


CONNECTIONS: Final = Guard("service_connect_attempts", lambda p: p.min_connections, True, "handshakes")
FLOWS: Final = Guard("service_flows", lambda p: p.min_flows, True, "flows")

REGRESSIONS: Final = (
    Regression(
        alert="KprHandshakeLatencyRegression",
        sli="connect_latency",
        record="service_connect_duration_seconds:p99",
        threshold="handshake_p99",
        guards=(CONNECTIONS,),
        baseline=record_name("baseline_connect_duration_seconds", "p99"),
        humanize="humanizeDuration",
        human=human_seconds,
        summary="TCP handshakes to a Service are slower through eBPF (KPR) nodes.",
        subject="p99 TCP handshake time",
    ),
    Regression(
        alert="KprConnectFailureRegression",
        sli="connect_failures",
        record="service_connect_failure:ratio",
        threshold="connect_failure_ratio",
        guards=(CONNECTIONS, Guard("service_connect_failures", lambda p: p.min_errors, False,
                                   "failed handshakes")),
        baseline=None,
        humanize="humanizePercentage",
        human=human_ratio,
        summary="More connections to a Service fail (refused or timed out) through eBPF (KPR) nodes.",
        subject="share of refused or timed-out handshakes",
    ),
    Regression(
        alert="KprDropRatioRegression",
        sli="drop_ratio",
        record="service_drop:ratio",
        threshold="drop_ratio",
        guards=(FLOWS, Guard("service_drops", lambda p: p.min_errors, False, "dropped flows")),
        baseline=record_name("baseline_drop", "ratio"),
        humanize="humanizePercentage",
        human=human_ratio,
        summary="More flows to a Service are dropped through eBPF (KPR) nodes.",
        subject="share of dropped flows",
    ),
    Regression(
        alert="KprSensitiveDropsRegression",
        sli="kpr_sensitive_drops",
        record="service_kpr_sensitive_drop:ratio",
        threshold="kpr_sensitive_drop_ratio",
        guards=(FLOWS, Guard("service_kpr_sensitive_drops", lambda p: p.min_errors, False,
                             "KPR-sensitive drops")),
        baseline=record_name("baseline_drop", "ratio"),
        humanize="humanizePercentage",
        human=human_ratio,
        summary="KPR-sensitive drops (backend not found, stale IP, CT/NAT map, FIB) rise for a "
                "Service through eBPF (KPR) nodes.",
        subject="share of flows dropped for a KPR-sensitive reason",
    ),
)


def _windowed(record: str, which: str) -> str:
    metric, operation = record.split(":")
    return record_name(metric, operation, which)


def _worse(ebpf: str, reference: str, matching: str, t: Threshold) -> tuple[str, str]:
    """Relative factor and absolute floor, keeping the eBPF side's labels."""
    return (
        f"{ebpf}\n  > {matching} group_left()\n{number(t.factor)} * {reference}",
        f"{ebpf}\n  - {matching} group_left()\n{reference}\n  > {number(t.floor)}",
    )


def _guards(reg: Regression, p: Profile) -> list[str]:
    """Traffic guards on the eBPF side (the control side is checked by ``_control_guard``)."""
    return [f"{record_name(g.record, 'increase', 'short')}{EBPF} >= {g.minimum(p)}" for g in reg.guards]


def _control_guard(reg: Regression, p: Profile) -> str:
    parts = [
        f"{record_name(g.record, 'increase', 'short')}{KUBE_PROXY} >= {g.minimum(p)}"
        for g in reg.guards if g.both_cohorts
    ]
    return " and ignoring(datapath) ".join(parts)


def canary_expr(reg: Regression, p: Profile) -> str:
    conditions: list[str] = []
    for which in ("short", "long"):
        rec = _windowed(reg.record, which)
        conditions += _worse(f"{rec}{EBPF}", f"{rec}{KUBE_PROXY}", "ignoring(datapath)",
                             p.thresholds[reg.threshold])
    guards = _guards(reg, p)
    expr = all_of(*conditions, *guards)
    control = _control_guard(reg, p)
    return f"{expr}\nand ignoring(datapath)\n{paren(control)}"


def baseline_expr(reg: Regression, p: Profile) -> str:
    assert reg.baseline is not None
    conditions: list[str] = []
    for which in ("short", "long"):
        rec = _windowed(reg.record, which)
        conditions += _worse(f"{rec}{EBPF}", reg.baseline, "on(namespace, service)",
                             p.thresholds[reg.threshold])
    expr = all_of(*conditions, *_guards(reg, p))
    return f"{expr}\nunless ignoring(datapath)\n{paren(_control_guard(reg, p))}"


def _query(record: str, fn: str, selector: str,
           args: str = "$labels.namespace $labels.service") -> str:
    """Go template that prints another series' value for the alert's labels (``args``)."""
    return (
        "{{ with printf `" + record + "{" + selector + "}` " + args + " | query }}"
        "{{ . | first | value | " + fn + " }}{{ else }}no data{{ end }}"
    )


def alert_rule(alert: str, expr: str, pending: int, labels: dict[str, str], summary: str,
          description: str, runbook: str) -> dict[str, object]:
    return {
        "alert": alert,
        "expr": expr,
        "for": format_duration(pending),
        "labels": labels,
        "annotations": {
            "summary": summary,
            "description": " ".join(description.split()),
            "runbook_url": f"{runbook}#{alert.lower()}",
        },
    }


def regression_rules(p: Profile, runbook: str) -> list[dict[str, object]]:
    rules = []
    short, long_ = p.window("short"), p.window("long")
    for reg in REGRESSIONS:
        t = p.thresholds[reg.threshold]

        def rule_text(control: bool) -> str:
            guards = ", ".join(
                f"at least {g.minimum(p)} {g.what} "
                + ("through each datapath" if control and g.both_cohorts else "through eBPF nodes")
                for g in reg.guards
            )
            return (
                f"Worse means more than {number(t.factor)}x the reference and more than "
                f"{reg.human(t.floor)} above it, in both the {short} and {long_} windows, with "
                f"{guards} in the last {short}; this has held for {format_duration(p.for_regression)}."
            )

        head = (f"The {reg.subject} of {{{{ $labels.namespace }}}}/{{{{ $labels.service }}}} "
                f"through eBPF nodes is {{{{ $value | {reg.humanize} }}}} over the last {short}")
        short_rec = _windowed(reg.record, "short")
        control = _query(short_rec, reg.humanize,
                         f'namespace=%q,service=%q,datapath="{n.DATAPATH_KUBE_PROXY}"')
        rules.append(alert_rule(
            reg.alert, canary_expr(reg, p), p.for_regression,
            {**ROLLBACK_LABELS, "sli": reg.sli, "comparison": CANARY, "kpr_scope": "canary"},
            reg.summary,
            f"{head}, against {control} through kube-proxy nodes at the same time. {rule_text(True)} "
            "Requests a rollback of the eBPF (canary) nodes.",
            runbook,
        ))
        if reg.baseline is None:
            continue
        frozen = _query(reg.baseline, reg.humanize, "namespace=%q,service=%q")
        rules.append(alert_rule(
            reg.alert, baseline_expr(reg, p), p.for_regression,
            {**ROLLBACK_LABELS, "sli": reg.sli, "comparison": BASELINE},
            reg.summary,
            f"{head}, against the frozen pre-switch baseline of {frozen}; no kube-proxy node "
            f"carries enough of its traffic for a comparison at the same time. {rule_text(False)} "
            f"Requests a rollback of {BY_PHASE}.",
            runbook,
        ))
    rules.append(_node_regression(p, runbook))
    rules += judge_rules(p, runbook)
    return rules


def judge_rules(p: Profile, runbook: str) -> list[dict[str, object]]:
    """The exporter's own statistical judge said "worse" (``kpr_verdict == 1``) for ``for:``.

    One rule per comparison, so each carries its own static ``kpr_scope`` (or, for the
    baseline, none: the webhook scopes by phase) and a comparison the webhook does not know
    never requests anything. Inconclusive (NaN), better
    (-1) and not worse (0) never match ``== 1``.
    """
    pending = format_duration(p.for_regression)
    rules = []
    for comparison, scope in SCOPES:
        selector = f'{n.VERDICT}{{comparison="{comparison}"}}'
        effect = _query(n.VERDICT_EFFECT, "humanizePercentage",
                        "namespace=%q,service=%q,sli=%q,comparison=%q",
                        "$labels.namespace $labels.service $labels.sli $labels.comparison")
        target = "the eBPF (canary) nodes" if scope == "canary" else BY_PHASE
        rules.append(alert_rule(
            "KprJudgeServiceWorse",
            f"max by (namespace, service, sli, comparison) ({selector} == {n.VERDICT_WORSE})",
            p.for_regression,
            {**ROLLBACK_LABELS, **scope_labels(scope)},
            "The exporter's statistical judge finds a Service worse through eBPF (KPR) nodes.",
            "The kpr-exporter judge has found {{ $labels.namespace }}/{{ $labels.service }} "
            "worse through eBPF nodes on SLI {{ $labels.sli }} ({{ $labels.comparison }}) in "
            f"both its short and long window, for {pending}; relative change in the short "
            f"window: {effect}. "
            "Evidence (inputs, windows, statistic, threshold): GET "
            "/api/v1/verdicts?namespace={{ $labels.namespace }}&service={{ $labels.service }} "
            f"on the kpr-exporter. Requests a rollback of {target}.",
            runbook,
        ))
    return rules


def _node_regression(p: Profile, runbook: str) -> dict[str, object]:
    t = p.thresholds["node_kpr_sensitive_drop_ratio"]
    conditions: list[str] = []
    for which in ("short", "long"):
        node = record_name("node_kpr_sensitive_drop", "ratio", which)
        cohort = record_name("datapath_kpr_sensitive_drop", "ratio", which)
        conditions += _worse(f"{node}{EBPF}", f"{cohort}{KUBE_PROXY}", "on()", t)
    packets = record_name("node_packets", "increase", "short")
    drops = record_name("node_kpr_sensitive_drops", "increase", "short")
    control = record_name("datapath_packets", "increase", "short")
    expr = all_of(*conditions, f"{packets}{EBPF} >= {p.min_node_packets}",
                  f"{drops}{EBPF} >= {p.min_errors}")
    expr += f"\nand on()\n{paren(f'{control}{KUBE_PROXY} >= {p.min_node_packets}')}"
    short, long_ = p.window("short"), p.window("long")
    cohort_now = (
        "{{ with query `" + record_name("datapath_kpr_sensitive_drop", "ratio", "short")
        + KUBE_PROXY + "` }}{{ . | first | value | humanizePercentage }}{{ else }}no data{{ end }}"
    )
    return alert_rule(
        "KprNodeSensitiveDropsRegression", expr, p.for_regression,
        {**ROLLBACK_LABELS, "sli": "kpr_sensitive_drops", "comparison": CANARY},
        "An eBPF (KPR) node drops more packets for KPR-sensitive reasons than the kube-proxy nodes.",
        f"Node {{{{ $labels.node }}}} (eBPF) dropped {{{{ $value | humanizePercentage }}}} of its "
        f"packets for KPR-sensitive reasons over the last {short} (agent counters), against "
        f"{cohort_now} on the kube-proxy nodes. Worse means more than {number(t.factor)}x and "
        f"more than {human_ratio(t.floor)} above, in both the {short} and {long_} windows, with "
        f"at least {p.min_node_packets} packets on each side and {p.min_errors} such drops; "
        f"this has held for {format_duration(p.for_regression)}. Requests a rollback of this node.",
        runbook,
    )
