"""``kpr-exporter verify``: the matrix read back from the probes' /metrics, its exit codes,
stale and missing results, and ``--wait`` for a fresh full round on an injected clock."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter.model import EBPF, KUBE_PROXY
from exporter.verify import matrix as mx
from exporter.verify import readback as rb
from exporter.verify import results as r
from exporter.verify.metrics import ProbeMetrics, ProbeStatus
from exporter.verify.verify_cmd import cmd_verify

NODES = {"node-a": KUBE_PROXY, "node-b": EBPF}


def result(check: str, node: str, outcome: str = r.PASS, seconds: float | None = 0.0004,
           datapath: str = "") -> r.CheckResult:
    return r.CheckResult(check, node, datapath or NODES[node], "", "10.96.0.10:80", outcome,
                         "an answer", "an answer" if outcome == r.PASS else "refused", seconds)


class FakeProbe:
    """One probe's registry, fed results by hand; ``text`` is its exposition."""

    def __init__(self, node: str, *, at: float = 1000.0) -> None:
        self.registry = CollectorRegistry()
        self.metrics = ProbeMetrics(self.registry)
        self.status = ProbeStatus(node, self.registry)
        self.at = at

    def round(self, results: list[r.CheckResult], datapaths: dict[str, str] = NODES) -> None:
        self.metrics.observe(results)
        self.status.round_done(self.at, 1, {}, datapaths)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def every_check_passing(node: str, datapath: str = "") -> list[r.CheckResult]:
    return [result(c, node, datapath=datapath) for c in r.CHECKS]


async def run_verify(probe: FakeProbe, *, now: float = 1010.0, fmt: str = "table",
                     max_age: float = 300.0) -> tuple[int, str]:
    out = io.StringIO()

    async def fetch(url: str) -> str:
        assert url == "http://probe.invalid/metrics"
        return probe.text()

    code = await cmd_verify(["http://probe.invalid"], fmt=fmt, wait=0.0, max_age=max_age,
                            out=out, err=io.StringIO(), fetch=fetch, clock=lambda: now)
    return code, out.getvalue()


async def test_all_pass_is_exit_0_and_a_failure_exit_1_on_its_node_only() -> None:
    probe = FakeProbe("node-a")
    probe.round(every_check_passing("node-a") + every_check_passing("node-b"))
    code, text = await run_verify(probe)
    assert code == 0, text
    assert "node-b (ebpf)" in text and "FAIL" not in text
    probe.round([result(r.NODEPORT_LOOPBACK, "node-b", r.FAIL, None)])
    code, text = await run_verify(probe, fmt="json")
    doc = json.loads(text)
    assert code == 1 and doc["exit_code"] == 1 and doc["problems"] == []
    failing = [(c["check"], c["node"]) for c in doc["cells"] if c["status"] == r.FAIL]
    assert failing == [(r.NODEPORT_LOOPBACK, "node-b")]
    cell = next(c for c in doc["cells"] if c["status"] == r.FAIL)
    assert cell["failures"] == [
        "nodeport-loopback from node-b [ebpf] to its Service path: fail: expected pass, "
        "observed 1 of 2 results failed (the probes' logs have each address)"]


async def test_a_missing_result_is_exit_2_with_its_reason() -> None:
    probe = FakeProbe("node-a")
    probe.round([x for x in every_check_passing("node-a") + every_check_passing("node-b")
                 if (x.check, x.node) != (r.HOSTPORT, "node-a")])
    code, text = await run_verify(probe)
    assert code == 2
    assert "hostport on node-a: no result" in text


async def test_a_stale_probe_is_exit_2_even_when_everything_passed() -> None:
    probe = FakeProbe("node-a", at=1000.0)
    probe.round(every_check_passing("node-a") + every_check_passing("node-b"))
    assert (await run_verify(probe, now=1200.0))[0] == 0
    code, text = await run_verify(probe, now=1400.0, max_age=300.0)
    assert code == 2
    assert "probe on node-a (http://probe.invalid): last round 400s ago" in text
    empty = FakeProbe("node-a")
    code, text = await run_verify(empty)
    assert code == 2 and "probe on node-a (http://probe.invalid) has not completed a round" in text


async def test_only_results_on_a_nodes_current_datapath_count() -> None:
    probe = FakeProbe("node-a")
    probe.round([result(r.NODEPORT_LOOPBACK, "node-b", r.FAIL, None, datapath=KUBE_PROXY)])
    probe.round(every_check_passing("node-a") + every_check_passing("node-b"))
    matrix = rb.to_matrix(rb.parse(probe.text()))
    assert matrix.datapaths == NODES
    assert mx.exit_code(matrix) == 0  # the failure was on node-b's former datapath


def test_connect_times_come_from_the_buckets() -> None:
    probe = FakeProbe("node-a")
    probe.round([result(r.CLUSTERIP_POD, "node-a", seconds=s) for s in (0.0002, 0.0002, 0.003)])
    cell = rb.to_matrix(rb.parse(probe.text())).cell(r.CLUSTERIP_POD, "node-a")
    # the buckets around 0.2 ms and 3 ms: worst is the upper bound of the top bucket
    assert cell.worst is not None and 0.003 <= cell.worst <= 0.005
    assert cell.typical is not None and 0.0001 <= cell.typical <= 0.00025
    assert rb._times({}) == (None, None)
    assert rb._times({0.001: 0.0, 0.002: 2.0, float("inf"): 4.0}) == (0.002, 0.002)


def test_since_keeps_only_later_observations_and_survives_a_restart() -> None:
    probe = FakeProbe("node-a")
    probe.round([result(r.NODEPORT_LOOPBACK, "node-b", r.FAIL, None)])
    before = rb.parse(probe.text())
    probe.round(every_check_passing("node-a") + every_check_passing("node-b"))
    fresh = rb.parse(probe.text()).since(before)
    assert mx.exit_code(rb.to_matrix(fresh)) == 0
    assert mx.exit_code(rb.to_matrix(rb.parse(probe.text()))) == 1  # everything collected
    probe.round(every_check_passing("node-a"))
    restarted = FakeProbe("node-a")  # its counter (1) below the old one (2): counted from 0
    restarted.round([result(r.CLUSTERIP_POD, "node-a")])
    again = rb.parse(restarted.text()).since(rb.parse(probe.text()))
    assert again.counts[(r.CLUSTERIP_POD, "node-a", KUBE_PROXY, r.PASS)] == 1


def test_a_partial_read_has_the_same_verdict_without_the_connect_times() -> None:
    probe = FakeProbe("node-a")
    probe.round([result(r.NODEPORT_LOOPBACK, "node-b", r.FAIL, None)]
                + every_check_passing("node-a"))
    probe.status.round_done(1001.0, 1, {(r.HOSTPORT, "node-b"): 'no "hostPort" pod'}, NODES)
    full = rb.parse(probe.text())
    verdict = rb.parse(probe.text(), only=rb.VERDICT)
    assert verdict.buckets == {} and full.buckets
    assert (verdict.counts, verdict.probes, verdict.not_applicable, verdict.datapaths) == (
        full.counts, full.probes, full.not_applicable, full.datapaths)

    def cells(m: mx.Matrix) -> dict[Any, Any]:
        return {k: (c.status, c.reason, c.failures) for k, c in m.cells.items()}

    assert cells(rb.to_matrix(verdict)) == cells(rb.to_matrix(full))
    assert mx.exit_code(rb.to_matrix(verdict)) == 1
    state = rb.parse(probe.text(), only=rb.STATE)
    assert state.probes == full.probes and not state.counts and not state.datapaths


def test_an_exposition_that_is_not_one_is_an_error() -> None:
    with pytest.raises(rb.ReadbackError):
        rb.parse("kpr_probe_rounds_total{probe_node=\"a\" 1\n")


async def test_an_unreadable_url_is_exit_2_with_the_address() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = io.StringIO()
    code = await cmd_verify([f"http://127.0.0.1:{port}"], fmt="table", wait=0.0,
                            max_age=300.0, out=io.StringIO(), err=err)
    assert code == 2
    assert f"cannot read http://127.0.0.1:{port}/metrics" in err.getvalue()


async def test_an_exposition_without_probes_is_exit_2() -> None:
    out = io.StringIO()

    async def fetch(url: str) -> str:
        return "# HELP kpr_hubble_up x\n# TYPE kpr_hubble_up gauge\nkpr_hubble_up 1\n"

    for wait in (0.0, 30.0):
        code = await cmd_verify(["http://exporter.invalid"], fmt="table", wait=wait,
                                max_age=300.0, out=out, err=io.StringIO(), fetch=fetch,
                                clock=lambda: 0.0)
        assert code == 2
    assert out.getvalue().count("no probe reported (no kpr_probe_rounds_total)") == 2
