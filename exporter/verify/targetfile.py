"""The probe's target file: the verification Services and the nodes, as YAML or JSON.

The static list a probe reads without Kubernetes (``--probe.targets-file``)::

    cluster_ip: 10.96.0.10:80          # the echo ClusterIP Service
    node_port: 30080                   # its NodePort (externalTrafficPolicy: Cluster)
    loadbalancer: 192.0.2.10:80        # optional: its load-balancer address
    etp_local_node_port: 30081         # NodePort of the externalTrafficPolicy: Local Service
    health_check_node_port: 30082      # ... and its healthCheckNodePort
    affinity: 10.96.0.11:80            # the sessionAffinity: ClientIP Service
    no_endpoints: 10.96.0.12:80        # the Service without endpoints
    apiserver: 10.96.0.1:443           # the kubernetes Service
    hostport: 30090                    # the echo pods' hostPort
    loopback: 127.0.0.1                # optional, the address node-local NodePort clients use
    nodes:                             # at least one
      - name: worker-1
        datapath: kube-proxy           # kube-proxy | ebpf
        addresses: [10.0.0.1, "fd00::1"]
        etp_local_endpoints: 1         # optional (0): ready local endpoints of the eTP=Local Service
        hostport: true                 # optional (false): a pod with the hostPort runs there

Addresses are ``host:port`` (``[v6]:port`` for IPv6). JSON is YAML, so both load.
Parsing is pure; ``load`` reads the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from exporter.model import EBPF, KUBE_PROXY
from exporter.verify.targets import Endpoint, NodeTarget, Targets, show

_ENDPOINTS = ("cluster_ip", "affinity", "no_endpoints", "apiserver")
_PORTS = ("node_port", "etp_local_node_port", "health_check_node_port", "hostport")
_NODE_KEYS = {"name", "datapath", "addresses", "etp_local_endpoints", "hostport"}
_KEYS = {*_ENDPOINTS, *_PORTS, "loadbalancer", "loopback", "nodes"}


class TargetFileError(ValueError):
    """The target file is unreadable or invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid target file: " + "; ".join(problems))


def _endpoint(key: str, value: Any, problems: list[str]) -> Endpoint | None:
    host, sep, port = str(value).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        problems.append(f"{key}: expected host:port, got {value!r}")
        return None
    return host, int(port)


def _port(key: str, value: Any, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 65535:
        problems.append(f"{key}: expected a port number, got {value!r}")
        return 0
    return value


def _node(i: int, raw: Any, problems: list[str]) -> NodeTarget | None:
    where = f"nodes[{i}]"
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping, got {raw!r}")
        return None
    before = len(problems)
    problems.extend(f"{where}: unknown key {k!r}" for k in sorted(set(raw) - _NODE_KEYS))
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: name is required")
    datapath = raw.get("datapath", KUBE_PROXY)
    if datapath not in (KUBE_PROXY, EBPF):
        problems.append(f"{where}: datapath {datapath!r} is not {KUBE_PROXY} or {EBPF}")
    addresses = raw.get("addresses")
    if (not isinstance(addresses, list) or not addresses
            or not all(isinstance(a, str) and a for a in addresses)):
        problems.append(f"{where}: addresses must be a non-empty list of addresses")
    local = raw.get("etp_local_endpoints", 0)
    if isinstance(local, bool) or not isinstance(local, int) or local < 0:
        problems.append(f"{where}: etp_local_endpoints must be a whole number >= 0")
    hostport = raw.get("hostport", False)
    if not isinstance(hostport, bool):
        problems.append(f"{where}: hostport must be true or false")
    if len(problems) > before:
        return None
    assert isinstance(addresses, list)
    return NodeTarget(str(name), str(datapath), tuple(addresses), local, hostport)


def parse(data: Any) -> Targets:
    """Targets from the loaded document; raises TargetFileError listing every problem."""
    if not isinstance(data, Mapping):
        raise TargetFileError(["the top level must be a mapping"])
    problems = [f"unknown key {k!r}" for k in sorted(set(map(str, data)) - _KEYS)]
    problems += [f"{k} is required" for k in (*_ENDPOINTS, *_PORTS, "nodes") if k not in data]
    if problems:
        raise TargetFileError(problems)
    endpoints = {k: _endpoint(k, data[k], problems) for k in _ENDPOINTS}
    ports = {k: _port(k, data[k], problems) for k in _PORTS}
    lb = data.get("loadbalancer")
    loadbalancer = None if lb in (None, "") else _endpoint("loadbalancer", lb, problems)
    raw_nodes = data["nodes"]
    if not isinstance(raw_nodes, list) or not raw_nodes:
        problems.append("nodes must be a non-empty list")
        raw_nodes = []
    nodes: dict[str, NodeTarget] = {}
    for i, raw in enumerate(raw_nodes):
        node = _node(i, raw, problems)
        if node is not None and node.name in nodes:
            problems.append(f"nodes[{i}]: node {node.name!r} is listed twice")
        elif node is not None:
            nodes[node.name] = node
    if problems:
        raise TargetFileError(problems)
    return Targets(nodes=nodes, loadbalancer=loadbalancer,
                   loopback=str(data.get("loopback", "127.0.0.1")),
                   **endpoints, **ports)  # type: ignore[arg-type]


def load(path: str) -> Targets:
    """Read and parse ``path``; problems are prefixed with the file's name."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetFileError([f"cannot read {path}: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TargetFileError([f"{path}: not valid YAML or JSON: {exc}"]) from None
    try:
        return parse(data)
    except TargetFileError as exc:
        raise TargetFileError([f"{path}: {p}" for p in exc.problems]) from None


def dump(targets: Targets) -> dict[str, Any]:
    """``targets`` as a target-file document (what ``parse`` reads back)."""
    doc: dict[str, Any] = {k: show(getattr(targets, k)) for k in _ENDPOINTS}
    doc.update({k: getattr(targets, k) for k in _PORTS})
    if targets.loadbalancer is not None:
        doc["loadbalancer"] = show(targets.loadbalancer)
    doc["loopback"] = targets.loopback
    doc["nodes"] = [{"name": n.name, "datapath": n.datapath, "addresses": list(n.addresses),
                     "etp_local_endpoints": n.etp_local_endpoints, "hostport": n.hostport}
                    for n in targets.nodes.values()]
    return doc
