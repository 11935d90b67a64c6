"""Emulated-datapath scenarios as data, and the behaviour a node's datapath has (pure).

A scenario is a YAML-loadable mapping::

    name: canary-datapath-faults     # optional, free text
    network: 77                      # optional, 1..254: the emulator uses 127.<network>.0.0/16
    loadbalancer: true               # optional (default true): assign a load-balancer address
    etp_local_nodes: [node-a]        # optional: nodes running an endpoint of the
                                     #   externalTrafficPolicy=Local Service
                                     #   (default: every node but the last)
    nodes:                           # required, at least one, names unique, at most 254
      - name: node-a
        datapath: kube-proxy         # kube-proxy | ebpf, the datapath at start (default kube-proxy)
        faults:                      # optional: datapath -> faults active while the node runs it
          ebpf: [nodeport-loopback-refused, affinity-ignored]

Faults (each breaks exactly one check, ``FAULTS``):

* ``nodeport-loopback-refused``: NodePorts are not served on the node's loopback address;
* ``affinity-ignored``: ``sessionAffinity: ClientIP`` is not honoured (round robin);
* ``etp-local-source-snat``: under ``externalTrafficPolicy: Local`` the client's address is
  replaced by the node's;
* ``healthcheck-wrong``: the ``healthCheckNodePort`` answers 200 and the cluster-wide
  endpoint count whatever the node runs;
* ``no-endpoints-drop``: a Service without endpoints drops connections (clients hang)
  instead of refusing them;
* ``reset-on-switch``: switching the node to this datapath resets the connections it holds;
* ``hostport-missing``: the hostPort is not programmed (refused).

Healthy semantics, the same for both datapaths as far as the checks can tell:
kube-proxy (iptables mode) serves NodePorts on 127.0.0.1 too (``localhost nodeports``,
``route_localnet``), honours ClientIP affinity, keeps the client address for local
endpoints under eTP=Local and answers its health check truthfully, REJECTs connections
to Services without endpoints (a fast refusal), keeps established connections across a
rules change (conntrack) and the CNI's portmap programs hostPorts. Cilium's kube-proxy
replacement does the same with socket-LB (NodePort on loopback), its own health-check
server and ``--service-no-backend-response=reject``. Both SNAT NodePort traffic of
``externalTrafficPolicy: Cluster`` Services to the receiving node's address; both pick
backends round robin here (kube-proxy picks at random, Cilium by Maglev or at random:
no check depends on which).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from exporter.model import EBPF, KUBE_PROXY
from exporter.verify import results as r

#: Fault -> the one check that must catch it.
FAULTS: Final[Mapping[str, str]] = {
    "nodeport-loopback-refused": r.NODEPORT_LOOPBACK,
    "affinity-ignored": r.SESSION_AFFINITY,
    "etp-local-source-snat": r.ETP_LOCAL_SOURCE_IP,
    "healthcheck-wrong": r.ETP_LOCAL_HEALTHCHECK,
    "no-endpoints-drop": r.NO_ENDPOINTS_REJECT,
    "reset-on-switch": r.LONG_LIVED_CONNECTION,
    "hostport-missing": r.HOSTPORT,
}
DATAPATHS: Final = (KUBE_PROXY, EBPF)
DEFAULT_NETWORK: Final = 77


class ScenarioError(ValueError):
    """The scenario data is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid emulated-datapath scenario: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What one node's datapath does now (derived from its datapath and faults)."""

    loopback_nodeport: bool = True
    honour_affinity: bool = True
    etp_local_keeps_source: bool = True
    truthful_healthcheck: bool = True
    no_endpoints_refuse: bool = True
    reset_on_switch: bool = False
    hostport: bool = True


def behaviour(faults: tuple[str, ...]) -> Behaviour:
    """The behaviour of a datapath with ``faults`` (healthy when empty)."""
    has = set(faults).__contains__
    return Behaviour(
        loopback_nodeport=not has("nodeport-loopback-refused"),
        honour_affinity=not has("affinity-ignored"),
        etp_local_keeps_source=not has("etp-local-source-snat"),
        truthful_healthcheck=not has("healthcheck-wrong"),
        no_endpoints_refuse=not has("no-endpoints-drop"),
        reset_on_switch=has("reset-on-switch"),
        hostport=not has("hostport-missing"),
    )


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    datapath: str = KUBE_PROXY
    faults: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def faults_on(self, datapath: str) -> tuple[str, ...]:
        return self.faults.get(datapath, ())


@dataclass(frozen=True, slots=True)
class Scenario:
    nodes: tuple[NodeSpec, ...]
    name: str = "custom"
    network: int = DEFAULT_NETWORK
    loadbalancer: bool = True
    etp_local_nodes: tuple[str, ...] = ()

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)


def load(data: Any) -> Scenario:
    """A scenario from its mapping; raises ScenarioError naming every problem."""
    if not isinstance(data, Mapping):
        raise ScenarioError(["the scenario must be a mapping"])
    problems: list[str] = []
    unknown = set(data) - {"name", "network", "loadbalancer", "etp_local_nodes", "nodes"}
    problems += [f"unknown key {k!r}" for k in sorted(map(str, unknown))]
    nodes = [_node(i, raw, problems) for i, raw in enumerate(_list(data.get("nodes"), "nodes",
                                                                  problems))]
    names = [n.name for n in nodes]
    if not nodes:
        problems.append("nodes: at least one node is needed")
    if len(set(names)) != len(names):
        problems.append("nodes: names must be unique")
    if len(nodes) > 254:
        problems.append(f"nodes: at most 254, got {len(nodes)}")
    network = data.get("network", DEFAULT_NETWORK)
    if not isinstance(network, int) or isinstance(network, bool) or not 1 <= network <= 254:
        problems.append(f"network: expected an integer 1..254, got {network!r}")
    loadbalancer = data.get("loadbalancer", True)
    if not isinstance(loadbalancer, bool):
        problems.append(f"loadbalancer: expected true or false, got {loadbalancer!r}")
    etp = tuple(str(n) for n in _list(data.get("etp_local_nodes", names[:-1] or names),
                                      "etp_local_nodes", problems))
    problems += [f"etp_local_nodes: no node {n!r}" for n in etp if n not in names]
    if problems:
        raise ScenarioError(problems)
    return Scenario(nodes=tuple(nodes), name=str(data.get("name", "custom")), network=network,
                    loadbalancer=loadbalancer, etp_local_nodes=etp)


def load_yaml(text: str) -> Scenario:
    try:
        return load(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise ScenarioError([f"not YAML: {exc}"]) from None


def _list(value: Any, where: str, problems: list[str]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{where}: expected a list, got {type(value).__name__}")
        return []
    return value


def _node(index: int, raw: Any, problems: list[str]) -> NodeSpec:
    where = f"nodes[{index}]"
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
        problems.append(f"{where}: expected a mapping with a non-empty name")
        return NodeSpec(name=f"<invalid {index}>")
    unknown = set(raw) - {"name", "datapath", "faults"}
    problems += [f"{where}: unknown key {k!r}" for k in sorted(map(str, unknown))]
    datapath = raw.get("datapath", KUBE_PROXY)
    if datapath not in DATAPATHS:
        problems.append(f"{where}: datapath {datapath!r} is not one of {', '.join(DATAPATHS)}")
    faults_raw = raw.get("faults") or {}
    if not isinstance(faults_raw, Mapping):
        problems.append(f"{where}: faults must map a datapath to a list of faults")
        faults_raw = {}
    faults: dict[str, tuple[str, ...]] = {}
    for dp, names in faults_raw.items():
        if dp not in DATAPATHS:
            problems.append(f"{where}: faults for unknown datapath {dp!r}")
        listed = [str(n) for n in _list(names, f"{where}.faults.{dp}", problems)]
        problems += [f"{where}: unknown fault {n!r}; known: {', '.join(FAULTS)}"
                     for n in listed if n not in FAULTS]
        faults[str(dp)] = tuple(listed)
    return NodeSpec(name=raw["name"], datapath=str(datapath), faults=faults)


#: Named scenarios (``Scenario`` data, not files).
NAMED: Final[Mapping[str, Mapping[str, Any]]] = {
    "healthy": {
        "name": "healthy",
        "nodes": [{"name": "node-a"}, {"name": "node-b", "datapath": EBPF},
                  {"name": "node-c"}],
    },
    "canary-datapath-faults": {
        "name": "canary-datapath-faults",
        "nodes": [{"name": "node-a"},
                  {"name": "node-b", "datapath": EBPF,
                   "faults": {EBPF: ["nodeport-loopback-refused", "affinity-ignored"]}},
                  {"name": "node-c"}],
    },
}


def named(name: str) -> Scenario:
    if name not in NAMED:
        raise ScenarioError([f"no scenario named {name!r}; known: {', '.join(NAMED)}"])
    return load(NAMED[name])
