"""Reading preflight's facts from the API; every failure is recorded, none raises."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from exporter.cilium import NodeConfig
from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError, NotFound
from exporter.kube.resources import (
    CONFIGMAPS, DAEMONSETS, ENDPOINTSLICES, NAMESPACES, NODES, PODS, SECRETS, SERVICES, Resource,
)
from exporter.preflight.model import Facts
from exporter.rollback.backup import BackupError, BackupStore, list_node_configs
from exporter.rollback.settings import RollbackSettings

T = TypeVar("T")


async def gather(kube: KubeClient, settings: RollbackSettings, store: BackupStore | None) -> Facts:
    """Read the facts; each failure is recorded in ``errors`` instead of raising."""
    c, kp = settings.cilium, settings.kube_proxy
    errors: dict[str, str] = {}

    async def attempt(name: str, read: Callable[[], Awaitable[T]]) -> T | None:
        try:
            return await read()
        except NotFound:
            return None
        except (KubeError, BackupError) as exc:
            errors[name] = str(exc)
            return None

    async def items(resource: Resource, namespace: str | None = None,
                    selector: str = "") -> list[dict[str, Any]]:
        return (await kube.list(resource, namespace, label_selector=selector)).items

    async def helm_revisions() -> dict[int, str]:
        secrets = await items(SECRETS, c.namespace, f"owner=helm,name={c.helm_release}")
        out = {}
        for s in secrets:
            labels = (s.get("metadata") or {}).get("labels") or {}
            if str(labels.get("version", "")).isdigit():
                out[int(labels["version"])] = str(labels.get("status", ""))
        return out

    cilium_cm = await attempt("cilium_config", lambda: kube.get(CONFIGMAPS, c.configmap, c.namespace))
    cnc_objects = await attempt("node_configs", lambda: list_node_configs(kube, c.namespace))
    cncs = tuple(cnc_objects[1]) if cnc_objects else ()
    return Facts(
        cilium_daemonset=await attempt("cilium_daemonset",
                                       lambda: kube.get(DAEMONSETS, c.daemonset, c.namespace)),
        cilium_config=dict(cilium_cm.get("data") or {}) if cilium_cm is not None else None,
        cilium_config_object=cilium_cm,
        node_configs=tuple(NodeConfig.from_object(o) for o in cncs),
        node_config_objects=cncs,
        nodes=await attempt("nodes", lambda: items(NODES)),
        services=await attempt("services", lambda: items(SERVICES)),
        endpoint_slices=await attempt("endpoint_slices", lambda: items(ENDPOINTSLICES)),
        pods=await attempt("pods", lambda: items(PODS)),
        namespaces=await attempt("namespaces", lambda: items(NAMESPACES)),
        kube_proxy_daemonset=await attempt(
            "kube_proxy_daemonset", lambda: kube.get(DAEMONSETS, kp.daemonset, kp.namespace)),
        kube_proxy_configmap=await attempt(
            "kube_proxy_configmap", lambda: kube.get(CONFIGMAPS, kp.configmap, kp.namespace)),
        helm_revisions=await attempt("helm_revisions", helm_revisions),
        backup=await attempt("backup", store.load) if store is not None else None,
        errors=errors,
    )
