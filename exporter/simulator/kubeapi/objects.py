"""Object builders for the simulated API: plain dicts shaped like the real objects (data
only; they send nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _meta(name: str, namespace: str | None, labels: Mapping[str, str] | None,
          annotations: Mapping[str, str] | None = None) -> dict:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def node(name: str, labels: Mapping[str, str] | None = None, *, ready: bool = True) -> dict:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": _meta(name, None, {"kubernetes.io/hostname": name, **(labels or {})}),
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def pod(name: str, namespace: str, node_name: str, labels: Mapping[str, str] | None = None, *,
        phase: str = "Running", ready: bool = True, image: str = "registry.k8s.io/pause:3.9",
        owner: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None) -> dict:
    meta = _meta(name, namespace, labels, annotations)
    if owner:
        meta["ownerReferences"] = [{"apiVersion": owner.get("apiVersion", "apps/v1"),
                                    "kind": owner.get("kind", "DaemonSet"),
                                    "name": owner["name"], "uid": owner.get("uid", "fake-uid"),
                                    "controller": True}]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"nodeName": node_name, "containers": [{"name": "main", "image": image}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "main", "ready": ready, "image": image, "imageID": "",
                                   "restartCount": 0}],
        },
    }


def configmap(name: str, namespace: str, data: Mapping[str, str],
              labels: Mapping[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, namespace, labels),
            "data": dict(data)}


def cilium_node_config(name: str, namespace: str, node_selector: Mapping[str, Any] | None,
                       defaults: Mapping[str, str], *, version: str = "v2") -> dict:
    """A CiliumNodeConfig; ``node_selector`` is a LabelSelector dict (matchLabels /
    matchExpressions), ``{}`` selects every node."""
    spec: dict[str, Any] = {"defaults": dict(defaults)}
    if node_selector is not None:
        spec["nodeSelector"] = dict(node_selector)
    return {"apiVersion": f"cilium.io/{version}", "kind": "CiliumNodeConfig",
            "metadata": _meta(name, namespace, None), "spec": spec}


def service(name: str, namespace: str, cluster_ip: str, ports: list[int] | list[dict], *,
            selector: Mapping[str, str] | None = None, external_ips: list[str] | None = None,
            load_balancer_ips: list[str] | None = None, svc_type: str = "ClusterIP") -> dict:
    """A Service; ``cluster_ip="None"`` makes it headless. Ports may be ints (TCP)."""
    port_specs = [p if isinstance(p, dict) else {"name": f"p{p}", "port": p, "protocol": "TCP",
                                                 "targetPort": p} for p in ports]
    spec: dict[str, Any] = {"type": svc_type, "clusterIP": cluster_ip, "ports": port_specs,
                            "selector": dict(selector or {"app": name})}
    if cluster_ip != "None":
        spec["clusterIPs"] = [cluster_ip]
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    status: dict[str, Any] = {"loadBalancer": {}}
    if load_balancer_ips:
        status["loadBalancer"]["ingress"] = [{"ip": ip} for ip in load_balancer_ips]
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, None),
            "spec": spec, "status": status}


def endpoint_slice(name: str, namespace: str, service_name: str, addresses: list[str],
                   ports: list[int] | list[dict], *, ready: bool = True,
                   address_type: str = "IPv4") -> dict:
    """An EndpointSlice owned by ``service_name``; one endpoint per address."""
    port_specs = [p if isinstance(p, dict) else {"name": f"p{p}", "port": p, "protocol": "TCP"}
                  for p in ports]
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": _meta(name, namespace, {"kubernetes.io/service-name": service_name}),
        "addressType": address_type,
        "endpoints": [{"addresses": [a], "conditions": {"ready": ready}} for a in addresses],
        "ports": port_specs,
    }


def daemonset(name: str, namespace: str, labels: Mapping[str, str], *,
              image: str = "registry.k8s.io/kube-proxy:v1.31.0",
              affinity: Mapping[str, Any] | None = None) -> dict:
    template_spec: dict[str, Any] = {"containers": [{"name": name, "image": image}]}
    if affinity:
        template_spec["affinity"] = dict(affinity)
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta(name, namespace, labels),
        "spec": {"selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"labels": dict(labels)}, "spec": template_spec}},
        "status": {"desiredNumberScheduled": 0, "numberReady": 0},
    }
