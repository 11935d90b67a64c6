"""``EmulatedCluster``: a scenario's nodes, Services and echo pods, running on loopback.

Addresses inside ``127.<network>.0.0/16`` (node ``i`` counts from 1):

* ``127.<network>.1.i``: node ``i``'s address (host network);
* ``127.<network>.2.i``: the pod-network probe on node ``i``;
* ``127.<network>.3.i``: node ``i``'s load-balancer for virtual addresses;
* ``127.<network>.4.i``: the echo pod on node ``i`` (it also has the hostPort);
* ``127.<network>.5.1``: the API server (an echo);
* ``127.<network>.100.x``: ClusterIPs, ``127.<network>.101.1``: the load-balancer address.

ClusterIPs, the load-balancer address and ``127.0.0.1:<nodePort>`` are virtual: a probe's
``Dialer`` from node ``i`` reaches them through node ``i``'s load-balancer, as a node's
datapath translates them. NodePorts, the health-check port and the hostPort are real
listeners on every node's address, each served by that node's load-balancer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from exporter.verify.echo import EchoServer, Identity
from exporter.verify.emulator import proxy
from exporter.verify.emulator.node import (
    NODE_FRONTENDS, Backend, NodeAddresses, NodeDatapath, ServiceSpec,
)
from exporter.verify.emulator.scenario import Scenario, ScenarioError, load_yaml, named
from exporter.verify.net import Dialer
from exporter.verify.targets import Endpoint, NodeTarget, Targets

SERVICE_PORT = 80
APISERVER_PORT = 443
LOOPBACK = "127.0.0.1"
_PORT_ATTEMPTS = 5  # fresh shared ports when one was taken between reserving and binding


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
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
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
        for attempt in range(_PORT_ATTEMPTS):
            try:
                await self._start_nodes(services, backends)
                return
            except proxy.EmulatorError:
                # A port learnt free on node 1 was taken elsewhere (a wildcard listener of
                # another process) before every node bound it: start over on new ports.
                for node in self.nodes.values():
                    await node.stop()
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
                                hostport_backend=backends[i - 1], virtual=virtual)
            self.nodes[spec.name] = node
            await node.start(self._shared)

    async def stop(self) -> None:
        for node in self.nodes.values():
            await node.stop()
        for echo in self._echoes.values():
            await echo.stop()

    async def __aenter__(self) -> EmulatedCluster:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

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
        return Dialer(source, resolve=dp.resolve)

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
