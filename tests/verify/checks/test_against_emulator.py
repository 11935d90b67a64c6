"""Every check against the emulated datapath: a healthy datapath passes every check, and
each fault is caught by its own check and by no other, on the faulty node only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from exporter.model import EBPF, KUBE_PROXY
from exporter.verify import results as r
from exporter.verify.emulator.scenario import FAULTS
from exporter.verify.runner import run_checks
from tests.verify.conftest import LIMITS, context, switch_round

FAULTY = "node-b"


def _cluster(faults: tuple[str, ...] = ()) -> dict[str, Any]:
    """node-b starts on kube-proxy and its eBPF datapath has ``faults``; node-c runs eBPF."""
    return {"nodes": [
        {"name": "node-a"},
        {"name": FAULTY, "datapath": KUBE_PROXY, "faults": {EBPF: list(faults)}},
        {"name": "node-c", "datapath": EBPF},
    ]}


def _not_passed(results: list[r.CheckResult]) -> list[r.CheckResult]:
    return [res for res in results if res.result != r.PASS]


async def test_a_healthy_datapath_passes_every_check(emulate: Callable[..., Any]) -> None:
    cluster = await emulate(_cluster())
    results = await switch_round(cluster, FAULTY)
    assert {res.check for res in results} == set(r.CHECKS)  # the full vocabulary ran
    assert not _not_passed(results), "\n".join(x.describe() for x in _not_passed(results))
    assert cluster.datapath(FAULTY) == EBPF
    assert {res.datapath for res in results if res.node == "node-c"} == {EBPF}
    handshakes = [res.connect_seconds for res in results if res.check != r.NO_ENDPOINTS_REJECT]
    assert all(t is not None and 0 <= t < LIMITS.timeout for t in handshakes)


async def test_faults_of_a_datapath_a_node_does_not_run_change_nothing(
        emulate: Callable[..., Any]) -> None:
    cluster = await emulate(_cluster(tuple(FAULTS)))
    results = []
    for node in cluster.nodes:
        results += await run_checks(context(cluster, node))
    assert len({res.check for res in results}) == len(r.CHECKS)
    assert not _not_passed(results), "\n".join(x.describe() for x in _not_passed(results))


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_each_fault_is_caught_by_its_check_only(emulate: Callable[..., Any],
                                                      fault: str) -> None:
    cluster = await emulate(_cluster((fault,)))
    results = await switch_round(cluster, FAULTY)
    assert {res.check for res in results} == set(r.CHECKS)
    bad = _not_passed(results)
    assert {res.check for res in bad} == {FAULTS[fault]}, "\n".join(x.describe() for x in bad)
    assert {res.result for res in bad} == {r.FAIL}
    # every failure is charged to the faulty node's eBPF datapath, whichever probe saw it
    assert {res.served_by for res in bad} == {(FAULTY, EBPF)}
    for res in bad:
        assert res.address and res.expected and res.observed
        assert res.observed not in res.expected


async def test_a_switch_back_restores_the_healthy_behaviour(emulate: Callable[..., Any]) -> None:
    cluster = await emulate(_cluster(("nodeport-loopback-refused", "no-endpoints-drop")))
    await cluster.switch(FAULTY, EBPF)
    broken = await run_checks(context(cluster, FAULTY),
                              [r.NODEPORT_LOOPBACK, r.NO_ENDPOINTS_REJECT])
    assert [res.result for res in broken] == [r.FAIL, r.FAIL]
    assert broken[0].observed == "refused" and broken[1].observed.startswith("timeout")
    await cluster.switch(FAULTY, KUBE_PROXY)
    fixed = await run_checks(context(cluster, FAULTY),
                             [r.NODEPORT_LOOPBACK, r.NO_ENDPOINTS_REJECT])
    assert [res.result for res in fixed] == [r.PASS, r.PASS]
