"""The verification probes' pods, found through the Kubernetes API (one place for both users).

The exporter's probe collector (``exporter.app_probes``) scrapes what ``discover`` finds, and
``kpr-exporter verify --from-cluster`` reads the same probes directly (``cluster_urls``).
Both follow the ``probes`` settings section: the pods matching ``selector`` in ``namespace``
(on ``node_name`` only, when set), running and with an address, each at its container port
named ``metrics`` when it declares one, else at ``port``. A node runs two probes (pod network
and host network), so probes are keyed by pod name.
"""

from __future__ import annotations

from typing import Any

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.kube.resources import PODS
from exporter.sources.probes_settings import ProbeSourceSettings


class ProbeDiscoveryError(Exception):
    """The probe pods could not be listed, or none is running."""


async def discover(kube: KubeClient, settings: ProbeSourceSettings) -> dict[str, str]:
    """Running probe pods -> {pod name: metrics URL}; raises KubeError."""
    s = settings
    pods = await kube.list(
        PODS, s.namespace, label_selector=s.selector,
        field_selector=f"spec.nodeName={s.node_name}" if s.node_name else "")
    found: dict[str, str] = {}
    for pod in pods.items:
        name = (pod.get("metadata") or {}).get("name")
        status = pod.get("status") or {}
        ip = status.get("podIP")
        if name and ip and status.get("phase") == "Running":
            found[name] = s.url_for(ip, metrics_port(pod))
    return found


async def cluster_urls(kube: KubeClient, settings: ProbeSourceSettings) -> list[str]:
    """The metrics URL of every running probe pod, by pod name; raises ProbeDiscoveryError
    when the pods cannot be listed or none runs."""
    where = f"selector {settings.selector!r} in namespace {settings.namespace!r}" + (
        f" on node {settings.node_name!r}" if settings.node_name else "")
    try:
        found = await discover(kube, settings)
    except KubeError as exc:
        raise ProbeDiscoveryError(f"cannot list the probe pods ({where}): {exc}") from None
    if not found:
        raise ProbeDiscoveryError(f"no running probe pod with an address matches {where} "
                                  "(--probes.selector, --probes.namespace)")
    return [found[name] for name in sorted(found)]


def metrics_port(pod: dict[str, Any]) -> int | None:
    """The pod's container port named ``metrics``, if it declares one."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == "metrics" and isinstance(port.get("containerPort"), int):
                return int(port["containerPort"])
    return None
