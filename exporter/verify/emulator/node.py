"""One node's datapath: a userspace load-balancer following the node's behaviour now.

Frontends on the node's own address (what other nodes and the outside reach):
``nodeport`` (the echo Service, SNAT to the node), ``etp-local`` (the
externalTrafficPolicy=Local NodePort: local endpoints only, client address kept),
``healthz`` (its healthCheckNodePort) and ``hostport`` (to the node's echo pod).

Frontends on the node's service view (what clients on the node reach through virtual
addresses, see ``resolve``): ``echo`` (ClusterIP and load-balancer address), ``affinity``,
``apiserver``, ``empty`` (no endpoints) and ``loopback`` (NodePort on 127.0.0.1).

A switch of datapath recomputes the behaviour and the mode of each frontend; connections
already proxied live on unless the new datapath has ``reset-on-switch``.

A backend added after the start (``since``) is served only once the node's datapath has
had its programming delay (``programming``, seconds per datapath) since then, on the
injected ``clock``: kube-proxy's sync lag and eBPF's near-immediate update, as data.
Each proxied connection is forwarded at most at its datapath's ``throughput`` (bytes per
second per direction, none when absent), timed by the same clock and ``sleep``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from exporter.verify.emulator import proxy
from exporter.verify.emulator.scenario import Behaviour, NodeSpec, behaviour
from exporter.verify.targets import Endpoint


@dataclass(frozen=True, slots=True)
class Backend:
    pod: str
    node: str
    endpoint: Endpoint
    since: float | None = None  # when it was added (clock seconds); None: from the start


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    backends: tuple[Backend, ...]
    affinity: bool = False


@dataclass(frozen=True, slots=True)
class NodeAddresses:
    node_ip: str  # the host network: NodePorts, hostPorts, the host probe's source
    pod_ip: str  # the pod-network probe's source
    view_ip: str  # where this node's load-balancer serves virtual addresses


#: Shared ports (same number on every node) of the node-address frontends.
NODE_FRONTENDS = ("nodeport", "etp-local", "healthz", "hostport")
VIEW_FRONTENDS = ("echo", "affinity", "apiserver", "empty", "loopback")


class NodeDatapath:
    def __init__(self, spec: NodeSpec, addresses: NodeAddresses, *,
                 services: Mapping[str, ServiceSpec], hostport_backend: Backend | None,
                 virtual: Mapping[Endpoint, str],
                 programming: Mapping[str, float] | None = None,
                 throughput: Mapping[str, float] | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.spec = spec
        self.name = spec.name
        self.addresses = addresses
        self.datapath = spec.datapath
        self.behaviour: Behaviour = behaviour(spec.faults_on(self.datapath))
        self._services = services
        self._hostport_backend = hostport_backend
        self._virtual = virtual
        self._programming = dict(programming or {})
        self._throughput = dict(throughput or {})
        self._clock = clock
        self._sleep = sleep
        self._listeners: dict[str, proxy.Listener] = {}
        self._live: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._turn: dict[str, int] = {}
        self._sticky: dict[tuple[str, str], Backend] = {}

    async def start(self, shared_ports: Mapping[str, int]) -> None:
        """Bind every frontend: node-address ones on ``shared_ports``, the view ephemeral."""
        for name in NODE_FRONTENDS:
            self._listeners[name] = proxy.Listener(self.addresses.node_ip, self._handler(name),
                                                   shared_ports.get(name, 0))
        for name in VIEW_FRONTENDS:
            self._listeners[name] = proxy.Listener(self.addresses.view_ip, self._handler(name))
        await self._apply()

    async def stop(self) -> None:
        for listener in self._listeners.values():
            await listener.close()
        for writer in list(self._live):
            writer.close()
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def port(self, frontend: str) -> int:
        return self._listeners[frontend].port

    def resolve(self, host: str, port: int) -> Endpoint:
        """The node's view of an address: virtual ones go to this node's load-balancer."""
        frontend = self._virtual.get((host, port))
        if frontend is None:
            return host, port
        return self.addresses.view_ip, self._listeners[frontend].port

    async def switch(self, datapath: str) -> None:
        self.datapath = datapath
        self.behaviour = behaviour(self.spec.faults_on(datapath))
        if self.behaviour.reset_on_switch:
            for writer in list(self._live):
                proxy.reset(writer)
            self._live.clear()
        await self._apply()

    async def _apply(self) -> None:
        b = self.behaviour
        modes = {name: proxy.SERVE for name in self._listeners}
        modes["loopback"] = proxy.SERVE if b.loopback_nodeport else proxy.REFUSE
        modes["empty"] = proxy.REFUSE if b.no_endpoints_refuse else proxy.DROP
        modes["hostport"] = (proxy.SERVE if b.hostport and self._hostport_backend
                             else proxy.REFUSE)
        for name, listener in self._listeners.items():
            await listener.set_mode(modes[name])

    def _handler(self, frontend: str) -> proxy.Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._live.add(writer)
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            try:
                if frontend == "healthz":
                    await self._healthz(reader, writer)
                    return
                picked = self._route(frontend, writer.get_extra_info("peername")[0])
                if picked is None:
                    writer.close()  # e.g. eTP=Local without a local endpoint
                    return
                backend, source = picked
                await proxy.splice((reader, writer), backend.endpoint, source,
                                   shaping=self.shaping())
            except (OSError, asyncio.TimeoutError):
                writer.close()  # the client went away or sent nothing
            except asyncio.CancelledError:
                writer.close()  # stop(): a leaf task, ended quietly (see echo._serve)
            finally:
                self._live.discard(writer)
        return handle

    def shaping(self) -> proxy.Shaping:
        """How a connection accepted now is forwarded: its datapath's rate, if any."""
        return proxy.Shaping(self._throughput.get(self.datapath, 0.0), self._clock, self._sleep)

    def _route(self, frontend: str, client: str) -> tuple[Backend, str] | None:
        """Backend and the source address the backend will see."""
        own = self.addresses.node_ip
        if frontend == "hostport":
            return (self._hostport_backend, client) if self._hostport_backend else None
        if frontend == "etp-local":
            service = self._services["etp-local"]
            local = tuple(b for b in service.backends if b.node == self.name)
            if not local:
                return None
            source = client if self.behaviour.etp_local_keeps_source else own
            return self._pick(service, local, client), source
        name = {"nodeport": "echo", "loopback": "echo"}.get(frontend, frontend)
        service = self._services[name]
        backends = self._programmed(service.backends)
        if not backends:
            return None
        # NodePort traffic (eTP=Cluster) is SNATed to the node; ClusterIP traffic keeps it.
        source = own if frontend in ("nodeport", "loopback") else client
        return self._pick(service, backends, client), source

    def _programmed(self, backends: tuple[Backend, ...]) -> tuple[Backend, ...]:
        """The backends this node's datapath serves now (late ones after its delay)."""
        delay = self._programming.get(self.datapath, 0.0)
        now = self._clock()
        return tuple(b for b in backends if b.since is None or b.since + delay <= now)

    def _pick(self, service: ServiceSpec, backends: tuple[Backend, ...], client: str) -> Backend:
        sticky = service.affinity and self.behaviour.honour_affinity
        if sticky and (service.name, client) in self._sticky:
            return self._sticky[(service.name, client)]
        turn = self._turn.get(service.name, 0)
        self._turn[service.name] = turn + 1
        chosen = backends[turn % len(backends)]
        if sticky:
            self._sticky[(service.name, client)] = chosen
        return chosen

    async def _healthz(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(100):  # the request line and headers, up to the blank line
            if await asyncio.wait_for(reader.readline(), 5.0) in (b"\r\n", b"\n", b""):
                break
        service = self._services["etp-local"]
        local = sum(1 for b in service.backends if b.node == self.name)
        if not self.behaviour.truthful_healthcheck:
            local = len(service.backends)  # answers for the cluster, not for this node
            status = 200
        else:
            status = 200 if local else 503
        body = json.dumps({"service": {"namespace": "kpr-verify", "name": service.name},
                           "localEndpoints": local, "serviceProxyHealthy": True}).encode()
        reason = b"OK" if status == 200 else b"Service Unavailable"
        writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (status, reason, len(body), body))
        await writer.drain()
        writer.close()
