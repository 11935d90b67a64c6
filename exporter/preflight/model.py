"""What preflight reads (``Facts``) and what each check answers (``Row``).

A row says what the check found (``message``), why it matters — with the failure class
number of the project's KPR failure table where one applies (``why``) — and what to do
(``todo``). ``None`` in ``Facts`` means "could not read"; the reason is in ``errors``, and a
check whose input could not be read fails with it: no data is never a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.cilium import NodeConfig
from exporter.rollback.model import Backup

PASS: Final = "pass"
WARN: Final = "warn"
FAIL: Final = "fail"
_SHOWN: Final = 5


@dataclass(frozen=True, slots=True)
class Row:
    check: str
    status: str
    message: str
    why: str = ""
    todo: str = ""


@dataclass(frozen=True)
class Facts:
    """The cluster as preflight sees it."""

    cilium_daemonset: dict[str, Any] | None = None
    cilium_config: dict[str, str] | None = None
    cilium_config_object: dict[str, Any] | None = None  # the ConfigMap itself (owner markers)
    node_configs: tuple[NodeConfig, ...] = ()
    node_config_objects: tuple[dict[str, Any], ...] = ()
    nodes: list[dict[str, Any]] | None = None
    services: list[dict[str, Any]] | None = None
    endpoint_slices: list[dict[str, Any]] | None = None
    pods: list[dict[str, Any]] | None = None
    namespaces: list[dict[str, Any]] | None = None
    kube_proxy_daemonset: dict[str, Any] | None = None
    kube_proxy_configmap: dict[str, Any] | None = None
    helm_revisions: dict[int, str] | None = None  # Cilium's release: revision -> status
    backup: Backup | None = None
    errors: dict[str, str] = field(default_factory=dict)  # fact name -> why it is missing

    @property
    def kernels(self) -> dict[str, str] | None:
        """node -> status.nodeInfo.kernelVersion."""
        if self.nodes is None:
            return None
        return {n["metadata"]["name"]: ((n.get("status") or {}).get("nodeInfo") or {})
                .get("kernelVersion", "") for n in self.nodes}


def missing(check: str, facts: Facts, *names: str) -> Row | None:
    """A failing row when one of the named facts could not be read."""
    for name in names:
        if name in facts.errors:
            return Row(check, FAIL, f"could not check: {facts.errors[name]}",
                       todo="grant the read, or run preflight with credentials that have it")
    return None


def name_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def some(items: Iterable[str]) -> str:
    """At most five items, then how many more."""
    shown = list(items)
    more = f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
    return ", ".join(shown[:_SHOWN]) + more


def container_env(workload: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The first definition of each environment variable over the pod template's containers."""
    env: dict[str, dict[str, Any]] = {}
    spec = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in spec.get("containers") or ():
        for item in container.get("env") or ():
            env.setdefault(item.get("name"), item)
    return env
