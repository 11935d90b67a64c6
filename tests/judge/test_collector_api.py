"""kpr_verdict exposition and the /api/v1/verdicts body."""

from __future__ import annotations

import json
import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.judge.verdict_json import QueryError, verdicts_body
from exporter.judge.collector import VerdictCollector
from exporter.judge.driver import Judge
from exporter.judge.settings import JudgeSettings
from tests.judge.samples import Feed, add, lognormal, sli

KP = ("shop", "cart", "kube-proxy")
EB = ("shop", "cart", "ebpf")
QUIET_EB = ("shop", "quiet", "ebpf")
QUIET_KP = ("shop", "quiet", "kube-proxy")


def _judged() -> Judge:
    judge, feed = Judge(JudgeSettings()), Feed()
    base = lognormal(1, 100)
    step = {KP: sli(add(base, base), flows=400), EB: sli(lognormal(2, 100, scale=2.0), flows=200),
            QUIET_KP: sli(flows=1), QUIET_EB: sli(flows=1)}
    for _ in range(70):
        judge.observe(feed.step(30.0, step))
    judge.evaluate(feed.time, baseline=None, phase="canary")
    return judge


def _samples(registry: CollectorRegistry) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def _key(name: str, service: str, sli_name: str, comparison: str) -> tuple:
    return (name, (("comparison", comparison), ("namespace", "shop"), ("service", service),
                   ("sli", sli_name)))


def test_nothing_is_exported_before_the_first_evaluation():
    registry = CollectorRegistry()
    registry.register(VerdictCollector(Judge(JudgeSettings())))
    assert _samples(registry) == {}


def test_verdicts_and_effect_sizes_are_exported():
    judge = _judged()
    registry = CollectorRegistry()
    registry.register(VerdictCollector(judge))
    samples = _samples(registry)
    worse = _key("kpr_verdict", "cart", "connect_duration", "canary-vs-control")
    assert samples[worse] == 1.0
    assert samples[_key("kpr_verdict_effect_size", "cart", "connect_duration",
                        "canary-vs-control")] > 0.5
    assert samples[_key("kpr_verdict", "cart", "drops", "canary-vs-control")] == 0.0
    quiet = _key("kpr_verdict", "quiet", "connect_duration", "canary-vs-control")
    assert math.isnan(samples[quiet])
    assert samples[("kpr_judge_last_evaluation_timestamp_seconds", ())] == judge.evaluated_at
    assert sum(1 for k in samples if k[0] == "kpr_verdict") == 2 * 4 * 2


def test_api_body_is_strict_json_worst_first_and_filterable():
    judge = _judged()
    body = verdicts_body(judge, {})
    text = json.dumps(body, allow_nan=False)
    assert json.loads(text)["phase"] == "canary"
    assert body["verdicts"][0]["outcome"] == "worse"
    assert body["summary"]["worse"] >= 1 and body["summary"]["inconclusive"] >= 8
    first = body["verdicts"][0]
    assert {"windows", "reason", "effect_size", "value"} <= set(first)
    window = first["windows"][0]
    assert {"start", "end", "tests", "inputs"} <= set(window)
    assert {"p_worse", "threshold", "floor", "interval", "statistic"} <= set(window["tests"][0])
    only = verdicts_body(judge, {"service": "quiet", "sli": "drops"})
    assert {(v["service"], v["sli"]) for v in only["verdicts"]} == {("quiet", "drops")}
    assert len(only["verdicts"]) == 2
    assert verdicts_body(judge, {"outcome": "worse"})["verdicts"][0]["service"] == "cart"


def test_api_rejects_unknown_filter_values():
    with pytest.raises(QueryError):
        verdicts_body(_judged(), {"sli": "latency"})
