"""The overview's migration annotations, evaluated by promtool on sample series: a mark when
the migration moves to another step (named by the step it moved to), and one when it
starts another batch (named by its number); nothing while it stays put."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from exporter.rulegen.dashboard_migration import migration_annotations
from tests.dashboards.promql import grafana_to_promql
from tests.realstack.harness import PROMTOOL, promtool, require_binary

OVERVIEW = Path(__file__).resolve().parents[2] / "dashboards" / "kpr-migration-overview.json"


def _annotations() -> dict[str, dict[str, Any]]:
    found = json.loads(OVERVIEW.read_text(encoding="utf-8"))["annotations"]["list"]
    return {a["name"]: a for a in found if "expr" in a}


def test_the_overview_carries_the_generated_migration_annotations() -> None:
    shown = _annotations()
    for annotation in migration_annotations():
        assert shown[annotation["name"]] == annotation
        assert annotation["datasource"]["uid"] == "${datasource}"
    assert {"Migration steps", "Migration batches"} <= set(shown)


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in {"job": "kpr", "instance": "c:9977",
                                                 **labels}.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _case(expr: str, minute: int, samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {"expr": expr, "eval_time": f"{minute}m", "exp_samples": samples}


def test_marks_at_step_and_batch_changes_only(tmp_path: Path) -> None:
    binary = require_binary(PROMTOOL)
    exprs = {a["name"]: grafana_to_promql(a["expr"]) for a in _annotations().values()}
    steps, batches = exprs["Migration steps"], exprs["Migration batches"]
    # minute:      0 1 2 3 4 5 6 7 8 ... 20
    doc = {
        "rule_files": ["empty.yaml"], "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                _series("kpr_migration_step", "1x4 0x16", step="pending"),
                _series("kpr_migration_step", "0x4 1x1 0x15", step="preflight"),
                _series("kpr_migration_step", "0x6 1x14", step="label"),
                _series("kpr_migration_batch", "0x6 1x6 2x8"),
            ],
            "promql_expr_test": [
                _case(steps, 6, [{"labels": '{step="preflight"}', "value": 1}]),
                _case(steps, 8, [{"labels": '{step="label"}', "value": 1}]),
                _case(steps, 20, []),
                _case(batches, 3, []),
                _case(batches, 8, [{"labels": '{batch="1"}', "value": 1}]),
                _case(batches, 15, [{"labels": '{batch="2"}', "value": 1}]),
                _case(batches, 20, []),
            ],
        }],
    }
    (tmp_path / "empty.yaml").write_text("groups: []\n", encoding="utf-8")
    (tmp_path / "annotations_test.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = promtool("test", "rules", "annotations_test.yaml", binary=binary, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
