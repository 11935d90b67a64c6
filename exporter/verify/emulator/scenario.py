"""Emulated-datapath scenarios as data, and the behaviour a node's datapath has (pure).

A scenario is a YAML-loadable mapping::

    name: canary-datapath-faults     # optional, free text
    network: 77                      # optional, 1..254: the emulator uses 127.<network>.0.0/16
    loadbalancer: true               # optional (default true): assign a load-balancer address
    etp_local_nodes: [node-a]        # optional: nodes running an endpoint of the
                                     #   externalTrafficPolicy=Local Service
                                     #   (default: every node but the last)
    programming_seconds:             # optional: seconds from an endpoint added to the echo
      kube-proxy: 1.2                #   Service to each datapath serving it (defaults
      ebpf: 0.004                    #   below, the simulator's medians)
    throughput_bytes_per_second:     # optional: payload bytes per second one connection
      kube-proxy: 65536              #   through each datapath carries at most (default:
      ebpf: 88474                    #   unshaped, as fast as loopback forwards)
    connect_seconds:                 # optional: handshake cost each datapath adds, a
      kube-proxy: {median: 0.0008, p99: 0.004}  # log-normal (default: none)
      ebpf: {median: 0.00055, p99: 0.0028}
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
#: Seconds from a new echo endpoint to a datapath serving it: the medians of the
#: simulator's kube-proxy profile and of its improved eBPF profile
#: (``exporter.simulator.scenarios``), so the demo's probes measure what its agents report.
DEFAULT_PROGRAMMING: Final[Mapping[str, float]] = {KUBE_PROXY: 1.2, EBPF: 0.004}
MAX_PROGRAMMING_SECONDS: Final = 300.0
#: Bounds of the shaping: at least 1 KiB/s per connection; a handshake cost of at most 2 s.
MIN_THROUGHPUT: Final = 1024.0
MAX_CONNECT_SECONDS: Final = 2.0


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
    #: datapath -> seconds, as stated (``programming`` falls back to the defaults).
    programming_seconds: Mapping[str, float] = field(default_factory=dict)
    #: datapath -> payload bytes per second per connection (absent: unshaped).
    throughput_bytes_per_second: Mapping[str, float] = field(default_factory=dict)
    #: datapath -> (median, p99) seconds a handshake through it costs (absent: none).
    connect_seconds: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def programming(self, datapath: str) -> float:
        """Seconds until a new echo endpoint is served by ``datapath``."""
        return self.programming_seconds.get(datapath, DEFAULT_PROGRAMMING.get(datapath, 0.0))

    def throughput(self, datapath: str) -> float:
        """Bytes per second one connection through ``datapath`` carries (0: unshaped)."""
        return self.throughput_bytes_per_second.get(datapath, 0.0)

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)


def load(data: Any) -> Scenario:
    """A scenario from its mapping; raises ScenarioError naming every problem."""
    if not isinstance(data, Mapping):
        raise ScenarioError(["the scenario must be a mapping"])
    problems: list[str] = []
    unknown = set(data) - {"name", "network", "loadbalancer", "etp_local_nodes", "nodes",
                           "programming_seconds", "throughput_bytes_per_second",
                           "connect_seconds"}
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
    programming = _programming(data.get("programming_seconds"), problems)
    throughput = _throughput(data.get("throughput_bytes_per_second"), problems)
    connect = _connect(data.get("connect_seconds"), problems)
    if problems:
        raise ScenarioError(problems)
    return Scenario(nodes=tuple(nodes), name=str(data.get("name", "custom")), network=network,
                    loadbalancer=loadbalancer, etp_local_nodes=etp,
                    programming_seconds=programming, throughput_bytes_per_second=throughput,
                    connect_seconds=connect)


def _per_datapath(key: str, value: Any, problems: list[str]) -> Mapping[str, Any]:
    """``value`` as a mapping of known datapaths (problems noted; unknown ones left out)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{key}: expected a mapping of datapath to its value")
        return {}
    unknown = [dp for dp in value if dp not in DATAPATHS]
    problems += [f"{key}: unknown datapath {dp!r}" for dp in unknown]
    return {str(dp): v for dp, v in value.items() if dp in DATAPATHS}


def _number(value: Any, low: float, high: float) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and low <= value <= high)


def _throughput(value: Any, problems: list[str]) -> dict[str, float]:
    """``throughput_bytes_per_second``: datapath -> bytes/s, at least ``MIN_THROUGHPUT``."""
    found = {}
    for dp, rate in _per_datapath("throughput_bytes_per_second", value, problems).items():
        if _number(rate, MIN_THROUGHPUT, float("inf")):
            found[dp] = float(rate)
        else:
            problems.append(f"throughput_bytes_per_second.{dp}: expected bytes per second of "
                            f"at least {MIN_THROUGHPUT:g}, got {rate!r}")
    return found


def _median_p99(spec: Any) -> tuple[float, float] | None:
    """``{median, p99}`` seconds with 0 < median <= p99 <= MAX, else None."""
    if not isinstance(spec, Mapping) or set(spec) != {"median", "p99"}:
        return None
    median, p99 = spec["median"], spec["p99"]
    if _number(median, 1e-9, MAX_CONNECT_SECONDS) and _number(p99, median, MAX_CONNECT_SECONDS):
        return float(median), float(p99)
    return None


def _connect(value: Any, problems: list[str]) -> dict[str, tuple[float, float]]:
    """``connect_seconds``: datapath -> {median, p99}."""
    found = {}
    for dp, spec in _per_datapath("connect_seconds", value, problems).items():
        if (pair := _median_p99(spec)) is not None:
            found[dp] = pair
        else:
            problems.append(f"connect_seconds.{dp}: expected {{median, p99}} seconds with "
                            f"0 < median <= p99 <= {MAX_CONNECT_SECONDS:g}, got {spec!r}")
    return found


def _programming(value: Any, problems: list[str]) -> dict[str, float]:
    """``programming_seconds``: datapath -> seconds, each 0..MAX (only those stated)."""
    found: dict[str, float] = {}
    if value is None:
        return found
    if not isinstance(value, Mapping):
        problems.append("programming_seconds: expected a mapping of datapath to seconds")
        return found
    for dp, seconds in value.items():
        if dp not in DATAPATHS:
            problems.append(f"programming_seconds: unknown datapath {dp!r}")
        elif (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
              or not 0 <= seconds <= MAX_PROGRAMMING_SECONDS):
            problems.append(f"programming_seconds.{dp}: expected seconds 0.."
                            f"{MAX_PROGRAMMING_SECONDS:g}, got {seconds!r}")
        else:
            found[str(dp)] = float(seconds)
    return found


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
