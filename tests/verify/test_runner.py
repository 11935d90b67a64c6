"""Running checks from a node: errors of the probe itself are ``error`` results, never a
crash and never a verdict on the datapath; failures are logged with what was expected."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from exporter.model import EBPF
from exporter.verify import results as r
from exporter.verify.checks import REGISTRY, ProbeContext
from exporter.verify.emulator.scenario import NAMED
from exporter.verify.net import ProbeError
from exporter.verify.runner import UnknownCheck, run_checks
from tests.verify.conftest import context


async def _cannot_bind(ctx: ProbeContext) -> list[r.CheckResult]:
    raise ProbeError("cannot bind source 127.9.9.9: Cannot assign requested address")


async def _buggy(ctx: ProbeContext) -> list[r.CheckResult]:
    raise KeyError("oops")


async def test_probe_side_problems_are_error_results(emulate: Callable[..., Any],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    cluster = await emulate({"nodes": [{"name": "a"}, {"name": "b"}]})
    registry = {**REGISTRY, r.HOSTPORT: _cannot_bind, r.SESSION_AFFINITY: _buggy}
    with caplog.at_level(logging.WARNING):
        got = await run_checks(context(cluster, "a"),
                               [r.HOSTPORT, r.SESSION_AFFINITY, r.CLUSTERIP_POD],
                               registry=registry)
    assert [(x.check, x.result) for x in got] == [
        (r.HOSTPORT, r.ERROR), (r.SESSION_AFFINITY, r.ERROR), (r.CLUSTERIP_POD, r.PASS)]
    assert "cannot bind source" in got[0].observed and "internal error" in got[1].observed
    assert "check session-affinity from a raised" in caplog.text


async def test_unknown_checks_are_refused_before_anything_runs(
        emulate: Callable[..., Any]) -> None:
    cluster = await emulate({"nodes": [{"name": "a"}]})
    with pytest.raises(UnknownCheck, match="unknown check\\(s\\) nodeport-everywhere"):
        await run_checks(context(cluster, "a"), [r.CLUSTERIP_POD, "nodeport-everywhere"])


async def test_without_a_load_balancer_address_the_check_has_no_result(
        emulate: Callable[..., Any]) -> None:
    cluster = await emulate({"nodes": [{"name": "a"}], "loadbalancer": False})
    assert await run_checks(context(cluster, "a"), [r.LOADBALANCER]) == []


async def test_the_canary_scenario_breaks_two_checks_on_its_canary_only(
        emulate: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    cluster = await emulate(dict(NAMED["canary-datapath-faults"]))
    results = []
    with caplog.at_level(logging.WARNING):
        for node in cluster.nodes:
            results += await run_checks(context(cluster, node))
    bad = [x for x in results if x.result != r.PASS]
    assert {x.check for x in bad} == {r.NODEPORT_LOOPBACK, r.SESSION_AFFINITY}
    assert {x.served_by for x in bad} == {("node-b", EBPF)}
    passed_elsewhere = {x.check for x in results if x.result == r.PASS and x.node != "node-b"}
    assert passed_elsewhere == set(r.CHECKS)
    for x in bad:  # each failure logged with address, expected and observed outcome
        assert x.describe() in caplog.text and x.address in caplog.text
