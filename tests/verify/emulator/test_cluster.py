"""The emulated cluster gets its shared node ports even when one is taken meanwhile."""

from __future__ import annotations

import socket

from exporter.verify.emulator import cluster as cl
from exporter.verify.emulator import proxy
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
