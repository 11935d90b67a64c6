"""The overview's "claims vs measured" table, evaluated by promtool on sample series: one row
per claim with eBPF's change relative to kube-proxy nodes, and no row (not a zero) for a
claim without data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.dashboards.promql import grafana_to_promql
from tests.realstack.harness import PROMTOOL, promtool, require_binary

OVERVIEW = Path(__file__).resolve().parents[2] / "dashboards" / "kpr-migration-overview.json"
SCOPE = 'job="kpr",instance="e:9977"'


def _claims_expr() -> str:
    panels = json.loads(OVERVIEW.read_text(encoding="utf-8"))["panels"]
    found = [p for p in panels if p["title"].startswith("Claims vs measured now")]
    assert len(found) == 1 and found[0]["type"] == "table"
    assert found[0]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    return grafana_to_promql(found[0]["targets"][0]["expr"])


def _s(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{SCOPE},{labels}}}", "values": values}


def _buckets(name: str, labels: str, cumulative: dict[str, int]) -> list[dict[str, str]]:
    return [_s(f"{name}_bucket", f'{labels},le="{le}"', f"0+{n}x30") for le, n in cumulative.items()]


def _series(with_programming: bool) -> list[dict[str, Any]]:
    ebpf, kp = 'datapath="ebpf",node="node-b"', 'datapath="kube-proxy",node="node-a"'
    series = [
        # Throughput: 1 byte against half a byte per second of streaming (exact in floats).
        _s("kpr_probe_load_bytes_total", ebpf, "0+60x30"),
        _s("kpr_probe_load_seconds_total", ebpf, "0+60x30"),
        _s("kpr_probe_load_bytes_total", kp, "0+30x30"),
        _s("kpr_probe_load_seconds_total", kp, "0+60x30"),
        # CPU: 0.025 against 0.05 cores per node (1.5 and 3 CPU seconds a minute).
        _s("kpr_node_service_datapath_cpu_seconds_total", ebpf + ',source="cilium-agent"',
           "0+1.5x30"),
        _s("kpr_node_service_datapath_cpu_seconds_total", kp + ',source="kube-proxy"', "0+3x30"),
    ]
    service = 'namespace="shop",service="cart"'
    # Handshakes: every eBPF one below 1 ms (median 0.5 ms), kube-proxy's in 1-2 ms (1.5 ms).
    series += _buckets("kpr_service_connect_duration_seconds", f'{service},datapath="ebpf"',
                       {"0.001": 10, "0.002": 10, "+Inf": 10})
    series += _buckets("kpr_service_connect_duration_seconds", f'{service},datapath="kube-proxy"',
                       {"0.001": 0, "0.002": 10, "+Inf": 10})
    if with_programming:
        # Programming: the agent within 5 ms (median 2.5 ms), kube-proxy in 1-2 s (1.5 s).
        series += _buckets("kpr_node_programming_duration_seconds", ebpf + ',source="cilium-agent"',
                           {"0.005": 10, "1": 10, "+Inf": 10})
        series += _buckets("kpr_node_programming_duration_seconds", kp + ',source="kube-proxy"',
                           {"0.005": 0, "1": 0, "2": 10, "+Inf": 10})
    return series


def _run(tmp_path: Path, with_programming: bool, expected: list[dict[str, Any]]) -> None:
    binary = require_binary(PROMTOOL)
    (tmp_path / "empty.yaml").write_text("groups: []\n", encoding="utf-8")
    doc = {"rule_files": ["empty.yaml"], "evaluation_interval": "1m",
           "tests": [{"interval": "1m", "input_series": _series(with_programming),
                      "promql_expr_test": [{"expr": _claims_expr(), "eval_time": "20m",
                                            "exp_samples": expected}]}]}
    (tmp_path / "claims_test.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True),
                                               encoding="utf-8")
    result = promtool("test", "rules", "claims_test.yaml", binary=binary, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


COMMON = [
    {"labels": '{claim="throughput +30–40 %"}', "value": 1.0},
    {"labels": '{claim="latency −30 % (handshake p50)"}', "value": 0.5 / 1.5 - 1},
    {"labels": '{claim="lower CPU (per node)"}', "value": -0.5},
]


def test_each_claim_is_a_row_with_ebpfs_relative_change(tmp_path: Path) -> None:
    _run(tmp_path, True, [*COMMON, {"labels": '{claim="faster programming (p50)"}',
                                    "value": 0.0025 / 1.5 - 1}])


def test_a_claim_without_data_has_no_row(tmp_path: Path) -> None:
    _run(tmp_path, False, COMMON)
