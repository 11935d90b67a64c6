"""Who owns the objects a switch or a rollback writes, kept current from the API.

Watches the kube-proxy DaemonSet and ConfigMap by name and reads cilium-config and the
CiliumNodeConfigs from the datapath watcher's own mirrors (one watch per object, never
two). ``OwnerCollector`` exports ``kpr_config_owner_info{object, owner, owner_name}``: one
series per object, ``owner`` one of helm, flux, argocd, none, or ``unknown`` while the
object cannot be read (no data is never "no owner").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from exporter.kube.client import Backoff, KubeClient
from exporter.kube.mirror import Mirror
from exporter.kube.resources import CONFIGMAPS, DAEMONSETS
from exporter.kube.settings import KubeSettings
from exporter.ownership import Owner, detect_owner

UNKNOWN: Final = "unknown"
#: (object label, the object or None when absent, whether it could be read)
Observed = tuple[str, dict[str, Any] | None, bool]


class KubeProxyObjects:
    """Mirrors of the kube-proxy DaemonSet and ConfigMap, by name."""

    def __init__(self, client: KubeClient, settings: KubeSettings, *, namespace: str,
                 daemonset: str, configmap: str) -> None:
        common: dict[str, Any] = {
            "namespace": namespace, "resync_seconds": settings.resync_seconds,
            "backoff": Backoff(settings.retry_min_seconds, settings.retry_max_seconds),
            "refused_retry_seconds": settings.retry_max_seconds,
        }
        self.daemonset = Mirror(client, DAEMONSETS, field_selector=f"metadata.name={daemonset}",
                                **common)
        self.configmap = Mirror(client, CONFIGMAPS, field_selector=f"metadata.name={configmap}",
                                **common)
        self._names = (daemonset, configmap)

    @property
    def mirrors(self) -> tuple[Mirror, ...]:
        return (self.daemonset, self.configmap)

    def observed(self) -> list[Observed]:
        out: list[Observed] = []
        for mirror, name in zip(self.mirrors, self._names):
            obj = next(iter(mirror.objects.values()), None)
            out.append((f"{mirror.resource.kind} {mirror.namespace}/{name}", obj, mirror.available))
        return out


def observed_in(mirror: Mirror, label: Callable[[dict[str, Any]], str]) -> list[Observed]:
    """Every object of a mirror, labelled; one unreadable entry when it cannot be read."""
    if not mirror.available:
        return [(f"{mirror.resource.kind} in {mirror.namespace}", None, False)]
    return [(label(obj), obj, True) for _, obj in sorted(mirror.objects.items())]


def node_configs_observed(mirrors: Iterable[Mirror]) -> list[Observed]:
    """CiliumNodeConfigs from whichever served versions could be read (one object once)."""
    readable = [m for m in mirrors if m.available]
    if not readable:
        first = next(iter(mirrors), None)
        where = f" in {first.namespace}" if first is not None else ""
        return [(f"CiliumNodeConfig{where}", None, False)]
    seen: dict[str, Observed] = {}
    for mirror in readable:
        for (namespace, name), obj in sorted(mirror.objects.items()):
            seen.setdefault(name, (f"CiliumNodeConfig {namespace}/{name}", obj, True))
    return list(seen.values())


def owner_rows(observed: Iterable[Observed]) -> list[tuple[str, str, str]]:
    """``(object, owner, owner_name)`` per object; absent objects are left out."""
    rows = []
    for label, obj, readable in observed:
        if not readable:
            rows.append((label, UNKNOWN, ""))
        elif obj is not None:
            owner: Owner = detect_owner(obj)
            rows.append((label, owner.owner, owner.owner_name))
    return rows


class OwnerCollector(Collector):
    """``kpr_config_owner_info`` from the current view of the watched objects."""

    def __init__(self, sources: Iterable[Callable[[], list[Observed]]]) -> None:
        self._sources = tuple(sources)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "kpr_config_owner_info",
            "Owner of each object a switch or rollback writes (helm, flux, argocd, none; "
            "unknown while unreadable).", labels=["object", "owner", "owner_name"])
        for row in owner_rows(o for source in self._sources for o in source()):
            family.add_metric(list(row), 1.0)
        yield family


def config_map_label(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"ConfigMap {meta.get('namespace', '')}/{meta.get('name', '')}"
