"""Fixtures for the simulator tests: a reference SLI measurement over model flows,
a started simulator stepped by hand, and a gRPC client for it."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

import grpc
import pytest

from exporter._gen.observer import observer_pb2_grpc
from exporter.model import (
    ACK, DROPPED, RST, SOCK, SOCK_XLATE_POST_FWD, SOCK_XLATE_PRE_FWD, SYN, TCP, TO_ENDPOINT, Flow,
    ServiceRef,
)
from exporter.simulator.runner import Simulator
from exporter.simulator.scenarios import Scenario
from exporter.simulator_settings import SimulatorSettings

_NS = 1_000_000_000


@dataclass
class Measured:
    """SLIs of one (namespace, service, datapath), measured independently of the exporter."""

    latencies: list[float] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    drops: Counter[int] = field(default_factory=Counter)
    http_latencies: list[float] = field(default_factory=list)
    http_codes: Counter[int] = field(default_factory=Counter)

    @property
    def total_attempts(self) -> int:
        return sum(self.attempts.values()) + sum(self.drops.values())

    def median(self) -> float:
        return statistics.median(self.latencies)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def drop_ratio(self, reason: int) -> float:
        return self.drops[reason] / self.total_attempts


def measure(flows: Iterable[Flow], scenario: Scenario,
            epoch_ns: int) -> dict[tuple[str, str, str], Measured]:
    """Handshakes, outcomes, drops and HTTP by (namespace, service, client node's datapath).

    A connection is measured at the client's node: from the first SYN observed
    there (source is a local endpoint) to the SYN-ACK / RST delivered to the
    client; KPR connections are attributed through the trace-sock events.
    """
    out: dict[tuple[str, str, str], Measured] = defaultdict(Measured)
    sock_pre: dict[int, ServiceRef] = {}
    sock_backend: dict[tuple[str, str, str, int], ServiceRef] = {}
    open_syn: dict[tuple[str, str, int], tuple[int, ServiceRef | None, str]] = {}

    def datapath(node: str, t: int) -> str:
        return scenario.datapath_at(node, (t - epoch_ns) / _NS)

    for f in flows:
        if f.type == SOCK:
            if f.sock_xlate_point == SOCK_XLATE_PRE_FWD and f.destination_service:
                sock_pre[f.socket_cookie] = f.destination_service
            elif f.sock_xlate_point == SOCK_XLATE_POST_FWD and f.socket_cookie in sock_pre:
                key = (f.node_name, f.src_ip, f.dst_ip, f.dst_port)
                sock_backend[key] = sock_pre[f.socket_cookie]
            continue
        if f.l7 is not None:
            if f.is_reply and f.source_service:
                m = out[(*f.source_service, datapath(f.node_name, f.time_ns))]
                m.http_latencies.append(f.l7.latency_ns / _NS)
                m.http_codes[f.l7.code] += 1
            continue
        if f.protocol != TCP:
            continue
        if f.verdict == DROPPED:
            if f.destination_service:
                dp = datapath(f.node_name, f.time_ns)
                out[(*f.destination_service, dp)].drops[f.drop_reason] += 1
            continue
        if f.tcp_flags == SYN and f.source is not None and f.source.endpoint_id:
            key = (f.node_name, f.src_ip, f.src_port)
            stale = open_syn.get(key)
            if stale is not None and f.time_ns - stale[0] > 3 * _NS:  # port reused
                del open_syn[key]
                if stale[1] is not None:
                    out[(*stale[1], stale[2])].attempts["timeout"] += 1
            if key not in open_syn:
                svc = f.destination_service or sock_backend.get(
                    (f.node_name, f.src_ip, f.dst_ip, f.dst_port))
                open_syn[key] = (f.time_ns, svc, datapath(f.node_name, f.time_ns))
            continue
        if (f.is_reply and f.observation_point == TO_ENDPOINT and f.tcp_flags & ACK
                and f.destination is not None and f.destination.endpoint_id):
            started = open_syn.pop((f.node_name, f.dst_ip, f.dst_port), None)
            if started is None or started[1] is None:
                continue
            m = out[(*started[1], started[2])]
            if f.tcp_flags & SYN:
                m.attempts["established"] += 1
                m.latencies.append((f.time_ns - started[0]) / _NS)
            elif f.tcp_flags & RST:
                m.attempts["refused"] += 1
    for _, svc, dp in open_syn.values():
        if svc is not None:
            out[(*svc, dp)].attempts["timeout"] += 1
    return dict(out)


def merged(measured: dict[tuple[str, str, str], Measured], datapath: str) -> Measured:
    """All services of one datapath together."""
    total = Measured()
    for (_, _, dp), m in measured.items():
        if dp == datapath:
            total.latencies += m.latencies
            total.attempts.update(m.attempts)
            total.drops.update(m.drops)
            total.http_latencies += m.http_latencies
            total.http_codes.update(m.http_codes)
    return total


@pytest.fixture
def measure_slis() -> Callable[..., dict[tuple[str, str, str], Measured]]:
    return measure


@pytest.fixture
def merge_slis() -> Callable[..., Measured]:
    return merged


@pytest.fixture
def settings() -> SimulatorSettings:
    return SimulatorSettings(grpc_listen_address="127.0.0.1:0", agents_listen_address="127.0.0.1:0")


@pytest.fixture
async def make_sim(settings: SimulatorSettings) -> AsyncIterator[Callable[..., object]]:
    """Starts simulators stepped by hand (``drive=False``); stops them afterwards."""
    started: list[Simulator] = []

    async def make(name: str = "baseline", **kwargs: object) -> Simulator:
        sim = Simulator(SimulatorSettings(scenario=name, seed=settings.seed,
                                          grpc_listen_address=settings.grpc_listen_address,
                                          agents_listen_address=settings.agents_listen_address),
                        drive=False, **kwargs)  # type: ignore[arg-type]
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


@pytest.fixture
async def channel_to() -> AsyncIterator[Callable[[Simulator], observer_pb2_grpc.ObserverStub]]:
    channels: list[grpc.aio.Channel] = []

    def stub(sim: Simulator) -> observer_pb2_grpc.ObserverStub:
        assert sim.ports is not None
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{sim.ports.grpc}")
        channels.append(channel)
        return observer_pb2_grpc.ObserverStub(channel)

    yield stub
    for channel in channels:
        await channel.close()

