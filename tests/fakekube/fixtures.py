"""Pytest fixture and object builders for the fake Kubernetes API server.

``tests/conftest.py`` registers the fixtures for every test::

    def test_something(fake_kube):
        fake_kube.seed(configmap("cilium-config", "kube-system", {"debug": "true"}))
        api = api_client(fake_kube)           # a real kubernetes.client.ApiClient
        ...
        fake_kube.deny("patch", "configmaps", "kube-system")   # next patch answers 403
        fake_kube.fail("get", "configmaps", status=503)        # next get answers 503
        assert fake_kube.requests[-1].method == "PATCH"

``fake_kube`` is a :class:`FakeKube` started on 127.0.0.1 (ephemeral port) with
``.url`` and ``.kubeconfig`` (a kubeconfig file in the test's temp dir, context
``fake``, bearer token ``fake-token``). ``kube`` is the product's own client
(``exporter.kube.client.KubeClient``) on that fake, built with ``kube_options`` (override that
fixture in a folder's ``conftest.py`` for other options, e.g. a test clock);
``kube_client(fake, **options)`` builds more clients.
The builders return plain dicts shaped like the real objects; they are data only and send
nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.kube.client import KubeClient
from tests.fakekube.server import FakeKube, LoggedRequest, ResourceType

__all__ = [
    "FakeKube", "LoggedRequest", "ResourceType", "fake_kube", "kube", "kube_client",
    "kube_options",
    "write_kubeconfig",
    "api_client", "node", "pod", "configmap", "cilium_node_config", "service",
    "endpoint_slice", "daemonset", "start_fake_kube",
]

TOKEN = "fake-token"


def write_kubeconfig(path: Path, url: str, *, token: str = TOKEN,
                     namespace: str = "default") -> Path:
    """Write a kubeconfig pointing at ``url`` (context ``fake``) and return its path."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "fake", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                  "namespace": namespace}}],
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def start_fake_kube(directory: Path, **options: Any) -> FakeKube:
    """Start a fake (caller stops it) and write its kubeconfig into ``directory``."""
    fake = FakeKube(**options)
    fake.start()
    fake.kubeconfig = str(write_kubeconfig(directory / "kubeconfig", fake.url))
    return fake


@pytest.fixture
def fake_kube(tmp_path: Path) -> Iterator[FakeKube]:
    """A running fake API server; stopped after the test."""
    fake = start_fake_kube(tmp_path)
    try:
        yield fake
    finally:
        fake.stop()


@asynccontextmanager
async def kube_client(fake: FakeKube, **options: Any) -> AsyncIterator[KubeClient]:
    """The product's client on ``fake`` (5 s request timeout unless given); closed on exit."""
    client = KubeClient.connect(fake.kubeconfig, **{"request_timeout": 5.0, **options})
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def kube_options() -> dict[str, Any]:
    """Options of the ``kube`` client; a folder overrides this fixture for its own (e.g. a
    clock its tests move by hand)."""
    return {}


@pytest.fixture
async def kube(fake_kube: FakeKube, kube_options: dict[str, Any]) -> AsyncIterator[KubeClient]:
    """``KubeClient`` on ``fake_kube`` with ``kube_options``; closed after the test."""
    async with kube_client(fake_kube, **kube_options) as client:
        yield client


def api_client(fake: FakeKube) -> Any:
    """A real ``kubernetes.client.ApiClient`` configured from the fake's kubeconfig."""
    from kubernetes import config

    return config.new_client_from_config(config_file=fake.kubeconfig)


# --- object builders (plain dicts) ---------------------------------------------------


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
