"""``verify`` against real probes on the emulated datapath: one probe per node, each with its
own /metrics listener on loopback, read back over HTTP. The canary scenario's two broken
checks fail on the canary only; ``--wait`` judges a fresh full round, driven by an
injected sleep that runs the probes' rounds and an injected clock."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.verify import results as r
from exporter.verify.emulator.scenario import NAMED
from exporter.verify.service import ProbeLoop
from exporter.verify.verify_cmd import cmd_verify
from exporter.web import Server
from tests.verify.test_probe_loop import start_probes, write_targets

Probes = tuple[list[ProbeLoop], list[str]]


@pytest.fixture
async def probes(emulate: Callable[..., Any], tmp_path: Path) -> AsyncIterator[Any]:
    servers: list[Server] = []

    async def start(data: dict[str, Any]) -> Probes:
        cluster = await emulate(data)
        return await start_probes(cluster, write_targets(cluster, tmp_path / "targets.yaml"),
                                  servers)

    yield start
    for server in servers:
        await server.stop()


async def verify(urls: list[str], **kw: Any) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = await cmd_verify(urls, fmt="json", max_age=300.0, out=out, err=io.StringIO(),
                            **{"wait": 0.0, **kw})
    return code, json.loads(out.getvalue())


def failing(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["check"], c["node"]) for c in doc["cells"] if c["status"] == r.FAIL}


async def test_the_canary_faults_fail_on_the_canary_only(probes: Any) -> None:
    loops, urls = await probes(NAMED["canary-datapath-faults"])
    for loop in loops:
        await loop.round()
    code, doc = await verify(urls)
    assert code == 1
    assert failing(doc) == {(r.NODEPORT_LOOPBACK, "node-b"), (r.SESSION_AFFINITY, "node-b")}
    assert {n["name"]: n["datapath"] for n in doc["nodes"]} == {
        "node-a": "kube-proxy", "node-b": "ebpf", "node-c": "kube-proxy"}
    others = [c for c in doc["cells"] if (c["check"], c["node"]) not in failing(doc)]
    assert others and {c["status"] for c in others} == {r.PASS, "n/a"}
    assert all(c["worst_connect_seconds"] is not None for c in others if c["status"] == r.PASS
               and c["check"] != r.NO_ENDPOINTS_REJECT)


async def test_wait_judges_a_fresh_full_round(probes: Any) -> None:
    loops, urls = await probes({"nodes": [{"name": "node-a"}, {"name": "node-b"},
                                          {"name": "node-c"}]})
    now = [5000.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # every probe completes one round per poll
        slept.append(seconds)
        now[0] += seconds
        for loop in loops:
            await loop.round()

    code, doc = await verify(urls, wait=60.0, clock=lambda: now[0], sleep=sleep)
    # nothing before the start: coverage (1 round with k=2 on 3 nodes) plus the round that
    # may have been in progress
    assert len(slept) == 2
    assert code == 0 and doc["problems"] == [], doc["problems"]

    async def stuck(seconds: float) -> None:  # the probes never complete another round
        now[0] += seconds

    code, doc = await verify(urls, wait=10.0, clock=lambda: now[0], sleep=stuck)
    assert code == 2
    assert doc["problems"] and all(p.startswith("no fresh full round within 10s")
                                   for p in doc["problems"])
    assert len(doc["problems"]) == 3
