"""Can the agents reach the API server without kube-proxy (failure class 16)?"""

from __future__ import annotations

from typing import Any

from exporter.preflight.model import FAIL, PASS, Facts, Row, container_env, missing, some
from exporter.rollback.settings import RollbackSettings

CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
_WHY = ("without kube-proxy the agents cannot reach the API server through the kubernetes "
        "Service (failure class 16)")


def service_host(facts: Facts, settings: RollbackSettings) -> Row:
    check = "k8s-service-host"
    if (row := missing(check, facts, "cilium_daemonset")) is not None:
        return row
    c = settings.cilium
    if facts.cilium_daemonset is None:
        return Row(check, FAIL, f"DaemonSet {c.namespace}/{c.daemonset} not found",
                   todo="check rollback.cilium.namespace and rollback.cilium.daemonset")
    env = container_env(facts.cilium_daemonset)
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if host and port and (host.get("value") or host.get("valueFrom")):
        where = host.get("value") or "a ConfigMap/Secret reference"
        return Row(check, PASS, f"agents reach the API server directly ({where})")
    urls = (facts.cilium_config or {}).get("k8s-api-server-urls", "").strip()
    if urls:
        return Row(check, PASS, f"agents use k8s-api-server-urls ({urls})")
    return Row(check, FAIL, "KUBERNETES_SERVICE_HOST/PORT are not set on the Cilium agents",
               why=_WHY, todo="set Helm values k8sServiceHost and k8sServicePort first")


def api_server_ha(facts: Facts, settings: RollbackSettings) -> Row:
    """k8sServiceHost must not be one control-plane node's address when there are several."""
    check = "k8s-service-host-ha"
    if (row := missing(check, facts, "cilium_daemonset", "nodes")) is not None:
        return row
    host = (container_env(facts.cilium_daemonset or {}).get("KUBERNETES_SERVICE_HOST") or {})
    value = str(host.get("value") or "")
    planes = [n for n in facts.nodes or ()
              if any(k in ((n.get("metadata") or {}).get("labels") or {}) for k in CONTROL_PLANE_LABELS)]
    if not value:
        return Row(check, PASS, "no literal k8sServiceHost to compare (see k8s-service-host)")
    owners = [n["metadata"]["name"] for n in planes if value in _addresses(n)]
    if len(planes) > 1 and owners:
        return Row(check, FAIL, f"k8sServiceHost {value} is control-plane node {some(owners)}'s own "
                                f"address, one of {len(planes)} control-plane nodes",
                   why="when that node is down every agent loses the API server, and new nodes "
                       "cannot join once kube-proxy is gone (failure class 16)",
                   todo="point k8sServiceHost at a load-balanced address (VIP or DNS name) "
                        "of all API servers")
    return Row(check, PASS, f"k8sServiceHost {value} is not a single control-plane node's "
                            f"address ({len(planes)} control-plane node(s))")


def _addresses(node: dict[str, Any]) -> set[str]:
    found = {a.get("address", "") for a in (node.get("status") or {}).get("addresses") or ()}
    return found | {node["metadata"]["name"]}
