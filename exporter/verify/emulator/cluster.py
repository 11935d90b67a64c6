"""``EmulatedCluster``: a scenario's nodes, Services and echo pods, running on loopback.

Addresses inside ``127.<network>.0.0/16`` (node ``i`` counts from 1):

* ``127.<network>.1.i``: node ``i``'s address (host network);
* ``127.<network>.2.i``: the pod-network probe on node ``i``;
* ``127.<network>.3.i``: node ``i``'s load-balancer for virtual addresses;
* ``127.<network>.4.i``: the echo pod on node ``i`` (it also has the hostPort);
* ``127.<network>.5.1``: the API server (an echo);
* ``127.<network>.6.j``: echo pods added later (``add_endpoint``, ``j`` counting 1..254 and
  round again; each has its own port);
* ``127.<network>.100.x``: ClusterIPs, ``127.<network>.101.1``: the load-balancer address.

ClusterIPs, the load-balancer address and ``127.0.0.1:<nodePort>`` are virtual: a probe's
``Dialer`` from node ``i`` reaches them through node ``i``'s load-balancer, as a node's
datapath translates them. NodePorts, the health-check port and the hostPort are real
listeners on every node's address, each served by that node's load-balancer.

Time is the injected ``clock`` and ``sleep`` (programming delays, throughput shaping,
handshake costs); ``rng`` draws the handshake costs.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType

from exporter.verify.echo import EchoServer, Identity
from exporter.verify.emulator import proxy
from exporter.verify.emulator.dialer import EmulatedDialer, lognormal
from exporter.verify.emulator.node import (
    NODE_FRONTENDS, Backend, NodeAddresses, NodeDatapath, ServiceSpec,
)
from exporter.verify.emulator.scenario import (
    DATAPATHS, MAX_CONNECT_SECONDS, Scenario, ScenarioError, load_yaml, named,
)
from exporter.verify.net import Dialer
from exporter.verify.targets import Endpoint, NodeTarget, Targets

SERVICE_PORT = 80
APISERVER_PORT = 443
LOOPBACK = "127.0.0.1"
_PORT_ATTEMPTS = 5  # fresh shared ports when one was taken between reserving and binding
#: Seconds (of the clock) a removed endpoint's pod keeps answering connections already
#: routed to it before it stops, like a terminating pod.
RETIRE_GRACE = 10.0


def load_scenario(name: str = "", file: str = "") -> Scenario:
    """A named scenario, or the scenario in a YAML file (``--scenario-file``); raises
    ScenarioError naming the file and every problem."""
    if not file:
        return named(name)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"cannot read {file}: {exc.strerror}"]) from None
    try:
        return load_yaml(text)
    except ScenarioError as exc:
        raise ScenarioError([f"{file}: {p}" for p in exc.problems]) from None


class EmulatedCluster:
    def __init__(self, scenario: Scenario, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.scenario = scenario
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._added = 0
        self._retired: list[tuple[float, EchoServer]] = []
        self._services: dict[str, ServiceSpec] = {}
        net = f"127.{scenario.network}"
        self._net = net
        self.vips: dict[str, Endpoint] = {
            "echo": (f"{net}.100.1", SERVICE_PORT),
            "affinity": (f"{net}.100.2", SERVICE_PORT),
            "empty": (f"{net}.100.3", SERVICE_PORT),
            "apiserver": (f"{net}.100.10", APISERVER_PORT),
        }
        self.lb: Endpoint | None = ((f"{net}.101.1", SERVICE_PORT)
                                    if scenario.loadbalancer else None)
        self._echoes: dict[str, EchoServer] = {}
        self.nodes: dict[str, NodeDatapath] = {}
        self._shared: dict[str, int] = {}

    def addresses(self, index: int) -> NodeAddresses:
        n = self._net
        return NodeAddresses(f"{n}.1.{index}", f"{n}.2.{index}", f"{n}.3.{index}")

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        names = self.scenario.node_names
        backends = []
        for i, node in enumerate(names, start=1):
            echo = EchoServer(Identity(f"echo-{node}", node), f"{self._net}.4.{i}")
            self._echoes[node] = echo
            backends.append(Backend(echo.identity.pod, node, (echo.host, await echo.start())))
        api = EchoServer(Identity("kube-apiserver", ""), f"{self._net}.5.1")
        self._echoes[""] = api
        api_backend = Backend("kube-apiserver", "", (api.host, await api.start()))
        etp = tuple(b for b in backends if b.node in self.scenario.etp_local_nodes)
        services = {
            "echo": ServiceSpec("echo", tuple(backends)),
            "affinity": ServiceSpec("echo-affinity", tuple(backends), affinity=True),
            "empty": ServiceSpec("echo-empty", ()),
            "apiserver": ServiceSpec("kubernetes", (api_backend,)),
            "etp-local": ServiceSpec("echo-local", etp),
        }
        self._services = services
        for attempt in range(_PORT_ATTEMPTS):
            try:
                await self._start_nodes(services, backends)
                return
            except proxy.EmulatorError:
                # A port learnt free on node 1 was taken elsewhere (a wildcard listener of
                # another process) before every node bound it: start over on new ports.
                for started in self.nodes.values():
                    await started.stop()
                self.nodes.clear()
                if attempt == _PORT_ATTEMPTS - 1:
                    raise

    async def _start_nodes(self, services: dict[str, ServiceSpec], backends: list[Backend]) -> None:
        first = self.addresses(1).node_ip
        ports: list[int] = []
        while len(ports) < len(NODE_FRONTENDS):  # bound and released: keep them distinct
            if (port := proxy.reserve_port(first)) not in ports:
                ports.append(port)
        self._shared = dict(zip(NODE_FRONTENDS, ports))
        virtual = {vip: name for name, vip in self.vips.items()}
        virtual[(LOOPBACK, self._shared["nodeport"])] = "loopback"
        if self.lb is not None:
            virtual[self.lb] = "echo"
        for i, spec in enumerate(self.scenario.nodes, start=1):
            node = NodeDatapath(spec, self.addresses(i), services=services,
                                hostport_backend=backends[i - 1], virtual=virtual,
                                programming={dp: self.scenario.programming(dp)
                                             for dp in DATAPATHS},
                                throughput=self.scenario.throughput_bytes_per_second,
                                clock=self.clock, sleep=self.sleep)
            self.nodes[spec.name] = node
            await node.start(self._shared)

    async def stop(self) -> None:
        for node in self.nodes.values():
            await node.stop()
        for echo in [*self._echoes.values(), *(echo for _, echo in self._retired)]:
            await echo.stop()
        self._retired.clear()

    async def __aenter__(self) -> EmulatedCluster:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def add_endpoint(self, node: str) -> Backend:
        """Start one more echo pod on ``node`` and add it to the echo Service now (the
        clock's time): each node serves it after its datapath's programming delay."""
        self._node(node)
        await self._reap()
        self._added += 1
        index = self._added
        pod = f"echo-{node}-added-{index}"
        echo = EchoServer(Identity(pod, node), f"{self._net}.6.{(index - 1) % 254 + 1}")
        self._echoes[f"added-{index}"] = echo
        backend = Backend(pod, node, (echo.host, await echo.start()), since=self.clock())
        current = self._services["echo"]
        self._services["echo"] = ServiceSpec(current.name, (*current.backends, backend),
                                             current.affinity)
        return backend

    async def remove_endpoint(self, pod: str) -> None:
        """Take an added endpoint out of the echo Service now; its pod stops
        ``RETIRE_GRACE`` seconds later (connections already routed to it finish)."""
        current = self._services["echo"]
        kept = tuple(b for b in current.backends if b.pod != pod)
        if len(kept) == len(current.backends):
            raise ScenarioError([f"no added endpoint {pod!r} in the echo Service"])
        self._services["echo"] = ServiceSpec(current.name, kept, current.affinity)
        key = next(k for k, e in self._echoes.items()
                   if k.startswith("added-") and e.identity.pod == pod)
        self._retired.append((self.clock(), self._echoes.pop(key)))
        await self._reap()

    async def _reap(self) -> None:
        now, keep = self.clock(), []
        for retired_at, echo in self._retired:
            if now - retired_at >= RETIRE_GRACE:
                await echo.stop()
            else:
                keep.append((retired_at, echo))
        self._retired = keep

    def added_endpoints(self) -> tuple[Backend, ...]:
        """The echo Service's endpoints added after the start, oldest first."""
        return tuple(b for b in self._services["echo"].backends if b.since is not None)

    def _node(self, name: str) -> NodeDatapath:
        if name not in self.nodes:
            raise ScenarioError([f"no node {name!r}; known: {', '.join(self.nodes)}"])
        return self.nodes[name]

    def datapath(self, node: str) -> str:
        return self._node(node).datapath

    def datapaths(self) -> Mapping[str, str]:
        return {name: node.datapath for name, node in self.nodes.items()}

    async def switch(self, node: str, datapath: str) -> None:
        await self._node(node).switch(datapath)

    def dialer(self, node: str, network: str = "host") -> Dialer:
        """Connections from ``node``: its address (``host``) or its probe pod's (``pod``)."""
        dp = self._node(node)
        source = dp.addresses.node_ip if network == "host" else dp.addresses.pod_ip
        if not self.scenario.connect_seconds:
            return Dialer(source, resolve=dp.resolve)
        return EmulatedDialer(source, resolve=dp.resolve, cost=self._cost(dp),
                              sleep=self.sleep)

    def _cost(self, client: NodeDatapath) -> Callable[[str], float]:
        """The handshake cost of a connection from ``client`` to a (resolved) address: its
        own datapath's for its virtual addresses, a node's for that node's address."""
        by_address = {n.addresses.node_ip: n for n in self.nodes.values()}
        by_address[client.addresses.view_ip] = client

        def cost(host: str) -> float:
            translating = by_address.get(host)
            if translating is None:
                return 0.0
            spec = self.scenario.connect_seconds.get(translating.datapath)
            return lognormal(*spec, self.rng, MAX_CONNECT_SECONDS) if spec else 0.0
        return cost

    def targets(self) -> Targets:
        etp = self.scenario.etp_local_nodes
        nodes = {
            name: NodeTarget(name, dp.datapath, (dp.addresses.node_ip,),
                             etp_local_endpoints=int(name in etp), hostport=True)
            for name, dp in self.nodes.items()
        }
        return Targets(
            cluster_ip=self.vips["echo"], node_port=self._shared["nodeport"],
            loadbalancer=self.lb, etp_local_node_port=self._shared["etp-local"],
            health_check_node_port=self._shared["healthz"], affinity=self.vips["affinity"],
            no_endpoints=self.vips["empty"], apiserver=self.vips["apiserver"],
            hostport=self._shared["hostport"], nodes=nodes, loopback=LOOPBACK,
        )
