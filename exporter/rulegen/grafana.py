"""Small builders for Grafana's classic dashboard JSON (schemaVersion 39).

Conventions every dashboard gets from here: the data source is the ``datasource`` template
variable, every PromQL selector carries ``job=~"$job"`` and ``instance=~"$instance"`` (never a
hard-coded job), rates use ``$__rate_interval``, every panel has a title, a description and a
unit, variables refresh on time-range change, and panels are laid out left to right in rows
of 24 columns. Pure functions returning plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

SCHEMA_VERSION: Final = 39
DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}
SCOPE: Final = ('job=~"$job"', 'instance=~"$instance"')
SERVICE: Final = SCOPE + ('namespace=~"$namespace"', 'service=~"$service"')
NODE: Final = SCOPE + ('node=~"$node"',)
RATE: Final = "$__rate_interval"


def sel(metric: str, scope: Sequence[str] = SCOPE, *matchers: str) -> str:
    """``metric{job=~"$job",instance=~"$instance",...}``."""
    return f"{metric}{{{','.join((*scope, *matchers))}}}"


def rate(metric: str, scope: Sequence[str] = SCOPE, *matchers: str, fn: str = "rate") -> str:
    return f"{fn}({sel(metric, scope, *matchers)}[{RATE}])"


def summed_rate(metric: str, by: Sequence[str], scope: Sequence[str] = SCOPE,
                *matchers: str, fn: str = "rate") -> str:
    return f"sum by ({', '.join(by)}) ({rate(metric, scope, *matchers, fn=fn)})"


def quantile(q: float, histogram: str, by: Sequence[str], scope: Sequence[str] = SCOPE,
             *matchers: str) -> str:
    return (f"histogram_quantile({q:g}, "
            f"{summed_rate(histogram + '_bucket', (*by, 'le'), scope, *matchers)})")


# --- template variables --------------------------------------------------------------------

def datasource_variable() -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
            "options": []}


def query_variable(name: str, label: str, query: str, *, multi: bool = True,
                   include_all: bool = True) -> dict[str, Any]:
    variable: dict[str, Any] = {
        "name": name, "label": label, "type": "query", "datasource": dict(DATASOURCE),
        "query": {"query": query, "refId": f"{name}-variable"}, "definition": query,
        "refresh": 2, "multi": multi, "includeAll": include_all, "sort": 1,
        "current": {}, "hide": 0, "regex": "", "options": [],
    }
    if include_all:
        variable["allValue"] = ".+"
    return variable


def scope_variables(anchor: str) -> list[dict[str, Any]]:
    """``datasource``, ``job`` and ``instance``; ``anchor`` is a metric every exporter exposes."""
    return [
        datasource_variable(),
        query_variable("job", "job", f"label_values({anchor}, job)"),
        query_variable("instance", "instance", f'label_values({anchor}{{job=~"$job"}}, instance)'),
    ]


# --- panels ----------------------------------------------------------------------------------

@dataclass
class Target:
    expr: str
    legend: str = ""
    instant: bool = False

    def to_json(self, ref: str, fmt: str) -> dict[str, Any]:
        return {"datasource": dict(DATASOURCE), "refId": ref, "expr": self.expr,
                "legendFormat": self.legend, "range": not self.instant,
                "instant": self.instant, "format": fmt}


@dataclass
class Panel:
    """One panel; ``width`` in grid columns (of 24), ``height`` in rows of 30 px."""

    kind: str  # timeseries | stat | table | state-timeline | heatmap
    title: str
    description: str
    unit: str
    targets: Sequence[Target]
    width: int = 12
    height: int = 8
    mappings: Sequence[dict[str, Any]] = ()
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    transformations: Sequence[dict[str, Any]] = ()
    min: float | None = None
    max: float | None = None

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        fmt = {"table": "table", "heatmap": "heatmap"}.get(self.kind, "time_series")
        defaults: dict[str, Any] = {"unit": self.unit, "mappings": list(self.mappings),
                                    "custom": dict(self.custom)}
        if self.min is not None:
            defaults["min"] = self.min
        if self.max is not None:
            defaults["max"] = self.max
        panel: dict[str, Any] = {
            "id": panel_id, "type": self.kind, "title": self.title,
            "description": self.description, "datasource": dict(DATASOURCE),
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": dict(self.options) or _default_options(self.kind),
            "targets": [t.to_json(chr(ord("A") + i), fmt) for i, t in enumerate(self.targets)],
        }
        if self.transformations:
            panel["transformations"] = list(self.transformations)
        return panel


def _default_options(kind: str) -> dict[str, Any]:
    if kind == "timeseries":
        return {"legend": {"displayMode": "table", "placement": "bottom",
                           "calcs": ["lastNotNull", "max"], "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"}}
    if kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value", "graphMode": "area", "textMode": "auto",
                "justifyMode": "auto", "orientation": "auto"}
    if kind == "state-timeline":
        return {"showValue": "auto", "mergeValues": True, "rowHeight": 0.9,
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
    if kind == "heatmap":
        return {"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1,
                "color": {"mode": "scheme", "scheme": "Oranges"},
                "tooltip": {"show": True, "yHistogram": True}}
    return {"showHeader": True, "cellHeight": "sm"}


def value_map(values: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """A value mapping from ``(value, text, color)`` triples ("NaN" maps the special value)."""
    plain: dict[str, Any] = {}
    special = []
    for value, text, color in values:
        if value == "NaN":
            special.append({"type": "special", "options": {
                "match": "nan", "result": {"text": text, "color": color}}})
        else:
            plain[value] = {"text": text, "color": color, "index": len(plain)}
    return ([{"type": "value", "options": plain}] if plain else []) + special


@dataclass
class Row:
    title: str
    panels: Sequence[Panel]


def layout(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Rows and their panels with ids and grid positions, flowing left to right."""
    out: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row in rows:
        out.append({"id": next_id, "type": "row", "title": row.title, "collapsed": False,
                    "panels": [], "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}})
        next_id, y = next_id + 1, y + 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            out.append(panel.to_json(next_id, x, y))
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return out


def prometheus_annotation(name: str, expr: str, *, title: str, text: str, tags: str,
                          color: str) -> dict[str, Any]:
    return {"name": name, "datasource": dict(DATASOURCE), "enable": True, "hide": False,
            "iconColor": color, "expr": expr, "step": "30s", "titleFormat": title,
            "textFormat": text, "tagKeys": tags, "useValueForTime": False}


def dashboard(*, uid: str, title: str, description: str, tags: Sequence[str],
              variables: Sequence[dict[str, Any]], rows: Sequence[Row],
              annotations: Sequence[dict[str, Any]] = (),
              links: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    builtin = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
               "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
               "name": "Annotations & Alerts", "type": "dashboard"}
    return {
        "uid": uid, "id": None, "title": title, "description": description,
        "tags": list(tags), "editable": False, "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "timezone": "",
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "timepicker": {}, "links": list(links),
        "annotations": {"list": [builtin, *annotations]},
        "templating": {"list": list(variables)},
        "panels": layout(rows),
    }
