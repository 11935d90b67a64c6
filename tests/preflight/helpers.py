"""Facts of a cluster that passes every check, and a one-check evaluator."""

from __future__ import annotations

from typing import Any

from exporter.preflight import Facts, Row, evaluate
from exporter.rollback.model import Backup
from tests.fakekube.fixtures import daemonset
from tests.rollback.cluster import CILIUM_LABELS, settings

S = settings()
GOOD_ENV = [{"name": "KUBERNETES_SERVICE_HOST", "value": "api.example.internal"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": "6443"}]
BACKUP = Backup("2026-11-20T10:00:00Z", {}, {"kind": "DaemonSet"}, {}, (), {"revision": 7})


def cilium_ds(env: list[dict[str, Any]] | None = None,
              image: str = "quay.io/cilium/cilium:v1.18.3@sha256:0123") -> dict[str, Any]:
    ds = daemonset("cilium", "kube-system", CILIUM_LABELS, image=image)
    ds["spec"]["template"]["spec"]["containers"][0]["name"] = "cilium-agent"
    if env is not None:
        ds["spec"]["template"]["spec"]["containers"][0]["env"] = env
    return ds


def kernel_nodes(kernels: dict[str, str], labels: dict[str, dict[str, str]] | None = None,
                 addresses: dict[str, str] | None = None) -> list[dict[str, Any]]:
    return [{"metadata": {"name": name, "labels": (labels or {}).get(name, {})},
             "status": {"nodeInfo": {"kernelVersion": kernel},
                        "addresses": [{"type": "InternalIP", "address": (addresses or {})[name]}]
                        if name in (addresses or {}) else []}}
            for name, kernel in kernels.items()]


def good_facts(**overrides: Any) -> Facts:
    base: dict[str, Any] = dict(
        cilium_daemonset=cilium_ds(GOOD_ENV), cilium_config={"kube-proxy-replacement": "false"},
        nodes=kernel_nodes({"node-a": "6.1.0-18-amd64", "node-b": "5.15.0-1052-azure"}),
        services=[], endpoint_slices=[], pods=[], namespaces=[],
        kube_proxy_configmap={"data": {"config.conf": "kind: KubeProxyConfiguration\nmode: iptables\n"}},
        helm_revisions={7: "deployed", 6: "superseded"}, backup=BACKUP)
    base.update(overrides)
    return Facts(**base)


def row(facts: Facts, check: str) -> Row:
    (found,) = [r for r in evaluate(facts, S) if r.check == check]
    return found


def said(r: Row) -> str:
    """Everything a row tells: what it found, why it matters, what to do."""
    return " | ".join((r.message, r.why, r.todo))
