"""Grafana dashboard-linter's checks (v0.2.0), re-implemented, plus our own conventions.

Linter rules: template-datasource-rule, template-job-rule, template-instance-rule,
template-label-promql-rule, template-on-time-change-reload-rule, panel-datasource-rule,
panel-title-description-rule, panel-units-rule, panel-no-targets-rule, target-promql-rule,
target-rate-interval-rule, target-job-rule, target-instance-rule, target-counter-agg-rule,
uneditable-dashboard. Ours: committed == generated, schemaVersion 39, stable uids, unique ids,
a non-overlapping 24-column grid, no hard-coded job, every used variable defined and every
defined variable used, units on every panel, switch and rollback annotations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.rulegen.dashboards import dashboard_files
from tests.dashboards.promql import (
    grafana_to_promql, label_values_query, metric_names, selectors, wrapped_in,
)
from tests.realstack.harness import PROMTOOL, promtool, require_binary

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "dashboards"
FILES = sorted(DASHBOARD_DIR.glob("*.json"))
UIDS = {"kpr-migration-overview.json": "kpr-migration-overview",
        "kpr-service-drilldown.json": "kpr-service-drilldown",
        "kpr-datapath-health.json": "kpr-datapath-health"}
LINTED_TYPES = {"singlestat", "graph", "table", "timeseries", "stat", "gauge"}
#: Grafana unit ids (a subset of its unit list, the ones a dashboard here may reasonably use).
GRAFANA_UNITS = {
    "none", "short", "percent", "percentunit", "s", "ms", "us", "ns", "dtdurations",
    "bytes", "decbytes", "bps", "Bps", "pps", "ops", "reqps", "rps", "cps", "eventsps",
    "bool", "bool_yes_no", "bool_on_off", "dateTimeAsIso", "x",
}
SCOPE_VARIABLES = {"datasource", "job", "instance"}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


DASHBOARDS = {p.name: _load(p) for p in FILES}
IDS = sorted(DASHBOARDS)


def _panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dash["panels"] if p["type"] != "row"]


def _variables(dash: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dash["templating"]["list"]}


def _variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


def _target_exprs(dash: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and annotation query."""
    for panel in _panels(dash):
        for target in panel["targets"]:
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for annotation in dash["annotations"]["list"]:
        if "expr" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["expr"]


def _exprs(dash: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every target, annotation and query variable."""
    yield from _target_exprs(dash)
    for name, variable in _variables(dash).items():
        if variable["type"] == "query":
            inner = label_values_query(_variable_query(variable))
            assert inner is not None, f"variable {name}: not a label_values() query"
            yield f"variable {name}", inner


# --- generation -----------------------------------------------------------------------------

def test_committed_dashboards_are_what_the_generator_renders() -> None:
    generated = dashboard_files()
    assert sorted(generated) == [p.name for p in FILES]
    for name, text in generated.items():
        assert (DASHBOARD_DIR / name).read_text(encoding="utf-8") == text, (
            f"dashboards/{name} is stale: run `python -m exporter.rulegen`")


# --- dashboard-level ------------------------------------------------------------------------

@pytest.mark.parametrize("name", IDS)
def test_identity_and_schema(name: str) -> None:
    dash = DASHBOARDS[name]
    assert dash["uid"] == UIDS[name]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dash["uid"])
    assert dash["id"] is None
    assert dash["schemaVersion"] == 39
    assert dash["title"] and dash["description"]


@pytest.mark.parametrize("name", IDS)
def test_uneditable_dashboard(name: str) -> None:
    assert DASHBOARDS[name]["editable"] is False


@pytest.mark.parametrize("name", IDS)
def test_grid_is_24_columns_without_overlap(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    ids = [p["id"] for p in DASHBOARDS[name]["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in DASHBOARDS[name]["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        cells = {(g["x"] + dx, g["y"] + dy) for dx in range(g["w"]) for dy in range(g["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


# --- template variables -----------------------------------------------------------------------

@pytest.mark.parametrize("name", IDS)
def test_template_datasource_rule(name: str) -> None:
    variable = _variables(DASHBOARDS[name]).get("datasource")
    assert variable is not None, "no 'datasource' variable"
    assert variable["type"] == "datasource"
    assert variable["query"] == "prometheus"
    assert variable["label"] == "Data source"


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("label", ["job", "instance"])
def test_template_job_and_instance_rules(name: str, label: str) -> None:
    variable = _variables(DASHBOARDS[name]).get(label)
    assert variable is not None, f"no '{label}' variable"
    assert variable["label"] == label
    assert variable["type"] == "query"
    assert variable["datasource"]["uid"] in ("$datasource", "${datasource}")
    assert variable["multi"] is True and variable["includeAll"] is True
    assert variable["allValue"] == ".+"


@pytest.mark.parametrize("name", IDS)
def test_template_on_time_change_reload_rule(name: str) -> None:
    for variable in _variables(DASHBOARDS[name]).values():
        if variable["type"] == "query":
            assert variable["refresh"] == 2, variable["name"]


@pytest.mark.parametrize("name", IDS)
def test_variables_used_are_defined_and_defined_are_used(name: str) -> None:
    dash = DASHBOARDS[name]
    defined = set(_variables(dash))
    text = "\n".join(expr for _, expr in _exprs(dash))
    used = {m for m in re.findall(r"\$\{?(\w+)\}?", text) if not m.startswith("__")}
    assert used <= defined, f"undefined variables: {used - defined}"
    assert defined - SCOPE_VARIABLES <= used, f"unused variables: {defined - SCOPE_VARIABLES - used}"


def test_filters_per_dashboard() -> None:
    expected = {"kpr-migration-overview.json": {"namespace", "service", "node"},
                "kpr-service-drilldown.json": {"namespace", "service"},
                "kpr-datapath-health.json": {"node"}}
    for name, dash in DASHBOARDS.items():
        assert set(_variables(dash)) - SCOPE_VARIABLES == expected[name], name


# --- panels -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", IDS)
def test_panel_rules(name: str) -> None:
    for panel in _panels(DASHBOARDS[name]):
        title = panel.get("title", "")
        assert title, "panel-title-description-rule: a panel without a title"
        assert panel.get("description"), f"panel-title-description-rule: {title}"
        assert panel["datasource"]["uid"] in ("$datasource", "${datasource}"), \
            f"panel-datasource-rule: {title}"
        assert panel["targets"], f"panel-no-targets-rule: {title}"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in ("$datasource", "${datasource}"), title
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit in GRAFANA_UNITS, f"panel-units-rule: {title} has unit {unit!r}"


# --- targets ----------------------------------------------------------------------------------

def _metric_occurrences(dash: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for where, expr in _target_exprs(dash):
        for metric in metric_names(expr):
            yield where, expr, metric


@pytest.mark.parametrize("name", IDS)
def test_target_rate_interval_rule(name: str) -> None:
    for where, expr in _target_exprs(DASHBOARDS[name]):
        ranges = re.findall(r"\[([^\]]*)\]", expr)
        assert all(r == "$__rate_interval" for r in ranges), f"{where}: ranges {ranges}"
        calls = len(re.findall(r"\b(?:rate|irate|increase|changes)\(", expr))
        assert calls == len(ranges), f"{where}: every rate/irate/increase needs [$__rate_interval]"


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("label", ["job", "instance"])
def test_target_job_and_instance_rules(name: str, label: str) -> None:
    for where, expr, metric in _metric_occurrences(DASHBOARDS[name]):
        for matchers in selectors(expr, metric):
            assert f'{label}=~"${label}"' in matchers, f"{where}: {metric}{matchers}"


@pytest.mark.parametrize("name", IDS)
def test_no_hard_coded_job(name: str) -> None:
    for where, expr in _exprs(DASHBOARDS[name]):
        for value in re.findall(r'\bjob\s*=~?\s*"([^"]*)"', expr):
            assert value == "$job", f"{where}: job={value!r}"


@pytest.mark.parametrize("name", IDS)
def test_target_counter_agg_rule(name: str) -> None:
    for where, expr, metric in _metric_occurrences(DASHBOARDS[name]):
        if metric.endswith(("_total", "_bucket")):
            for fn in wrapped_in(expr, metric):
                assert fn in ("rate", "irate", "increase"), f"{where}: {metric} inside {fn!r}"


def test_target_promql_and_template_label_promql_rules(tmp_path: Path) -> None:
    """Every expression parses: promtool checks them as recording rules."""
    binary = require_binary(PROMTOOL)
    rules = []
    for name, dash in DASHBOARDS.items():
        for i, (where, expr) in enumerate(_exprs(dash)):
            rules.append({"record": f"dashboard:check:{len(rules)}", "expr": grafana_to_promql(expr),
                          "labels": {"where": f"{name} {where}"[:200]}})
    path = tmp_path / "dashboard-exprs.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}),
                    encoding="utf-8")
    result = promtool("check", "rules", str(path), binary=binary)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


# --- annotations ------------------------------------------------------------------------------

def test_overview_annotates_switches_and_rollbacks() -> None:
    annotations = {a["name"]: a for a in DASHBOARDS["kpr-migration-overview.json"]["annotations"]["list"]}
    assert "kpr_node_datapath_switch_timestamp_seconds" in annotations["Datapath switches"]["expr"]
    assert "kpr_rollbacks_total" in annotations["Rollbacks"]["expr"]
    for annotation in annotations.values():
        if "expr" in annotation:
            assert annotation["datasource"]["uid"] == "${datasource}"
