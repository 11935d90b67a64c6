"""The emulated cluster gets its shared node ports even when one is taken meanwhile, and
endpoints added to the echo Service later can be taken out again."""

from __future__ import annotations

import asyncio
import socket

import pytest

from exporter.verify.emulator import cluster as cl
from exporter.verify.emulator import proxy
from exporter.verify.emulator.scenario import ScenarioError
from tests.verify.conftest import scenario


async def test_a_shared_port_taken_by_a_wildcard_listener_is_replaced(monkeypatch) -> None:
    squatter = socket.socket()
    squatter.bind(("0.0.0.0", 0))  # another process's listener on every address
    squatter.listen()
    taken = squatter.getsockname()[1]
    real = proxy.reserve_port
    handed: list[int] = []

    def reserve(host: str, port: int = 0) -> int:
        # the first reservation learns the squatter's port, as if it were free a moment ago
        chosen = taken if not handed else real(host, port)
        handed.append(chosen)
        return chosen

    monkeypatch.setattr(proxy, "reserve_port", reserve)
    emulated = cl.EmulatedCluster(scenario({"nodes": [{"name": "a"}, {"name": "b"}]}))
    try:
        await emulated.start()
        assert taken in handed, "the taken port was tried"
        assert taken not in emulated._shared.values(), "and replaced by a free one"
        assert set(emulated.nodes) == {"a", "b"}
    finally:
        await emulated.stop()
        squatter.close()


async def test_an_added_endpoint_is_taken_out_and_its_pod_stops_after_a_grace() -> None:
    now = [1000.0]
    emulated = cl.EmulatedCluster(scenario({"nodes": [{"name": "a"}, {"name": "b"}],
                                            "programming_seconds": {"kube-proxy": 0.0}}),
                                  clock=lambda: now[0])
    await emulated.start()
    try:
        added = await emulated.add_endpoint("b")
        assert emulated.added_endpoints() == (added,)
        await emulated.remove_endpoint(added.pod)
        assert emulated.added_endpoints() == ()
        with pytest.raises(ScenarioError, match="no added endpoint"):
            await emulated.remove_endpoint(added.pod)
        # Still answering connections routed to it before, until the grace is over.
        _, writer = await asyncio.open_connection(*added.endpoint)
        writer.close()
        now[0] += cl.RETIRE_GRACE
        second = await emulated.add_endpoint("a")  # reaps on the way
        assert second.pod != added.pod and emulated.added_endpoints() == (second,)
        with pytest.raises(OSError):
            await asyncio.open_connection(*added.endpoint)
    finally:
        await emulated.stop()
