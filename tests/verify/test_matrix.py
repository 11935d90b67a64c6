"""The checks × nodes matrix: cells, reasons, connect times, exit codes, table and JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from exporter.model import EBPF, KUBE_PROXY
from exporter.verify import matrix as mx
from exporter.verify import results as r
from exporter.verify.emulator.scenario import NAMED
from exporter.verify.runner import run_checks
from tests.verify.conftest import context

DATAPATHS = {"node-a": KUBE_PROXY, "node-b": EBPF}


def _res(check: str, node: str, result: str, took: float | None = 0.001, target: str = "",
         observed: str = "an answer") -> r.CheckResult:
    return r.CheckResult(check, node, DATAPATHS[node], target, "10.0.0.1:80", result,
                         "an answer", observed, took, DATAPATHS.get(target, ""))


def test_cells_take_the_worst_outcome_and_the_serving_node() -> None:
    results = [_res(c, n, r.PASS) for c in r.CHECKS for n in DATAPATHS]
    results += [_res(r.NODEPORT_REMOTE, "node-a", r.FAIL, None, target="node-b",
                     observed="refused"),
                _res(r.CLUSTERIP_POD, "node-a", r.PASS, 0.003)]
    m = mx.build(results, DATAPATHS)
    assert m.cell(r.NODEPORT_REMOTE, "node-b").status == r.FAIL  # charged to the target
    assert m.cell(r.NODEPORT_REMOTE, "node-a").status == r.PASS
    pod = m.cell(r.CLUSTERIP_POD, "node-a")
    assert (pod.worst, pod.typical) == (0.003, 0.002)
    assert mx.exit_code(m) == 1
    table = mx.render_table(m)
    assert "node-b (ebpf)" in table and "FAIL" in table and "observed refused" in table


def test_missing_results_and_probe_errors_are_no_result_with_a_reason() -> None:
    results = [_res(c, "node-a", r.PASS) for c in r.CHECKS]
    results.append(_res(r.HOSTPORT, "node-b", r.ERROR, None, observed="cannot bind source"))
    m = mx.build(results, DATAPATHS)
    assert mx.exit_code(m) == 2
    assert m.cell(r.HOSTPORT, "node-b").reason == "probe error: cannot bind source"
    assert m.cell(r.CLUSTERIP_POD, "node-b").reason == "no result"
    data = json.loads(mx.to_json(m))
    assert data["exit_code"] == 2 and len(data["cells"]) == 2 * len(r.CHECKS)
    assert {"name": "node-b", "datapath": EBPF} in data["nodes"]


def test_all_pass_is_exit_0_and_not_applicable_cells_do_not_count() -> None:
    m = mx.build([_res(c, n, r.PASS) for c in r.CHECKS for n in DATAPATHS], DATAPATHS)
    assert mx.exit_code(m) == 0 and "details:" not in mx.render_table(m)
    partial = [_res(c, n, r.PASS) for c in r.CHECKS for n in DATAPATHS
               if (c, n) != (r.HOSTPORT, "node-b")]
    assert mx.exit_code(mx.build(partial, DATAPATHS)) == 2
    skipped = mx.build(partial, DATAPATHS, skip={(r.HOSTPORT, "node-b"): "no hostPort pod"})
    assert mx.exit_code(skipped) == 0
    assert "hostport on node-b: no hostPort pod" in mx.render_table(skipped)


async def test_the_canary_scenario_fails_exactly_two_cells(emulate: Callable[..., Any]) -> None:
    cluster = await emulate(dict(NAMED["canary-datapath-faults"]))
    results = []
    for node in cluster.nodes:
        results += await run_checks(context(cluster, node))
    m = mx.build(results, cluster.datapaths(), skip=mx.not_applicable(cluster.targets()))
    failed = {key for key, cell in m.cells.items() if cell.status == r.FAIL}
    assert failed == {(r.NODEPORT_LOOPBACK, "node-b"), (r.SESSION_AFFINITY, "node-b")}
    rest = {cell.status for key, cell in m.cells.items() if key not in failed}
    assert rest == {r.PASS, mx.NOT_APPLICABLE}  # node-c runs no eTP=Local endpoint
    assert m.cell(r.ETP_LOCAL_SOURCE_IP, "node-c").status == mx.NOT_APPLICABLE
    assert mx.exit_code(m) == 1
