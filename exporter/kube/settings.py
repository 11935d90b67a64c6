"""Settings of the Kubernetes access layer, the datapath watcher and the backend map."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from exporter.config_constraints import at_least, not_empty, positive

_SELECTOR = re.compile(
    r"^\s*!?[A-Za-z0-9_./-]+\s*((==|=|!=)\s*[A-Za-z0-9_.-]*|\s+(in|notin)\s*\([^)]*\))?\s*$")


@dataclass(frozen=True)
class KubeSettings:
    enabled: str = field(default="auto", metadata={
        "help": "Use the Kubernetes API: auto (when a kubeconfig or service account is "
                "found), true (fail without one) or false.",
        "choices": ("auto", "true", "false")})
    kubeconfig: str = field(default="", metadata={
        "help": "Kubeconfig file; empty: in-cluster service account, else $KUBECONFIG or "
                "~/.kube/config."})
    context: str = field(default="", metadata={
        "help": "Kubeconfig context; empty: the current context."})
    cilium_namespace: str = field(default="kube-system", metadata={
        "help": "Namespace of the Cilium agents, cilium-config and CiliumNodeConfigs.",
        "check": not_empty()})
    cilium_config_name: str = field(default="cilium-config", metadata={
        "help": "Name of Cilium's ConfigMap.", "check": not_empty()})
    agent_selector: str = field(default="k8s-app=cilium", metadata={
        "help": "Label selector of the Cilium agent pods."})
    kube_proxy_namespace: str = field(default="kube-system", metadata={
        "help": "Namespace of the kube-proxy pods.", "check": not_empty()})
    kube_proxy_selector: str = field(default="k8s-app=kube-proxy", metadata={
        "help": "Label selector of the kube-proxy pods."})
    resync_seconds: float = field(default=300.0, metadata={
        "help": "Relist every watched resource this often (seconds).", "check": positive()})
    request_timeout_seconds: float = field(default=30.0, metadata={
        "help": "Timeout of one Kubernetes API request (seconds).", "check": positive()})
    retry_min_seconds: float = field(default=1.0, metadata={
        "help": "First retry delay after a failed watch (seconds); doubles per failure.",
        "check": positive()})
    retry_max_seconds: float = field(default=60.0, metadata={
        "help": "Longest retry delay after failed watches, or a refused one (seconds).",
        "check": positive()})
    backend_map: bool = field(default=True, metadata={
        "help": "Watch Services and EndpointSlices to attribute KPR connections by address."})
    backend_map_max_entries: int = field(default=200_000, metadata={
        "help": "Most address:port entries the backend and frontend maps hold together.",
        "check": at_least(1)})

    def problems(self) -> list[str]:
        found = []
        for name in ("agent_selector", "kube_proxy_selector"):
            value = getattr(self, name)
            parts = [p for p in _split(value)]
            if not value.strip() or not all(_SELECTOR.match(p) for p in parts):
                found.append(f"kube.{name} {value!r} is not a label selector")
        if self.retry_max_seconds < self.retry_min_seconds:
            found.append("kube.retry_max_seconds must not be below kube.retry_min_seconds")
        return found


def is_label_selector(value: str) -> bool:
    """Whether ``value`` is a non-empty label selector (equality and set terms)."""
    return bool(value.strip()) and all(_SELECTOR.match(p) for p in _split(value))


def _split(selector: str) -> list[str]:
    """Split a label selector on the commas outside ``( )``."""
    parts, depth, current = [], 0, ""
    for ch in selector:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts
