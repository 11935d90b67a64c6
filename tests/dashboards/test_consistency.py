"""Dashboards and rules read only metrics of the contract (docs/metrics.md) or of the rules.

Every PromQL expression of every dashboard (targets, annotations, variable queries) and of
every rule profile (rule expressions and the queries inside alert annotations) is reduced to
the metric names it selects; each must be a metric of docs/metrics.md (histograms with their
``_bucket``/``_sum``/``_count`` series), a recording rule of the generated files, or a metric
that a producer already exports and whose row in docs/metrics.md is still pending.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards.promql import grafana_to_promql, label_values_query, metric_names

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "metrics.md"

#: Exported by a producer but not yet listed in docs/metrics.md: name -> producing module.
PENDING_CONTRACT = {
    "kpr_node_datapath_disagreement": "exporter/datapath/tracker.py",
}


def contract() -> dict[str, str]:
    """metric name -> type, from the tables of docs/metrics.md."""
    rows = re.findall(r"^\|\s*`(kpr_[a-z0-9_]+)`\s*\|\s*([a-z]+)", CONTRACT.read_text(encoding="utf-8"),
                      re.MULTILINE)
    return dict(rows)


def allowed_series() -> set[str]:
    names: set[str] = set()
    for name, kind in contract().items():
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def rule_docs() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "alerts" / "rules").glob("*.yaml"))]


def recorded() -> set[str]:
    return {r["record"] for doc in rule_docs() for g in doc["groups"] for r in g["rules"] if "record" in r}


def rule_exprs() -> list[tuple[str, str]]:
    out = []
    for doc in rule_docs():
        for group in doc["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule["alert"]
                out.append((f"rule {name}", rule["expr"]))
                for key, text in (rule.get("annotations") or {}).items():
                    for query in re.findall(r"(?:printf|query) `([^`]*)`", text):
                        out.append((f"rule {name} annotation {key}", query.replace("%q", '"x"')))
    return out


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        dash = json.loads(path.read_text(encoding="utf-8"))
        for panel in dash["panels"]:
            for target in panel.get("targets", ()):
                out.append((f"{path.name} {panel['title']}", target["expr"]))
        for annotation in dash["annotations"]["list"]:
            if "expr" in annotation:
                out.append((f"{path.name} annotation {annotation['name']}", annotation["expr"]))
        for variable in dash["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
                inner = label_values_query(query)
                assert inner, f"{path.name} variable {variable['name']}"
                out.append((f"{path.name} variable {variable['name']}", inner))
    return out


def test_contract_lists_the_brief_metrics() -> None:
    names = contract()
    assert names["kpr_service_connect_duration_seconds"] == "histogram"
    assert names["kpr_service_drops_total"] == "counter"
    assert len(names) >= 25


def test_pending_metrics_are_really_exported() -> None:
    for name, module in PENDING_CONTRACT.items():
        assert name in (ROOT / module).read_text(encoding="utf-8"), f"{module} does not export {name}"


@pytest.mark.parametrize("source", ["dashboards", "rules"])
def test_only_contract_or_recorded_metrics_are_read(source: str) -> None:
    allowed = allowed_series() | recorded() | set(PENDING_CONTRACT)
    exprs = dashboard_exprs() if source == "dashboards" else rule_exprs()
    assert exprs
    unknown = {(where, name) for where, expr in exprs
               for name in metric_names(grafana_to_promql(expr)) if name not in allowed}
    assert not unknown, f"metrics outside docs/metrics.md and the recording rules: {sorted(unknown)}"


def test_every_recording_rule_is_read_somewhere_or_documented() -> None:
    """Recording rules exist for alerts, dashboards or users; each is in the README's table."""
    readme = (ROOT / "alerts" / "README.md").read_text(encoding="utf-8")
    for name in recorded():
        stem = re.sub(r"_(short|long)$", "", name)
        family = re.sub(r":(p50|p90|p99)$", ":{p50,p90,p99}", stem)
        assert stem in readme or family in readme, f"{name} is not described in alerts/README.md"


@pytest.mark.parametrize(("expr", "names"), [
    ("up", {"up"}),
    ('rate(kpr_a_total{job=~"$job",reason="x y"}[5m])', {"kpr_a_total"}),
    ("histogram_quantile(0.99, sum by (namespace, le) (rate(kpr_h_bucket[2m])))", {"kpr_h_bucket"}),
    ("a:b:c > ignoring(datapath) group_left() 1.25 * d:e", {"a:b:c", "d:e"}),
    ("x unless on(namespace, service) y offset 30m", {"x", "y"}),
    ("sum(rate(m_total[5m])) by (node) / 1e3", {"m_total"}),
    ('label_replace(v, "dst", "$1", "src", "(.*)") or vector(1)', {"v"}),
    ("max_over_time(z[1h:5m]) > bool 2 and absent(w)", {"z", "w"}),
    ("count by (node) (count by (node, datapath) (info)) > 1", {"info"}),
])
def test_metric_name_extractor(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
