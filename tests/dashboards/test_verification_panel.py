"""The overview's verification matrix over time, evaluated by promtool on sample series:
a cell is fail (2) when any result failed in the interval, pass (1) when results passed,
error (0) when the probe only erred, and absent without results."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.dashboards.promql import grafana_to_promql
from tests.realstack.harness import PROMTOOL, promtool, require_binary

OVERVIEW = Path(__file__).resolve().parents[2] / "dashboards" / "kpr-migration-overview.json"


def _matrix_expr() -> str:
    panels = json.loads(OVERVIEW.read_text(encoding="utf-8"))["panels"]
    found = [p for p in panels if p["title"] == "Verification matrix over time"]
    assert len(found) == 1 and found[0]["type"] == "state-timeline"
    names = {m["options"][k]["text"] for m in found[0]["fieldConfig"]["defaults"]["mappings"]
             for k in m["options"]}
    assert names == {"fail", "pass", "error"}
    return grafana_to_promql(found[0]["targets"][0]["expr"])


def _series(check: str, node: str, result: str, values: str) -> dict[str, str]:
    return {"series": f'kpr_probe_checks_total{{job="kpr",instance="e:9977",check="{check}",'
                      f'node="{node}",datapath="ebpf",result="{result}"}}', "values": values}


def test_the_matrix_marks_fail_pass_error_and_nothing(tmp_path: Path) -> None:
    binary = require_binary(PROMTOOL)
    (tmp_path / "empty.yaml").write_text("groups: []\n", encoding="utf-8")
    doc = {
        "rule_files": ["empty.yaml"], "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                _series("hostport", "node-a", "pass", "0+2x10"),
                _series("hostport", "node-a", "fail", "0+1x10"),
                _series("hostport", "node-b", "pass", "0+2x10"),
                _series("clusterip-pod", "node-a", "error", "0+2x10"),
                _series("clusterip-pod", "node-b", "pass", "5x10"),  # no result lately
            ],
            "promql_expr_test": [{
                "expr": _matrix_expr(), "eval_time": "10m",
                "exp_samples": [
                    {"labels": '{check="hostport",node="node-a"}', "value": 2},
                    {"labels": '{check="hostport",node="node-b"}', "value": 1},
                    {"labels": '{check="clusterip-pod",node="node-a"}', "value": 0},
                ],
            }],
        }],
    }
    (tmp_path / "matrix_test.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = promtool("test", "rules", "matrix_test.yaml", binary=binary, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
