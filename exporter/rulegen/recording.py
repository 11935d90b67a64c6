"""Recording rules: the SLIs per service and datapath, and per node, over a short and a long window.

Names follow ``level:metric:operation`` with the level ``kpr`` and the window as a suffix of the
operation that does not depend on the profile (``..._short`` / ``..._long``), so dashboards and
alerts keep working when the profile changes the window lengths. ``kpr:rule_profile:info``
records which profile and windows are in force. Pure functions returning plain dicts.
"""

from __future__ import annotations

from typing import Final

from exporter.rulegen import names as n
from exporter.rulegen import shards
from exporter.rulegen.profiles import Profile

WINDOWS: Final = ("short", "long")
QUANTILES: Final = (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99"))
#: The L7 request latency is judged by its p99 only.
REQUEST_QUANTILES: Final = (("p99", "0.99"),)


def record_name(metric: str, operation: str, window: str | None = None) -> str:
    """``kpr:<metric>:<operation>[_<window>]``."""
    return f"kpr:{metric}:{operation}" + (f"_{window}" if window else "")


def by(labels: tuple[str, ...]) -> str:
    return "sum by (" + ", ".join(labels) + ")"


def sum_rate(selector: str, window: str, labels: tuple[str, ...], fn: str = "rate") -> str:
    return f"{by(labels)} ({fn}({selector}[{window}]))"


def or_zero(expr: str, base: str) -> str:
    """``expr``, or 0 for every series of ``base`` that ``expr`` lacks.

    Counters of failures and drops only appear once something failed or dropped; without the
    ``or 0 * base`` term a service that never dropped would have no drop count at all instead
    of 0, and its ratio would be missing instead of 0.
    """
    return f"{expr}\nor\n0 * {base}"


def _rule(record: str, expr: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    return {"record": record, "expr": expr, **({"labels": labels} if labels else {})}


def _bucket_rate_rules(record: str, metric: str, le_values: tuple[str, ...],
                       labels: tuple[str, ...], window: str) -> list[dict[str, object]]:
    """The bucket rate of ``metric`` over every collector, one rule per ``le`` value of the
    contract and one for any other (``shards``)."""
    return [_rule(record, sum_rate(shards.select(metric + "_bucket", le.matcher), window,
                                   labels + ("le",)), le.labels)
            for le in shards.split("le", le_values)]


def _quantile_rules(metric: str, buckets: str, which: str,
                    quantiles: tuple[tuple[str, str], ...]) -> list[dict[str, object]]:
    """Each quantile from the recorded bucket rate ``buckets``, one rule per datapath."""
    return [_rule(record_name(metric, name, which),
                  f"histogram_quantile({q}, {shards.select(buckets, datapath.matcher)})",
                  datapath.labels)
            for name, q in quantiles for datapath in shards.split("datapath", shards.DATAPATHS)]


def _counted_rules(record: str, metric: str, matched: tuple[str, ...], window: str,
                   zero_base: str | None = None,
                   labels: tuple[str, ...] = n.SERVICE_LABELS) -> list[dict[str, object]]:
    """``increase`` of ``metric{matched}`` summed by ``labels`` (service and datapath), one
    rule per datapath (``shards``); with ``zero_base``, 0 for its series of that datapath
    that ``metric`` lacks (``or_zero``)."""
    rules = []
    for datapath in shards.split("datapath", shards.DATAPATHS):
        expr = sum_rate(shards.select(metric, *matched, datapath.matcher), window,
                        labels, "increase")
        if zero_base is not None:
            expr = or_zero(expr, shards.select(zero_base, datapath.matcher))
        rules.append(_rule(record, expr, datapath.labels))
    return rules


def service_rules(profile: Profile, which: str) -> list[dict[str, object]]:
    """Handshake quantiles, connect failures, drops and L7 per service and datapath.

    Each sum over the exporters' raw series is computed once per window and read back by
    name: in node mode that sum runs over every node's series (``docs/scaling.md``), so the
    three quantiles share one bucket rate and the ``or 0 *`` terms read the recorded totals
    (rules of a group run in order, each seeing the ones before). The sums over raw series,
    the handshake's and the L7 requests' alike, are split by ``le`` or ``datapath``
    (``shards``) so that no single rule selects them all; the quantiles, which read every
    service's recorded buckets, by ``datapath``."""
    w = profile.window(which)
    l7_labels = n.SERVICE_LABELS + ("protocol",)
    buckets = record_name("service_connect_duration_seconds_bucket", "rate", which)
    rules = _bucket_rate_rules(buckets, n.CONNECT_DURATION, shards.CONNECT_LE, n.SERVICE_LABELS, w)
    rules += _quantile_rules("service_connect_duration_seconds", buckets, which, QUANTILES)
    sensitive = f'reason=~"{n.regex_alternation(n.KPR_SENSITIVE_ENUM_NAMES)}"'
    failed = f'result!="{n.RESULT_ESTABLISHED}"'
    recorded_attempts = record_name("service_connect_attempts", "increase", which)
    recorded_flows = record_name("service_flows", "increase", which)
    recorded_requests = record_name("service_requests", "increase", which)
    request_buckets = record_name("service_request_duration_seconds_bucket", "rate", which)

    def raw(name: str, metric: str, *matched: str, base: str | None = None,
            labels: tuple[str, ...] = n.SERVICE_LABELS) -> list[dict[str, object]]:
        return _counted_rules(record_name(name, "increase", which), metric, matched, w, base, labels)

    def share(name: str, numerator: str, denominator: str) -> dict[str, object]:
        return _rule(record_name(name, "ratio", which),
                     f"{record_name(numerator, 'increase', which)}\n/\n"
                     f"{record_name(denominator, 'increase', which)}")

    rules += [
        *raw("service_connect_attempts", n.CONNECT_ATTEMPTS),
        *raw("service_connect_failures", n.CONNECT_ATTEMPTS, failed, base=recorded_attempts),
        share("service_connect_failure", "service_connect_failures", "service_connect_attempts"),
        *raw("service_flows", n.FLOWS),
        *raw("service_drops", n.SERVICE_DROPS, base=recorded_flows),
        share("service_drop", "service_drops", "service_flows"),
        *raw("service_kpr_sensitive_drops", n.SERVICE_DROPS, sensitive, base=recorded_flows),
        share("service_kpr_sensitive_drop", "service_kpr_sensitive_drops", "service_flows"),
        *_bucket_rate_rules(request_buckets, n.REQUEST_DURATION, shards.REQUEST_LE, l7_labels, w),
        *_quantile_rules("service_request_duration_seconds", request_buckets, which, REQUEST_QUANTILES),
        *raw("service_requests", n.REQUESTS, labels=l7_labels),
        *raw("service_requests_5xx", n.REQUESTS, 'code_class="5xx"', base=recorded_requests,
             labels=l7_labels),
        share("service_requests_5xx", "service_requests_5xx", "service_requests"),
    ]
    return rules


def node_rules(profile: Profile, which: str) -> list[dict[str, object]]:
    """Agent-reported drops per node: by reason and direction, and the KPR-sensitive share."""
    w = profile.window(which)
    sensitive_sel = f'{n.NODE_DROPS}{{reason=~"{n.regex_alternation(n.KPR_SENSITIVE_AGENT_TEXTS)}"}}'
    rules: list[dict[str, object]] = [
        _rule(record_name("node_drops", "rate", which),
              sum_rate(n.NODE_DROPS, w, ("node", "datapath", "reason", "direction"))),
    ]
    for level, labels in (("node", n.NODE_LABELS), ("datapath", ("datapath",))):
        forwards = sum_rate(n.NODE_FORWARDS, w, labels, "increase")
        drops = sum_rate(n.NODE_DROPS, w, labels, "increase")
        sensitive = sum_rate(sensitive_sel, w, labels, "increase")
        packets = f"{forwards}\n+\n(\n  {drops}\n  or\n  0 * {forwards}\n)"
        rules += [
            _rule(record_name(f"{level}_packets", "increase", which), packets),
            _rule(record_name(f"{level}_kpr_sensitive_drops", "increase", which),
                  or_zero(sensitive, forwards)),
            _rule(record_name(f"{level}_kpr_sensitive_drop", "ratio", which),
                  f"{record_name(f'{level}_kpr_sensitive_drops', 'increase', which)}\n/\n"
                  f"{record_name(f'{level}_packets', 'increase', which)}"),
        ]
    return rules


def baseline_rules() -> list[dict[str, object]]:
    """The frozen pre-switch baseline per service, one series even with several exporters."""
    service = "max by (namespace, service)"
    return [
        _rule(record_name("baseline_connect_duration_seconds", "p99"),
              f'{service} ({n.BASELINE_CONNECT}{{q="{n.QUANTILE_P99}"}})'),
        _rule(record_name("baseline_drop", "ratio"), f"{service} ({n.BASELINE_DROP_RATIO})"),
    ]


def profile_info_rule(profile: Profile) -> dict[str, object]:
    return {
        "record": record_name("rule_profile", "info"),
        "expr": "vector(1)",
        "labels": {
            "profile": profile.name,
            "short_window": profile.window("short"),
            "long_window": profile.window("long"),
        },
    }


def recording_groups(profile: Profile) -> list[dict[str, object]]:
    """Every recording group; node rules read other node rules, so order within a group matters."""
    service: list[dict[str, object]] = [profile_info_rule(profile)]
    node: list[dict[str, object]] = []
    for which in WINDOWS:
        service += service_rules(profile, which)
        node += node_rules(profile, which)
    return [
        {"name": "kpr-exporter.service-slis", "rules": service},
        {"name": "kpr-exporter.node-slis", "rules": node},
        {"name": "kpr-exporter.baseline", "rules": baseline_rules()},
    ]
