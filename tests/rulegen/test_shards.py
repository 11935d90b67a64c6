"""The recording rules split by ``le`` and ``datapath`` (``exporter.rulegen.shards``).

Matrix:
- coverage: the bucket-rate rules of each window (handshake and L7 request latency) select
  every ``le`` value of the contract exactly once, and any other spelling exactly once too
  (the rest rule); the counter and quantile rules (L4 and L7) do the same for every datapath
  and any other value; a rule for one value carries it as a label, the rest rule none;
- spelling: the ``le`` values the rules select are the ones the exporter's own exposition
  writes (``HistogramVec`` collected through prometheus_client);
- identity: on a fleet of L4 and L7 series with non-integer counts, an off-contract ``le``
  and extra datapaths, every split recording equals the unsplit sum series for series, bit
  for bit (promtool evaluates both and compares with ``==``; the L7 p99 against the quantile
  taken straight from the raw buckets, as before its split);
- order: every rule that reads a recorded name comes after all the rules recording it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client import exposition as text_format
from prometheus_client.openmetrics import exposition as openmetrics

from exporter import metrics_contract as mc
from exporter.model import ServiceRef
from exporter.rulegen import render_rules
from exporter.rulegen import shards
from exporter.sli.series import HistogramVec, ServiceCap, VecCollector
from tests.realstack.harness import PROMTOOL, promtool, require_binary

SHORT = "2m"  # the default profile's short window
#: Each split bucket rate (without its window suffix) and the histogram it sums.
HISTOGRAMS = {"kpr:service_connect_duration_seconds_bucket:rate_": mc.SERVICE_CONNECT_DURATION,
              "kpr:service_request_duration_seconds_bucket:rate_": mc.SERVICE_REQUEST_DURATION}
COUNTED = ("service_connect_attempts", "service_connect_failures", "service_flows",
           "service_drops", "service_kpr_sensitive_drops", "service_requests",
           "service_requests_5xx")
#: Every recording split by datapath, without its window suffix.
BY_DATAPATH = (*(f"kpr:{name}:increase" for name in COUNTED),
               *(f"kpr:service_connect_duration_seconds:{q}" for q in ("p50", "p90", "p99")),
               "kpr:service_request_duration_seconds:p99")
SELECTOR = re.compile(r'(\w+)(=|!~)"((?:[^"\\]|\\.)*)"')


def service_group(profile: str = "default") -> list[dict[str, Any]]:
    groups = render_rules(profile)["groups"]
    return next(g["rules"] for g in groups if g["name"] == "kpr-exporter.service-slis")


def split_rules(record: str) -> list[str]:
    return [r["expr"] for r in service_group() if r.get("record") == record]


def labels_of(record: str) -> list[dict[str, str]]:
    return [r.get("labels", {}) for r in service_group() if r.get("record") == record]


def shard_matcher(expr: str, label: str) -> tuple[str, str]:
    """The (operator, value) of the one ``label`` matcher in the first line of ``expr``."""
    found = [(op, value) for name, op, value in SELECTOR.findall(expr.splitlines()[0])
             if name == label]
    assert len(found) == 1, expr
    return found[0]


def selects(matcher: tuple[str, str], value: str) -> bool:
    op, text = matcher
    if op == "=":
        return value == text
    pattern = text.replace("\\\\", "\\")  # the PromQL string's escapes, then RE2 (anchored)
    return re.fullmatch(pattern, value) is None


@pytest.mark.parametrize("window", ["short", "long"])
@pytest.mark.parametrize("buckets", sorted(HISTOGRAMS))
def test_bucket_rules_select_every_le_value_exactly_once(buckets: str, window: str) -> None:
    exprs = split_rules(buckets + window)
    matchers = [shard_matcher(e, "le") for e in exprs]
    contract = HISTOGRAMS[buckets].le_values
    assert all(f"{HISTOGRAMS[buckets].name}_bucket{{" in e for e in exprs)
    assert len(exprs) == len(contract) + 1
    for value in (*contract, "1", "0.0050", "2x5e-05", "+inf", "NaN"):
        hits = [m for m in matchers if selects(m, value)]
        assert len(hits) == 1, f"le={value!r} is selected by {hits}"
    assert [m for m in matchers if m[0] == "="] == [("=", v) for v in contract]
    # each rule for one value carries it as a label (its series have it already); the rest none
    assert labels_of(buckets + window) == [{"le": v} for v in contract] + [{}]


@pytest.mark.parametrize("name", BY_DATAPATH)
def test_datapath_rules_select_every_datapath_exactly_once(name: str) -> None:
    for window in ("short", "long"):
        exprs = split_rules(f"{name}_{window}")
        matchers = [shard_matcher(e, "datapath") for e in exprs]
        for value in ("kube-proxy", "ebpf", "unknown", "kube-proxyx", ""):
            assert sum(selects(m, value) for m in matchers) == 1, (name, value)
        assert labels_of(f"{name}_{window}") == [
            {"datapath": d} for d in shards.DATAPATHS] + [{}]
        for expr, matcher in zip(exprs, matchers):
            if "\nor\n" in expr:  # the zero term covers the same datapaths as the sum
                assert expr.rsplit("\n", 1)[1].endswith(f'{{datapath{matcher[0]}"{matcher[1]}"}}')


@pytest.mark.parametrize("exposition", [text_format, openmetrics])
@pytest.mark.parametrize("metric, rule_le", [
    (mc.SERVICE_CONNECT_DURATION, shards.CONNECT_LE),
    (mc.SERVICE_REQUEST_DURATION, shards.REQUEST_LE),
], ids=["connect", "request"])
def test_le_values_are_what_the_exporter_exposes(
        exposition: Any, metric: mc.Metric, rule_le: tuple[str, ...]) -> None:
    vec = HistogramVec(metric.name, "latency", metric.extra_labels,
                       ServiceCap(metric.name, 10, {}), metric.buckets)
    # (datapath, the metric's own labels): the request histogram's protocol is "http"
    vec.observe(ServiceRef("shop", "cart"), ("ebpf",) + ("http",) * len(metric.extra_labels), 0.0003)
    registry = CollectorRegistry()
    registry.register(VecCollector([vec]))
    text = exposition.generate_latest(registry).decode()
    exposed = re.findall(r'_bucket\{[^}]*le="([^"]*)"', text)
    assert tuple(exposed) == metric.le_values == rule_le


def test_regex_literal_escapes_for_a_promql_string() -> None:
    assert shards.regex_literal("2.5e-05") == "2\\\\.5e-05"
    assert shards.regex_literal("+Inf") == "\\\\+Inf"
    assert shards.split("datapath", ("a", "b")) == (
        shards.Shard('datapath="a"', {"datapath": "a"}), shards.Shard('datapath="b"', {"datapath": "b"}),
        shards.Shard('datapath!~"a|b"', {}))
    with pytest.raises(ValueError):
        shards.split("le", ("1", "1"))


def test_readers_come_after_every_rule_they_read() -> None:
    rules = service_group()
    last_written = {r["record"]: i for i, r in enumerate(rules)}
    for i, rule in enumerate(rules):
        for name, at in last_written.items():
            if re.search(re.escape(name) + r"\b", rule["expr"]) and rule["record"] != name:
                assert at < i, f"{rule['record']} (rule {i}) reads {name} recorded by rule {at}"


# --- identity, evaluated by promtool ------------------------------------------------------

def _unsplit() -> dict[str, str]:
    """The sums as one rule each, written out independently of the generator (the L7
    quantile straight from the raw buckets, as before the split)."""
    svc = "namespace, service, datapath"
    l7 = f"{svc}, protocol"
    sensitive = "|".join(sorted(mc.KPR_SENSITIVE_DROP_REASONS))
    zero = "\nor\n0 * "
    return {
        "service_connect_duration_seconds_bucket:rate":
            f"sum by ({svc}, le) (rate(kpr_service_connect_duration_seconds_bucket[{SHORT}]))",
        "service_connect_attempts:increase":
            f"sum by ({svc}) (increase(kpr_service_connect_attempts_total[{SHORT}]))",
        "service_connect_failures:increase":
            f'sum by ({svc}) (increase(kpr_service_connect_attempts_total{{result!="established"}}'
            f"[{SHORT}])){zero}ref:service_connect_attempts:increase",
        "service_flows:increase": f"sum by ({svc}) (increase(kpr_service_flows_total[{SHORT}]))",
        "service_drops:increase": f"sum by ({svc}) (increase(kpr_service_drops_total[{SHORT}]))"
                                  f"{zero}ref:service_flows:increase",
        "service_kpr_sensitive_drops:increase":
            f'sum by ({svc}) (increase(kpr_service_drops_total{{reason=~"{sensitive}"}}[{SHORT}]))'
            f"{zero}ref:service_flows:increase",
        **{f"service_connect_duration_seconds:{name}":
           f"histogram_quantile({q}, ref:service_connect_duration_seconds_bucket:rate)"
           for name, q in (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99"))},
        "service_request_duration_seconds_bucket:rate":
            f"sum by ({l7}, le) (rate(kpr_service_request_duration_seconds_bucket[{SHORT}]))",
        "service_request_duration_seconds:p99":
            f"histogram_quantile(0.99, sum by ({l7}, le) "
            f"(rate(kpr_service_request_duration_seconds_bucket[{SHORT}])))",
        "service_requests:increase": f"sum by ({l7}) (increase(kpr_service_requests_total[{SHORT}]))",
        "service_requests_5xx:increase":
            f'sum by ({l7}) (increase(kpr_service_requests_total{{code_class="5xx"}}[{SHORT}]))'
            f"{zero}ref:service_requests:increase",
    }


def _l7(base: str, rate: float, service: str) -> list[dict[str, str]]:
    """Request latency buckets (``1.0`` spelt ``1``, off the contract) and responses by
    status class; the service ``quiet`` never answers 5xx (its 5xx count must read 0)."""
    series = []
    les = tuple("1" if le == "1.0" else le for le in mc.SERVICE_REQUEST_DURATION.le_values)
    for i, le in enumerate(les):
        series.append({"series": f'kpr_service_request_duration_seconds_bucket{{{base},protocol="http",le="{le}"}}',
                       "values": f"0+{rate * (i + 2) / 3:.4f}x12"})
    classes = ("2xx",) if service == "quiet" else ("2xx", "4xx", "5xx")
    for j, code_class in enumerate(classes):
        series.append({"series": f'kpr_service_requests_total{{{base},protocol="http",code_class="{code_class}"}}',
                       "values": f"0+{rate / (j + 2):.4f}x12"})
    return series


def _fleet() -> list[dict[str, str]]:
    """Two nodes, two services, four datapaths (one nobody expects), every contract ``le``
    and one spelt another way, counts growing by non-integer steps; L4 and L7."""
    series = []
    les = (*mc.SERVICE_CONNECT_DURATION.le_values[:-1], "1", "+Inf")
    for node, step in (("n1", 0.37), ("n2", 1.13)):
        for service in ("cart", "quiet"):
            for k, datapath in enumerate(("kube-proxy", "ebpf", "unknown", "other")):
                base = f'instance="{node}",namespace="shop",service="{service}",datapath="{datapath}"'
                rate = step * (k + 1)
                for i, le in enumerate(les):
                    series.append({"series": f'kpr_service_connect_duration_seconds_bucket{{{base},le="{le}"}}',
                                   "values": f"0+{rate * (i + 1):.4f}x12"})
                results = ("established",) if service == "quiet" else ("established", "refused", "timeout")
                for j, result in enumerate(results):
                    series.append({"series": f'kpr_service_connect_attempts_total{{{base},result="{result}"}}',
                                   "values": f"0+{rate / (j + 1):.4f}x12"})
                series.append({"series": f'kpr_service_flows_total{{{base},verdict="FORWARDED"}}',
                               "values": f"0+{rate * 7:.4f}x12"})
                series += _l7(base, rate, service)
                if service == "cart":
                    for reason in ("POLICY_DENIED", "SERVICE_BACKEND_NOT_FOUND"):
                        series.append({"series": f'kpr_service_drops_total{{{base},reason="{reason}"}}',
                                       "values": f"0+{rate / 3:.4f}x12"})
    return series


def test_split_recordings_equal_the_unsplit_sums(tmp_path: Path) -> None:
    binary = require_binary(PROMTOOL)
    group = [r for r in service_group()
             if str(r.get("record", "")).endswith("_short") and ":ratio_" not in r["record"]]
    reference = [{"record": f"ref:{name}", "expr": expr} for name, expr in _unsplit().items()]
    rules = {"groups": [{"name": "split", "interval": "1m", "rules": group},
                        {"name": "unsplit", "interval": "1m", "rules": reference}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    checks = []
    for name in _unsplit():
        split, ref = f"kpr:{name}_short", f"ref:{name}"
        expr = (f"(count({split} == {ref}) == bool count({ref}))"
                f" * (count({split}) == bool count({ref}))")
        checks.append({"expr": expr, "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": 1}]})
    test = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
            "tests": [{"name": "split equals unsplit", "interval": "1m",
                       "input_series": _fleet(), "promql_expr_test": checks}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool("test", "rules", "test.yaml", binary=binary, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
