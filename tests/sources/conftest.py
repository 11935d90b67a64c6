"""Fixtures for the Hubble reader tests: a real grpc.aio Observer server on
127.0.0.1 driven by scripted responses, a step-by-step sleep for the reconnect
backoff, generated TLS material, and a consumer of ``HubbleReader.events()``.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry

from exporter._gen.flow import flow_pb2
from exporter._gen.observer import observer_pb2, observer_pb2_grpc
from exporter._gen.relay import relay_pb2

WAIT = 5.0  # upper bound of any wait in these tests; normally milliseconds


# --- scripted responses ------------------------------------------------------------


@dataclass(frozen=True)
class Abort:
    """End the GetFlows stream with this status."""

    code: grpc.StatusCode
    details: str = "scripted failure"


HOLD = object()  # keep the stream open until the client or the server goes away


def flow_response(uuid: str, t_ns: int, node: str = "node-a",
                  **fields) -> observer_pb2.GetFlowsResponse:
    fields = {"verdict": flow_pb2.FORWARDED, "Type": flow_pb2.L3_L4, **fields}
    flow = flow_pb2.Flow(uuid=uuid, node_name=node, **fields)
    flow.time.FromNanoseconds(t_ns)
    return observer_pb2.GetFlowsResponse(flow=flow, node_name=node, time=flow.time)


def lost_response(source: int, count: int, node: str = "node-a") -> observer_pb2.GetFlowsResponse:
    return observer_pb2.GetFlowsResponse(
        lost_events=flow_pb2.LostEvent(source=source, num_events_lost=count), node_name=node)


def node_status_response(state: int, *names: str,
                         message: str = "") -> observer_pb2.GetFlowsResponse:
    return observer_pb2.GetFlowsResponse(
        node_status=relay_pb2.NodeStatusEvent(state_change=state, node_names=names,
                                              message=message),
        node_name="relay")


class Observer(observer_pb2_grpc.ObserverServicer):
    """``observer.Observer`` whose GetFlows calls play ``scripts`` one after the other
    (a list of responses, ``Abort`` and ``HOLD`` items); an exhausted script list holds."""

    def __init__(self) -> None:
        self.scripts: list[list] = []
        self.requests: list[observer_pb2.GetFlowsRequest] = []
        self.status = observer_pb2.ServerStatusResponse(version="1.19.4", num_flows=10,
                                                        max_flows=4095)
        self.nodes: observer_pb2.GetNodesResponse | None = None  # None: Unimplemented
        self.status_hangs = False  # ServerStatus never answers (a dead connection)
        self.status_calls = 0
        self.status_called = asyncio.Event()
        self.request_seen = asyncio.Event()

    async def GetFlows(self, request, context):
        self.requests.append(request)
        self.request_seen.set()
        script = self.scripts.pop(0) if self.scripts else [HOLD]
        for step in script:
            if step is HOLD:
                await asyncio.Event().wait()
            elif isinstance(step, Abort):
                await context.abort(step.code, step.details)
            else:
                yield step

    async def ServerStatus(self, request, context):
        self.status_calls += 1
        self.status_called.set()
        if self.status_hangs:
            await asyncio.Event().wait()
        return self.status

    async def GetNodes(self, request, context):
        if self.nodes is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "agent")
        return self.nodes


class FakeHubble:
    """A grpc.aio server for ``Observer`` on 127.0.0.1 (or a unix socket)."""

    def __init__(self, servicer: Observer, credentials: grpc.ServerCredentials | None = None):
        self.servicer = servicer
        self.credentials = credentials
        self.port = 0
        self._server: grpc.aio.Server | None = None

    async def start(self, bind: str | None = None) -> None:
        server = grpc.aio.server()
        observer_pb2_grpc.add_ObserverServicer_to_server(self.servicer, server)
        bind = bind or f"127.0.0.1:{self.port}"
        if self.credentials is None:
            port = server.add_insecure_port(bind)
        else:
            port = server.add_secure_port(bind, self.credentials)
        if not bind.startswith("unix:"):
            assert port, f"could not bind {bind}"
            self.port = port
        await server.start()
        self._server = server

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None


@pytest.fixture
async def observer() -> Observer:
    return Observer()


@pytest.fixture
async def fake_hubble(observer: Observer):
    server = FakeHubble(observer)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


# --- time ----------------------------------------------------------------------------


class StepSleep:
    """Injected ``sleep``: records each delay and waits until the test releases it."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._calls: asyncio.Queue[float] = asyncio.Queue()
        self._release: asyncio.Queue[None] = asyncio.Queue()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self._calls.put_nowait(delay)
        await self._release.get()

    async def next_call(self) -> float:
        """Wait until the reader starts its next backoff sleep; returns the delay."""
        return await asyncio.wait_for(self._calls.get(), WAIT)

    def release(self) -> None:
        self._release.put_nowait(None)


@pytest.fixture
def step_sleep() -> StepSleep:
    return StepSleep()


# --- consuming the reader ---------------------------------------------------------------


class Consumer:
    """Runs ``reader.events()`` in a task and collects what it yields."""

    def __init__(self, reader) -> None:
        self.reader = reader
        self.events: list = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self.reader.events():
            self.events.append(event)
            self._changed.set()

    async def wait_for(self, predicate: Callable[[list], bool]) -> list:
        async with asyncio.timeout(WAIT):
            while not predicate(self.events):
                if self.task.done():
                    self.task.result()
                    raise AssertionError("events() ended")
                await self._changed.wait()
                self._changed.clear()
        return self.events

    async def wait_count(self, n: int) -> list:
        return await self.wait_for(lambda events: len(events) >= n)

    async def stop(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


@pytest.fixture
async def consumers():
    """Factory of ``Consumer``s, all stopped at teardown."""
    started: list[Consumer] = []

    def start(reader) -> Consumer:
        consumer = Consumer(reader)
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        await consumer.stop()


# --- TLS material ------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here

    def server_credentials(self, *, require_client_auth: bool = False) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.server_key.read_bytes(), self.server_cert.read_bytes())],
            root_certificates=self.ca.read_bytes() if require_client_auth else None,
            require_client_auth=require_client_auth,
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(subject: str, issuer_name: x509.Name, issuer_key, public_key, *, ca: bool,
                 dns: tuple[str, ...] = (), usage=None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_ca(directory: Path, name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(name, _name(name), key, key.public_key(), ca=True)
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> TLSFiles:
    """A CA, a Relay-like server certificate (``*.hubble-relay.cilium.io``) and a client
    certificate, generated once per test session."""
    d = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert = _write_ca(d, "hubble-ca")
    _write_ca(d, "other-ca")
    files = {}
    for role, dns, usage in (
        ("server", ("*.hubble-relay.cilium.io",), ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ("exporter.hubble-relay-client.cilium.io",), ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(f"{role}.hubble-relay.cilium.io", ca_cert.subject, ca_key,
                            key.public_key(), ca=False, dns=dns, usage=usage)
        (d / f"{role}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{role}.key").write_bytes(_pem_key(key))
        files[role] = (d / f"{role}.crt", d / f"{role}.key")
    return TLSFiles(d / "hubble-ca.crt", *files["server"], *files["client"], d / "other-ca.crt")
