"""The Argo Rollouts AnalysisTemplate and the Flagger MetricTemplates of alerts/pipelines/,
rendered as their controllers render them and run against a real Prometheus.

Recorded data of known answers is backfilled into Debian's prometheus 2.42, one scenario
per stretch of time (scrapes every 60 s): ``good`` (verdicts not worse or better, probes
passing on eBPF nodes, failing only on a kube-proxy node), ``bad`` (a worse verdict, probes
failing on an eBPF node), ``inconclusive`` (every verdict NaN, no probe result on eBPF
nodes) and ``stale`` (the judge stopped evaluating). Each template's query is evaluated at
the end of each stretch; Argo's success and failure conditions, and Flagger's threshold
range (with its rule that no value is a failed check), must give the known outcome.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from tests.dashboards.promql import metric_names
from tests.dashboards.test_consistency import allowed_series
from tests.realstack.harness import PROMTOOL, HarnessError, Prometheus, PrometheusOptions
from tests.realstack.harness import promtool, require_binary

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ROOT / "alerts" / "pipelines"
T0, STEP = 1_764_000_000.0, 60.0
SCENARIOS = ("good", "bad", "inconclusive", "stale")
STEPS = 20  # per scenario
#: (scenario) -> the time its queries are evaluated at: the end of its stretch.
AT = {name: T0 + (i + 1) * STEPS * STEP for i, name in enumerate(SCENARIOS)}

SUCCESSFUL, FAILED, INCONCLUSIVE = "Successful", "Failed", "Inconclusive"


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((PIPELINES / name).read_text()) if d]


# --- recorded data ----------------------------------------------------------------------

def _verdicts(scenario: str) -> dict[str, float]:
    return {"good": {"cart": 0.0, "ledger": -1.0}, "bad": {"cart": 1.0, "ledger": 0.0},
            "inconclusive": {"cart": math.nan, "ledger": math.nan},
            "stale": {"cart": 0.0, "ledger": 0.0}}[scenario]


def openmetrics() -> str:
    verdict, judged, checks = [], [], []
    totals: dict[tuple[str, str, str], int] = {}
    step = 0
    for index, scenario in enumerate(SCENARIOS):
        for _ in range(STEPS):
            step += 1
            t = T0 + step * STEP
            for service, value in _verdicts(scenario).items():
                labels = (f'namespace="shop",service="{service}",sli="connect_duration",'
                          'comparison="canary-vs-control"')
                verdict.append(f"kpr_verdict{{{labels}}} {_num(value)} {t:.0f}")
            evaluated = T0 + index * STEPS * STEP if scenario == "stale" else t
            judged.append(f"kpr_judge_last_evaluation_timestamp_seconds {evaluated:.0f} {t:.0f}")
            gained = {("node-a", "kube-proxy", "pass"): 28, ("node-a", "kube-proxy", "fail"): 2,
                      ("node-b", "ebpf", "pass"): 30, ("node-b", "ebpf", "fail"): 0}
            if scenario == "bad":
                gained[("node-b", "ebpf", "pass")], gained[("node-b", "ebpf", "fail")] = 27, 3
            if scenario == "inconclusive":  # the eBPF node's probe results stop
                gained[("node-b", "ebpf", "pass")] = 0
            for (node, dp, result), n in gained.items():
                key = (node, dp, result)
                totals[key] = totals.get(key, 0) + n
                checks.append(f'kpr_probe_checks_total{{check="clusterip-pod",node="{node}",'
                              f'datapath="{dp}",result="{result}",probe="p-{node}"}} '
                              f"{totals[key]} {t:.0f}")
    return "\n".join([
        "# TYPE kpr_verdict gauge", *verdict,
        "# TYPE kpr_judge_last_evaluation_timestamp_seconds gauge", *judged,
        "# TYPE kpr_probe_checks counter", *checks, "# EOF"]) + "\n"


def _num(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(value)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prometheus(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("pipelines")
    source = workdir / "recorded.om"
    source.write_text(openmetrics(), encoding="utf-8")
    result = promtool("tsdb", "create-blocks-from", "openmetrics", str(source),
                      str(workdir / "tsdb"), binary=require_binary(PROMTOOL))
    if result.returncode != 0:
        raise HarnessError(f"promtool backfill failed:\n{result.stdout}\n{result.stderr}")
    async with Prometheus(workdir, PrometheusOptions(retention="36500d")) as prom:
        yield prom


async def _values(prom: Prometheus, query: str, at: float) -> list[float]:
    return [float(item["value"][1]) for item in await prom.query(query, at)]


# --- Argo Rollouts --------------------------------------------------------------------------

def argo_metrics(**args: str) -> dict[str, dict[str, Any]]:
    """The AnalysisTemplate's metrics with ``{{args.x}}`` resolved (defaults, then ``args``)."""
    (template,) = _docs("argo-rollouts-analysistemplate.yaml")
    assert template["kind"] == "AnalysisTemplate"
    values = {a["name"]: a["value"] for a in template["spec"]["args"]}
    values.update(args)
    text = re.sub(r"\{\{\s*args\.([\w-]+)\s*\}\}", lambda m: values[m.group(1)],
                  yaml.safe_dump(template["spec"]["metrics"]))
    assert "{{" not in text, text
    return {m["name"]: m for m in yaml.safe_load(text)}


def argo_expr(condition: str, result: list[float]) -> bool:
    """An Argo condition over ``result`` (the subset of expr-lang the templates use)."""
    allowed = r"^(len\(result\)|result\[0\]|isNaN\(result\[0\]\)|[\d.]+|[<>=!]=?|&&|\|\||\s)+$"
    assert re.match(allowed, condition), condition
    python = (condition.replace("&&", " and ").replace("||", " or ")
              .replace("isNaN(", "isnan("))
    python = re.sub(r"!(?!=)", " not ", python)
    return bool(eval(python, {"__builtins__": {}},  # noqa: S307 - checked grammar above
                     {"len": len, "result": result, "isnan": math.isnan}))


def argo_outcome(metric: dict[str, Any], result: list[float]) -> str:
    failed = argo_expr(metric["failureCondition"], result)
    passed = argo_expr(metric["successCondition"], result)
    assert not (failed and passed), (metric["name"], result)
    return FAILED if failed else SUCCESSFUL if passed else INCONCLUSIVE


@pytest.mark.realstack
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("scenario", "verdict", "probes"), [
    ("good", SUCCESSFUL, SUCCESSFUL),
    ("bad", FAILED, FAILED),
    ("inconclusive", INCONCLUSIVE, INCONCLUSIVE),
    ("stale", INCONCLUSIVE, SUCCESSFUL),
])
async def test_argo_rollouts_analysis(prometheus: Prometheus, scenario: str, verdict: str,
                                      probes: str) -> None:
    metrics = argo_metrics()
    assert set(metrics) == {"kpr-verdict", "kpr-probe-failures"}
    for name, expected in (("kpr-verdict", verdict), ("kpr-probe-failures", probes)):
        metric = metrics[name]
        assert metric["provider"]["prometheus"]["address"].startswith("http://")
        result = await _values(prometheus, metric["provider"]["prometheus"]["query"],
                               AT[scenario])
        assert argo_outcome(metric, result) == expected, (name, scenario, result)


@pytest.mark.realstack
@pytest.mark.asyncio(loop_scope="module")
async def test_argo_arguments_narrow_the_selection(prometheus: Prometheus) -> None:
    ledger = argo_metrics(service="ledger")["kpr-verdict"]
    query = ledger["provider"]["prometheus"]["query"]
    assert argo_outcome(ledger, await _values(prometheus, query, AT["bad"])) == SUCCESSFUL
    unknown = argo_metrics(service="no-such-service")["kpr-verdict"]
    result = await _values(prometheus, unknown["provider"]["prometheus"]["query"], AT["good"])
    assert result == [] and argo_outcome(unknown, result) == INCONCLUSIVE
    kube_proxy_only = argo_metrics(nodes="node-a")["kpr-probe-failures"]
    result = await _values(prometheus, kube_proxy_only["provider"]["prometheus"]["query"],
                           AT["bad"])
    assert result == [] and argo_outcome(kube_proxy_only, result) == INCONCLUSIVE


# --- Flagger --------------------------------------------------------------------------------

def flagger_query(template: dict[str, Any], **variables: str) -> str:
    """The MetricTemplate's query with Flagger's template variables filled in."""
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: variables[m.group(1)],
                  template["spec"]["query"])
    assert "{{" not in text
    return text


def flagger_check(result: list[float], threshold: dict[str, float]) -> bool:
    """Flagger's check: one value, not NaN (no value fails), within the threshold range."""
    if len(result) != 1 or math.isnan(result[0]):
        return False
    value = result[0]
    return threshold.get("min", -math.inf) <= value <= threshold.get("max", math.inf)


@pytest.mark.realstack
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("scenario", "verdict", "probes"), [
    ("good", True, True), ("bad", False, False), ("inconclusive", False, False),
    ("stale", False, True),
])
async def test_flagger_metric_templates(prometheus: Prometheus, scenario: str, verdict: bool,
                                        probes: bool) -> None:
    templates = {d["metadata"]["name"]: d for d in _docs("flagger-metrictemplates.yaml")}
    assert {d["kind"] for d in templates.values()} == {"MetricTemplate"}
    (analysis,) = _docs("flagger-canary-analysis.yaml")
    used = {m["templateRef"]["name"]: m for m in analysis["metrics"]}
    assert set(used) <= set(templates)
    variables = {"namespace": "shop", "target": "cart", "interval": "5m"}
    expected = {"kpr-verdict": verdict, "kpr-probe-failures": probes}
    for name, metric in used.items():
        assert templates[name]["spec"]["provider"]["type"] == "prometheus"
        query = flagger_query(templates[name], **variables)
        result = await _values(prometheus, query, AT[scenario])
        assert flagger_check(result, metric["thresholdRange"]) is expected[name], (name, result)
    everything = flagger_query(templates["kpr-verdict-any"])
    result = await _values(prometheus, everything, AT[scenario])
    assert flagger_check(result, {"max": 0}) is verdict


def test_templates_read_only_contract_metrics() -> None:
    allowed = allowed_series()
    queries = [m["provider"]["prometheus"]["query"] for m in argo_metrics().values()]
    queries += [flagger_query(d, namespace="ns", target="t", interval="1m")
                for d in _docs("flagger-metrictemplates.yaml")]
    assert len(queries) == 5
    for query in queries:
        names = metric_names(query)
        assert names and names <= allowed, names - allowed
