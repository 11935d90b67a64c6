"""Workloads whose behaviour KPR changes: eTP=Local, ClientIP affinity, hostPort, meshes."""

from __future__ import annotations

import re
from typing import Any, Final

from exporter.preflight.model import FAIL, PASS, WARN, Facts, Row, missing, name_of, some
from exporter.rollback.settings import RollbackSettings

NODE_PORT_RANGE: Final = (30000, 32767)  # Kubernetes' and Cilium's default
_RANGE: Final = re.compile(r"^\s*(\d+)\s*[-,:]\s*(\d+)\s*$")
MESH_SIDECARS: Final = frozenset({"istio-proxy", "linkerd-proxy"})
MESH_NAMESPACE_LABELS: Final = (("istio-injection", "enabled"), ("istio.io/rev", None))
MESH_NAMESPACE_ANNOTATIONS: Final = (("linkerd.io/inject", "enabled"),)


def node_port_range(config: dict[str, str] | None) -> tuple[int, int]:
    """``node-port-range`` from cilium-config (``30000-32767`` or ``30000,32767``), else the default."""
    match = _RANGE.match((config or {}).get("node-port-range", ""))
    return (int(match[1]), int(match[2])) if match else NODE_PORT_RANGE


def external_traffic_policy(facts: Facts, settings: RollbackSettings) -> Row:
    check = "external-traffic-policy"
    if (row := missing(check, facts, "services")) is not None:
        return row
    local = [name_of(s) for s in facts.services or ()
             if (s.get("spec") or {}).get("externalTrafficPolicy") == "Local"]
    if local:
        return Row(check, WARN, f"{len(local)} Service(s) with externalTrafficPolicy: Local ({some(local)})",
                   why="client source IPs and the health-check node port change hands "
                       "(failure classes 4 and 10)",
                   todo="verify source IPs and healthCheckNodePort on the canary; never run "
                        "kube-proxy's and Cilium's healthz (10256) together")
    return Row(check, PASS, "no Service uses externalTrafficPolicy: Local")


def session_affinity(facts: Facts, settings: RollbackSettings) -> Row:
    check = "session-affinity"
    if (row := missing(check, facts, "services")) is not None:
        return row
    sticky = [name_of(s) for s in facts.services or ()
              if (s.get("spec") or {}).get("sessionAffinity") == "ClientIP"]
    if sticky:
        return Row(check, WARN, f"{len(sticky)} Service(s) with sessionAffinity: ClientIP ({some(sticky)})",
                   why="socket-LB keys affinity by the client's netns cookie, not per packet; "
                       "some installs leave it off (failure class 6)",
                   todo="test these Services on a canary node")
    return Row(check, PASS, "no Service uses sessionAffinity: ClientIP")


def host_port(facts: Facts, settings: RollbackSettings) -> Row:
    check = "host-port"
    if (row := missing(check, facts, "pods")) is not None:
        return row
    low, high = node_port_range(facts.cilium_config)
    users: list[str] = []
    broken: list[str] = []
    for pod in facts.pods or ():
        for container in (pod.get("spec") or {}).get("containers") or ():
            for port in container.get("ports") or ():
                if not port.get("hostPort"):
                    continue
                label = f"{name_of(pod)}:{port['hostPort']}"
                host_ip = port.get("hostIP", "")
                inside = low <= int(port["hostPort"]) <= high
                (broken if inside or host_ip.startswith("127.") or host_ip == "::1" else users).append(label)
    if broken:
        return Row(check, FAIL, f"hostPort inside the NodePort range {low}-{high} or on a loopback "
                                f"hostIP: {some(broken)}",
                   why="KPR ignores such hostPorts: the pods become unreachable (failure class 1)",
                   todo="move the hostPorts out of the NodePort range and off loopback")
    if users:
        return Row(check, WARN, f"{len(users)} hostPort user(s) ({some(users)})",
                   why="Cilium takes hostPort over from the portmap plugin (failure class 1)",
                   todo="test them on a canary")
    return Row(check, PASS, f"no pod uses hostPort (NodePort range {low}-{high})")


def mesh_socket_lb(facts: Facts, settings: RollbackSettings) -> Row:
    """Socket-LB translates before a sidecar sees the connection unless it is host-only."""
    check = "mesh-socket-lb"
    if (row := missing(check, facts, "pods")) is not None:
        return row
    host_only = (facts.cilium_config or {}).get("bpf-lb-sock-hostns-only", "false").lower() == "true"
    meshed = sorted(_meshed(facts.pods or [], facts.namespaces or []))
    if not meshed:
        return Row(check, PASS, "no service-mesh sidecar injection found")
    if host_only:
        return Row(check, PASS, f"sidecar injection in {some(meshed)}; socket-LB is host-namespace "
                                "only (bpf-lb-sock-hostns-only)")
    return Row(check, FAIL, f"sidecar injection in {some(meshed)} with socket-LB in every namespace",
               why="socket-LB translates Service addresses at connect(), before the sidecar: mesh "
                   "routing, telemetry and mTLS are bypassed on migrated nodes (failure class 7)",
               todo="set socketLB.hostNamespaceOnly=true (bpf-lb-sock-hostns-only) first")


def _meshed(pods: list[dict[str, Any]], namespaces: list[dict[str, Any]]) -> set[str]:
    found = set()
    for ns in namespaces:
        meta = ns.get("metadata") or {}
        labels, notes = meta.get("labels") or {}, meta.get("annotations") or {}
        if any(k in labels and (v is None or labels[k] == v) for k, v in MESH_NAMESPACE_LABELS) or \
                any(notes.get(k) == v for k, v in MESH_NAMESPACE_ANNOTATIONS):
            found.add(f"namespace {meta.get('name', '')}")
    for pod in pods:
        spec = pod.get("spec") or {}
        names = {c.get("name") for c in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]}
        if names & MESH_SIDECARS:
            found.add(f"namespace {(pod.get('metadata') or {}).get('namespace', '')}")
    return found
