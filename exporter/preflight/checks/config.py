"""Cilium configuration checks: the KPR value, the load-balancer mode and the LB map size."""

from __future__ import annotations

from typing import Any, Final

from exporter.cilium import KPR_KEY
from exporter.preflight.model import FAIL, PASS, WARN, Facts, Row, missing, some
from exporter.rollback.settings import RollbackSettings

LB_MAP_DEFAULT: Final = 65536  # bpf-lb-map-max when unset
LB_MAP_WARN: Final = 0.7
LB_MAP_FAIL: Final = 0.9


def kpr_value(facts: Facts, settings: RollbackSettings) -> Row:
    check = "kpr-value"
    if (row := missing(check, facts, "cilium_config")) is not None:
        return row
    c = settings.cilium
    if facts.cilium_config is None:
        return Row(check, FAIL, f"ConfigMap {c.namespace}/{c.configmap} not found",
                   todo="check rollback.cilium.namespace and rollback.cilium.configmap")
    values = [("cilium-config", facts.cilium_config.get(KPR_KEY, "(unset: false)"))]
    values += [(cnc.ref, cnc.defaults[KPR_KEY]) for cnc in facts.node_configs if KPR_KEY in cnc.defaults]
    bad = [where for where, v in values if v.strip().lower() == "strict"]
    if bad:
        return Row(check, FAIL, 'kube-proxy-replacement "strict" in ' + some(bad),
                   why='Cilium >= 1.14 treats only "true" as on and silently leaves NodePort '
                       "and HostPort off",
                   todo='use "true"')
    old = [f"{w}={v}" for w, v in values if v.strip().lower() not in ("true", "false", "(unset: false)")]
    if old:
        return Row(check, WARN, "deprecated kube-proxy-replacement value(s): " + some(old),
                   todo='use "true" or "false"')
    return Row(check, PASS, ", ".join(f"{w}={v}" for w, v in values))


def lb_mode(facts: Facts, settings: RollbackSettings) -> Row:
    """DSR and hybrid need native routing, or Geneve dispatch inside a Geneve tunnel."""
    check = "lb-mode"
    if (row := missing(check, facts, "cilium_config")) is not None:
        return row
    config = facts.cilium_config or {}
    mode = config.get("bpf-lb-mode", "snat") or "snat"
    routing = _routing_mode(config)
    if mode == "snat":
        return Row(check, PASS, f"bpf-lb-mode snat with {routing} routing")
    dispatch = config.get("bpf-lb-dsr-dispatch", "opt") or "opt"
    protocol = config.get("tunnel-protocol", "vxlan") or "vxlan"
    if routing == "tunnel" and not (dispatch == "geneve" and protocol == "geneve"):
        return Row(check, FAIL, f"bpf-lb-mode {mode} with tunnel routing ({protocol}) and "
                                f"dsr-dispatch {dispatch}",
                   why="DSR needs native routing, or Geneve dispatch in a Geneve tunnel; "
                       "otherwise NodePort replies are lost",
                   todo="use routingMode=native, or loadBalancer.dsrDispatch=geneve with "
                        "tunnelProtocol=geneve, or loadBalancer.mode=snat")
    return Row(check, WARN, f"bpf-lb-mode {mode} with {routing} routing, dispatch {dispatch}",
               why="DSR adds header overhead: large responses can stall on MTU, and DSR does "
                   "not support TCP Fast Open (failure class 13)",
               todo="probe NodePorts with payloads above the MTU on the canary")


def lb_map(facts: Facts, settings: RollbackSettings) -> Row:
    """Services x backends against bpf-lb-map-max (an estimate of the entries KPR programs)."""
    check = "lb-map-size"
    if (row := missing(check, facts, "cilium_config", "services", "endpoint_slices")) is not None:
        return row
    raw = (facts.cilium_config or {}).get("bpf-lb-map-max", "")
    try:
        size = int(raw) if raw else LB_MAP_DEFAULT
    except ValueError:
        return Row(check, FAIL, f"bpf-lb-map-max is not a number: {raw!r}")
    need = estimate_lb_entries(facts.services or [], facts.endpoint_slices or [])
    share = need / size if size else float("inf")
    found = f"about {need:,} LB map entries needed for {len(facts.services or [])} Services; " \
            f"bpf-lb-map-max {size:,} ({share:.0%})"
    why = ("Services beyond the map are silently missing; resizing later is disruptive "
           "(failure class 12)")
    todo = "raise bpf-lb-map-max (Helm bpf.lbMapMax) before the switch"
    if share >= LB_MAP_FAIL:
        return Row(check, FAIL, found, why=why, todo=todo)
    if share >= LB_MAP_WARN:
        return Row(check, WARN, found, why=why, todo=todo)
    return Row(check, PASS, found)


def estimate_lb_entries(services: list[dict[str, Any]], slices: list[dict[str, Any]]) -> int:
    """Per Service port and frontend, one entry per backend plus the frontend's own.

    Frontends: the ClusterIP(s), external IPs and LoadBalancer ingress IPs, and for NodePort
    and LoadBalancer Services the node-port frontends (the wildcard and the node address).
    """
    backends: dict[tuple[str, str], int] = {}
    for es in slices:
        meta = es.get("metadata") or {}
        owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if owner:
            ready = sum(1 for e in es.get("endpoints") or ()
                        if (e.get("conditions") or {}).get("ready", True) is not False)
            key = (meta.get("namespace", ""), owner)
            backends[key] = backends.get(key, 0) + ready
    total = 0
    for svc in services:
        spec, meta = svc.get("spec") or {}, svc.get("metadata") or {}
        if spec.get("type") == "ExternalName":
            continue
        ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip and ip != "None"]
        frontends = len(ips) + len(spec.get("externalIPs") or ())
        frontends += len(((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ())
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            frontends += 2
        count = backends.get((meta.get("namespace", ""), meta.get("name", "")), 0)
        total += len(spec.get("ports") or ()) * frontends * (count + 1)
    return total


def _routing_mode(config: dict[str, str]) -> str:
    mode = config.get("routing-mode", "")
    if mode:
        return mode
    tunnel = config.get("tunnel", "")  # before Cilium 1.14
    return "native" if tunnel == "disabled" else "tunnel"
