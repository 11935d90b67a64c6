"""The exact Kubernetes permissions the rollback executor, backup, preflight and the guided
migration use.

Declared once, here, so the Helm chart's RBAC can be compared with it in a test
(``required(settings)``; ``as_rules`` gives RBAC ``rules`` grouped per namespace).
``resource_names`` is empty where RBAC cannot restrict by name: ``create`` (the name
is not known at authorisation time), ``list``/``watch``, and pods whose names the
DaemonSet controller makes up. ``optional`` permissions degrade a feature with a
clear message instead of failing (the Helm release and its values in the backup need to
list Secrets, which RBAC cannot narrow to Helm's; kube-proxy's ServiceAccount and
ClusterRoleBindings need cluster-wide reads; grant them only if you want them — a backup
taken from a workstation with an operator's rights captures them anyway).

The migration (``exporter.migrate``) runs its own steps (``migrate``), and with them the
preflight, a backup and, to abort, the rollback: ``MIGRATION_USES``. Draining nodes
(``migrate start --drain``) is a use of its own (``drain``): evicting pods in every
namespace, granted only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from exporter.migrate.settings import MigrateSettings
from exporter.rollback.settings import RollbackSettings

ROLLBACK: Final = "rollback"
BACKUP: Final = "backup"
PREFLIGHT: Final = "preflight"
MIGRATE: Final = "migrate"
DRAIN: Final = "drain"
USES: Final = (ROLLBACK, BACKUP, PREFLIGHT)
#: What the migration controller runs: its steps, the preflight, a backup, an abort.
MIGRATION_USES: Final = (MIGRATE, PREFLIGHT, BACKUP, ROLLBACK)
CLUSTER_SCOPE: Final = ""  # namespace of cluster-scoped (or all-namespace) permissions


@dataclass(frozen=True, slots=True)
class Permission:
    """One RBAC grant: who needs it and why."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]
    namespace: str  # "" = cluster-scoped resource or all namespaces (ClusterRole)
    resource_names: tuple[str, ...] = ()
    used_by: tuple[str, ...] = ()
    why: str = ""
    optional: bool = False


def required(settings: RollbackSettings, uses: Iterable[str] = USES, *,
             migrate: MigrateSettings | None = None) -> tuple[Permission, ...]:
    """Every permission the given uses need, for the object names in ``settings`` (and
    ``migrate``: the migration's state ConfigMap)."""
    c, kp, own = settings.cilium, settings.kube_proxy, settings.namespace
    migration_state = (migrate or MigrateSettings()).state_configmap
    wanted = set(uses)
    table = [
        # --- nodes (cluster-scoped) ---
        Permission("", "nodes", ("get", "list"), CLUSTER_SCOPE, (), (ROLLBACK, PREFLIGHT, MIGRATE),
                   "node labels (migration label, selectors) and kernel versions"),
        Permission("", "nodes", ("patch",), CLUSTER_SCOPE, (), (ROLLBACK, MIGRATE),
                   "remove the migration label from rolled-back nodes; label, cordon and "
                   "uncordon migrated ones"),
        # --- cilium ---
        Permission("", "configmaps", ("get",), c.namespace, (c.configmap,),
                   (ROLLBACK, BACKUP, PREFLIGHT, MIGRATE), "read cilium-config"),
        Permission("", "configmaps", ("patch",), c.namespace, (c.configmap,), (ROLLBACK, MIGRATE),
                   'set kube-proxy-replacement: "false" (rollback) or "true" (migration, when '
                   "no owner makes it)"),
        Permission("cilium.io", "ciliumnodeconfigs", ("list",), c.namespace, (),
                   (ROLLBACK, BACKUP, PREFLIGHT, MIGRATE), "per-node KPR overrides"),
        Permission("cilium.io", "ciliumnodeconfigs", ("get", "update", "delete"), c.namespace, (),
                   (ROLLBACK, MIGRATE), "strip or delete the CiliumNodeConfigs that switch KPR on"),
        Permission("cilium.io", "ciliumnodeconfigs", ("create",), c.namespace, (), (MIGRATE,),
                   "the CiliumNodeConfig that turns KPR on for labelled nodes"),
        Permission("apps", "daemonsets", ("get",), c.namespace, (c.daemonset,), (PREFLIGHT,),
                   "k8sServiceHost / KUBERNETES_SERVICE_HOST on the agents"),
        Permission("", "pods", ("list",), c.namespace, (), (ROLLBACK, MIGRATE),
                   "find the agent pod of a node"),
        Permission("", "pods", ("delete",), c.namespace, (), (ROLLBACK, MIGRATE),
                   "restart an agent (the DaemonSet controller recreates it)"),
        Permission("", "secrets", ("list",), c.namespace, (), (BACKUP, PREFLIGHT, MIGRATE),
                   f"Helm release and its values (sh.helm.release.v1.{c.helm_release}.v<N>)",
                   optional=True),
        # --- kube-proxy ---
        Permission("apps", "daemonsets", ("get",), kp.namespace, (kp.daemonset,),
                   (ROLLBACK, BACKUP, PREFLIGHT, MIGRATE), "is kube-proxy there, where does it schedule"),
        Permission("apps", "daemonsets", ("patch",), kp.namespace, (kp.daemonset,), (ROLLBACK, MIGRATE),
                   "lift an exclusion from the kube-proxy affinity; add the migration's"),
        Permission("apps", "daemonsets", ("delete",), kp.namespace, (kp.daemonset,), (MIGRATE,),
                   "delete kube-proxy at the migration's end (its backup is kept)"),
        Permission("apps", "daemonsets", ("create",), kp.namespace, (), (ROLLBACK,),
                   "restore the kube-proxy DaemonSet from the backup"),
        Permission("", "configmaps", ("get",), kp.namespace, (kp.configmap,), (ROLLBACK, BACKUP, PREFLIGHT),
                   "is the kube-proxy ConfigMap there, kube-proxy's mode"),
        Permission("", "serviceaccounts", ("get",), kp.namespace, (), (BACKUP,),
                   "kube-proxy's ServiceAccount", optional=True),
        Permission("rbac.authorization.k8s.io", "clusterrolebindings", ("list",), CLUSTER_SCOPE, (),
                   (BACKUP,), "the ClusterRoleBindings of kube-proxy's ServiceAccount", optional=True),
        Permission("", "configmaps", ("create",), kp.namespace, (), (ROLLBACK,),
                   "restore the kube-proxy ConfigMap from the backup"),
        Permission("", "pods", ("list",), kp.namespace, (), (ROLLBACK, MIGRATE),
                   "wait for kube-proxy to be ready, or gone from a migrated node"),
        # --- GitOps owners (only when they own what a rollback writes) ---
        Permission("helm.toolkit.fluxcd.io", "helmreleases", ("get", "patch"), CLUSTER_SCOPE, (),
                   (ROLLBACK,), "suspend the Flux HelmRelease that owns Cilium's config",
                   optional=True),
        Permission("kustomize.toolkit.fluxcd.io", "kustomizations", ("get", "patch"), CLUSTER_SCOPE,
                   (), (ROLLBACK,), "suspend the Flux Kustomization that owns kube-proxy or Cilium",
                   optional=True),
        Permission("argoproj.io", "applications", ("get", "patch"), CLUSTER_SCOPE, (), (ROLLBACK,),
                   "turn off automated sync of the owning Argo CD Application", optional=True),
        # --- all namespaces (preflight) ---
        Permission("", "services", ("list",), CLUSTER_SCOPE, (), (PREFLIGHT,),
                   "externalTrafficPolicy: Local and sessionAffinity: ClientIP users"),
        Permission("", "pods", ("list",), CLUSTER_SCOPE, (), (PREFLIGHT,),
                   "hostPort users, service-mesh sidecars"),
        Permission("discovery.k8s.io", "endpointslices", ("list",), CLUSTER_SCOPE, (), (PREFLIGHT,),
                   "backends per Service against the LB map size"),
        Permission("", "namespaces", ("list",), CLUSTER_SCOPE, (), (PREFLIGHT,),
                   "service-mesh injection labels", optional=True),
        # --- all namespaces (the migration's drain) ---
        Permission("", "pods", ("list",), CLUSTER_SCOPE, (), (DRAIN,), "the pods on a node to drain"),
        Permission("", "pods/eviction", ("create",), CLUSTER_SCOPE, (), (DRAIN,),
                   "evict them (their PodDisruptionBudgets decide), as kubectl drain does"),
        # --- the exporter's own objects ---
        Permission("", "configmaps", ("get", "update", "patch"), own,
                   (settings.state_configmap, settings.backup_configmap),
                   (ROLLBACK, BACKUP, PREFLIGHT, MIGRATE), "rollback progress and the backup"),
        Permission("", "configmaps", ("get", "update"), own, (migration_state,), (MIGRATE,),
                   "the migration's spec, status and requests"),
        Permission("", "configmaps", ("create",), own, (), (ROLLBACK, BACKUP, MIGRATE),
                   "first write of the state, backup and migration ConfigMaps"),
        Permission("coordination.k8s.io", "leases", ("get", "update"), own, (settings.lease_name,),
                   (ROLLBACK, MIGRATE), "one rollback or migration at a time across replicas"),
        Permission("coordination.k8s.io", "leases", ("create",), own, (), (ROLLBACK, MIGRATE),
                   "first use of the Lease"),
        Permission("", "events", ("create",), own, (), (ROLLBACK, MIGRATE),
                   "record rollbacks and migration steps as Events"),
    ]
    return tuple(p for p in table if wanted & set(p.used_by))


def as_rules(permissions: Iterable[Permission]) -> dict[str, list[dict[str, list[str]]]]:
    """RBAC rules per namespace (``""`` for the ClusterRole), merged by (group, resource, names)."""
    merged: dict[tuple[str, str, str, tuple[str, ...]], set[str]] = {}
    for p in permissions:
        merged.setdefault((p.namespace, p.api_group, p.resource, p.resource_names), set()).update(p.verbs)
    out: dict[str, list[dict[str, list[str]]]] = {}
    for (ns, group, resource, names), verbs in sorted(merged.items()):
        rule = {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
        if names:
            rule["resourceNames"] = list(names)
        out.setdefault(ns, []).append(rule)
    return out
