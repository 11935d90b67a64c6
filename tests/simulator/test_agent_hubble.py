"""One simulated node's Hubble server (node mode's source) over real gRPC on 127.0.0.1.

``--node-grpc.listen-address`` starts one agent server per node: each streams only its
node's flows (history and follow, together exactly the flows Relay streams), starts with
no ``node_status``, sends ``hubble-server-version``, answers ``ServerStatus`` without the
Relay-only node counts and ``GetNodes`` with UNIMPLEMENTED, as a Cilium agent does.
"""

from __future__ import annotations

import grpc
import pytest

from exporter._gen.observer import observer_pb2, observer_pb2_grpc
from exporter.model import Flow
from exporter.simulator.agent_hubble import AgentObserverServer
from exporter.simulator.runner import Simulator
from exporter.simulator_settings import SimulatorSettings
from tests.simulator.test_server import NODES, flows_of, read, ts


@pytest.fixture
async def sim():
    started = Simulator(SimulatorSettings(
        scenario="canary-regression", grpc_listen_address="127.0.0.1:0",
        agents_listen_address="127.0.0.1:0", node_grpc_listen_address="127.0.0.1:0"),
        drive=False)
    await started.start()
    yield started
    await started.stop()


async def _call(port: int, method: str, request):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        call = getattr(stub, method)(request)
        if method == "GetFlows":
            metadata = dict(await call.initial_metadata())
            return metadata, await read(call)
        return await call


async def test_each_node_streams_its_own_flows_and_together_all_of_them(sim) -> None:
    sim.advance_to(30)
    assert sim.ports is not None and sorted(sim.ports.nodes) == NODES
    assert len(set(sim.ports.nodes.values())) == 3
    per_node = {}
    for node, port in sim.ports.nodes.items():
        metadata, msgs = await _call(port, "GetFlows", observer_pb2.GetFlowsRequest(first=True))
        assert metadata["hubble-server-version"] == "1.19.4"
        assert "hubble-relay-version" not in metadata
        assert not any(m.HasField("node_status") for m in msgs)
        flows = flows_of(msgs)
        assert flows and {f.node_name for f in flows} == {node}
        per_node[node] = len(flows)
    relay = [e for _, e in sim.timeline.range(sim.timeline.first_seq) if isinstance(e, Flow)]
    assert sum(per_node.values()) == len(relay)
    for node, count in per_node.items():
        assert count == sum(1 for f in relay if f.node_name == node)


async def test_agent_status_and_nodes_are_an_agents(sim) -> None:
    sim.advance_to(10)
    port = sim.ports.nodes["node-b"]
    status = await _call(port, "ServerStatus", observer_pb2.ServerStatusRequest())
    assert not status.HasField("num_connected_nodes")  # how a client tells agent from Relay
    assert status.seen_flows == sim.timeline.counters["node-b"].seen > 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _call(port, "GetNodes", observer_pb2.GetNodesRequest())
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_follow_streams_only_new_flows_of_the_node(sim) -> None:
    sim.advance_to(5)
    port = sim.ports.nodes["node-c"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        since = ts(sim.timeline.now_ns)  # from now on, whenever the server reads the request
        call = observer_pb2_grpc.ObserverStub(channel).GetFlows(
            observer_pb2.GetFlowsRequest(follow=True, since=since))
        sim.advance_to(15)
        msgs = await read(call, limit=20)
        call.cancel()
    flows = flows_of(msgs)
    assert len(flows) == 20 and {f.node_name for f in flows} == {"node-c"}
    assert min(f.time.seconds * 10**9 + f.time.nanos for f in flows) >= since.seconds * 10**9


def test_an_unknown_node_is_refused(sim) -> None:
    with pytest.raises(ValueError, match="node-x"):
        AgentObserverServer(sim.timeline, "node-x")


def test_the_setting_is_checked() -> None:
    from exporter import config

    with pytest.raises(config.ConfigError, match="node_grpc_listen_address"):
        config.load(env={}, flags={"--node-grpc.listen-address": "nowhere"})
