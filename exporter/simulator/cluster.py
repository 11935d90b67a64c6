"""The simulated cluster as the Kubernetes API would show it, for rollback plans in the demo.

The scenario migrates nodes the official per-node way: migrated nodes carry the label
``io.cilium.migration/kube-proxy-replacement=true``, a ``CiliumNodeConfig`` selecting
that label turns KPR on for them, and the kube-proxy DaemonSet keeps off them through a
node affinity; ``cilium-config`` itself says ``false``, and a backup exists. From that
view the real planner (``exporter.rollback.plan``) computes the same plan it would
compute against a cluster, which the dry-run rollback then shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from exporter.model import EBPF
from exporter.rollback.roles import Scope, Trigger
from exporter.cilium import NodeConfig
from exporter.rollback.model import Backup, ClusterSnapshot
from exporter.rollback.actions import Plan
from exporter.rollback.plan import build_plan
from exporter.rollback.settings import RollbackSettings
from exporter.simulator.scenarios import Scenario


def _daemonset(settings: RollbackSettings, label: str) -> dict[str, Any]:
    kp = settings.kube_proxy
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": kp.daemonset, "namespace": kp.namespace},
        "spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": label, "operator": "NotIn", "values": ["true"]}]},
            ]}}}}}},
    }


def cluster_view(scenario: Scenario, at_s: float, settings: RollbackSettings) -> ClusterSnapshot:
    """What ``read_snapshot`` would return for the simulated cluster at scenario second ``at_s``."""
    label = settings.kube_proxy.migration_label
    nodes = {
        name: ({label: "true"} if scenario.datapath_at(name, at_s) == EBPF else {})
        for name in scenario.cluster.node_names
    }
    cilium_config = {"kube-proxy-replacement": "false", "k8s-service-host": "10.0.0.1"}
    node_config = NodeConfig(
        settings.cilium.namespace, "kube-proxy-replacement",
        {"matchLabels": {label: "true"}}, {"kube-proxy-replacement": "true"},
    )
    daemonset = _daemonset(settings, label)
    backup = Backup(
        taken_at="scenario start",
        cilium_config={"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": settings.cilium.configmap,
                                    "namespace": settings.cilium.namespace},
                       "data": dict(cilium_config)},
        kube_proxy_daemonset=daemonset,
    )
    return ClusterSnapshot(nodes=nodes, cilium_config=cilium_config, node_configs=(node_config,),
                           kube_proxy_daemonset=daemonset, kube_proxy_configmap=True, backup=backup)


class SimulatedPlanner:
    """A rollback planner over the simulated cluster (dry-run only: there is nothing to change)."""

    def __init__(self, scenario: Scenario, scenario_time: Callable[[], float],
                 settings: RollbackSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._scenario = scenario
        self._scenario_time = scenario_time
        self._settings = settings
        self._clock = clock

    async def plan(self, scope: Scope, trigger: Trigger) -> Plan:
        view = cluster_view(self._scenario, self._scenario_time(), self._settings)
        return build_plan(view, scope, trigger, self._settings, self._clock())
