"""A three-node cluster on kube-proxy for the migration tests: the cluster's parts the
simulated API has not (``Kubelet``, ``NodeEndpoints``: ``exporter.simulator.kubeapi.cluster``),
the settings the tests run the controller with, and the state the official procedure talks
about."""

from __future__ import annotations

import json
from typing import Any

from exporter.cilium import KPR_HEALTHZ_KEY, KPR_KEY, MIGRATION_LABEL
from exporter.migrate.settings import MigrateSettings
from exporter.rollback.settings import DatapathProof, RollbackSettings
from exporter.simulator.kubeapi.cluster import (
    ADDRESSES, FRESH, HEALTHZ_AT_START, KPR_AT_START, NODES, Kubelet, NodeEndpoints,
    seed_kube_proxy_cluster,
)

MIGRATION = MIGRATION_LABEL

__all__ = ["ADDRESSES", "FRESH", "HEALTHZ_AT_START", "KPR_AT_START", "NODES", "Kubelet",
           "NodeEndpoints", "seed_kube_proxy_cluster", "MIGRATION", "settings",
           "migrate_settings", "cluster_state"]


def settings(port: int, **overrides: Any) -> RollbackSettings:
    base: dict[str, Any] = dict(
        mode="enforce", namespace="kpr", identity="migration-test",
        proof=DatapathProof(kube_proxy_health_port=port, agent_metrics_port=port, timeout_seconds=60))
    base.update(overrides)
    return RollbackSettings(**base)


def migrate_settings(**overrides: Any) -> MigrateSettings:
    return MigrateSettings(**{"owner": "direct", "poll_interval_seconds": 5.0, **overrides})


def cluster_state(fake: Any) -> dict[str, Any]:
    """What the official procedure talks about, per step: labels, the kube-proxy DaemonSet's
    affinity, the CiliumNodeConfigs, cilium-config's KPR keys, where kube-proxy runs and
    which agents run KPR."""
    ds = fake.get("daemonsets", "kube-proxy", "kube-system")
    config = (fake.get("configmaps", "cilium-config", "kube-system") or {}).get("data") or {}
    return {
        "labels": {n["metadata"]["name"]: n["metadata"]["labels"].get(MIGRATION)
                   for n in fake.objects("nodes")},
        "unschedulable": sorted(n["metadata"]["name"] for n in fake.objects("nodes")
                                if (n.get("spec") or {}).get("unschedulable")),
        "kube_proxy_daemonset": None if ds is None else json.dumps(
            ds["spec"]["template"]["spec"].get("affinity"), sort_keys=True),
        "node_configs": {o["metadata"]["name"]: o["spec"] for o in
                         fake.objects("ciliumnodeconfigs", api_version="cilium.io/v2")},
        "kpr": config.get(KPR_KEY), "healthz": config.get(KPR_HEALTHZ_KEY) or None,
        "kube_proxy_on": sorted(p["spec"]["nodeName"] for p in fake.objects("pods", "kube-system")
                                if p["metadata"].get("labels", {}).get("k8s-app") == "kube-proxy"),
    }
