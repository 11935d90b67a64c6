"""Pre-serialised Hubble responses for the throughput benchmarks, and a grpc.aio server that
streams them.

``prebuilt_responses(n)`` builds N serialised ``GetFlowsResponse`` messages of realistic size
and mix; ``PrebuiltObserver`` streams the same ready-made bytes to every GetFlows call over
the grpc server (``bench.fastpath.RawStreamServer`` streams them over bare HTTP/2).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from exporter._gen.observer import observer_pb2
from exporter.model import Flow
from exporter.simulator.encode import response_bytes
from exporter.simulator.flows import FlowGenerator
from exporter.simulator.scenarios import CANARY_AT_S, get_scenario
from exporter.simulator.server import RELAY_VERSION, VERSION_HEADER


def _identity(raw: bytes) -> bytes:
    return raw


def prebuilt_responses(n: int, *, seed: int = 1,
                       scenario: str = "canary-improvement") -> list[bytes]:
    """``n`` serialised ``GetFlowsResponse`` messages (flows only) for benchmarks.

    Taken from a mixed cluster (kube-proxy and eBPF nodes, L7 on one Service) so
    sizes and shapes match what the exporter sees during a canary.
    """
    gen = FlowGenerator(get_scenario(scenario), seed)
    out: list[bytes] = []
    tick = int(CANARY_AT_S)
    while len(out) < n:
        for _, _, event in gen.tick(tick):
            if isinstance(event, Flow):
                out.append(response_bytes(event))
                if len(out) == n:
                    break
        tick += 1
    return out


class PrebuiltObserver:
    """Streams the same ready-made ``GetFlowsResponse`` bytes to every GetFlows call.

    For benchmarks: no per-message work beyond handing bytes to gRPC. Each call
    gets ``messages`` ``repeat`` times, then the stream ends.
    """

    def __init__(self, messages: Sequence[bytes], *, repeat: int = 1) -> None:
        self.messages = messages
        self.repeat = repeat

    def generic_handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        return (grpc.method_handlers_generic_handler("observer.Observer", {
            "GetFlows": grpc.unary_stream_rpc_method_handler(
                self.get_flows, request_deserializer=observer_pb2.GetFlowsRequest.FromString,
                response_serializer=_identity),
        }),)

    async def get_flows(self, request: observer_pb2.GetFlowsRequest,
                        context: grpc.aio.ServicerContext) -> None:
        await context.send_initial_metadata(((VERSION_HEADER, RELAY_VERSION),))
        write = context.write
        for _ in range(self.repeat):
            for message in self.messages:
                await write(message)
