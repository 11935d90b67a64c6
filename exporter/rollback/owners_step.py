"""Owners of what a rollback writes: stop GitOps from reverting it first (pure).

For every object the plan's actions write (cilium-config, CiliumNodeConfigs, the kube-proxy
DaemonSet and ConfigMap), its owner (:mod:`exporter.ownership`, read into the snapshot)
decides what comes before the change:

* Flux (HelmRelease or Kustomization): suspend it (``spec.suspend: true``);
* Argo CD: turn automated sync off on the Application;
* Helm alone: nothing before (time matters during an incident); the plan says the next
  ``helm upgrade --reuse-values`` would undo it and names ``rollback --persist``;
* none: a direct change is durable.

In every GitOps case the plan also says what to commit to Git and how to resume.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from exporter.ownership import ARGOCD, FLUX, HELM, Owner
from exporter.rollback.actions import (
    Action, DisableArgoSync, RestoreObject, SetConfigValues, StripNodeConfig, SuspendFlux,
    UnexcludeNodes,
)
from exporter.rollback.settings import RollbackSettings


def written_objects(actions: Iterable[Action], settings: RollbackSettings) -> list[str]:
    """Labels (as in ``ClusterSnapshot.owners``) of the objects the actions change."""
    kp = settings.kube_proxy
    out: list[str] = []
    for action in actions:
        if isinstance(action, SetConfigValues):
            out.append(f"ConfigMap {action.namespace}/{action.name}")
        elif isinstance(action, StripNodeConfig):
            out.append(f"CiliumNodeConfig {action.namespace}/{action.name}")
        elif isinstance(action, UnexcludeNodes):
            out.append(f"DaemonSet {kp.namespace}/{kp.daemonset}")
        elif isinstance(action, RestoreObject):
            out.append(f"{action.kind} {action.namespace}/{action.name}")
    return list(dict.fromkeys(out))


def owner_actions(owners: Mapping[str, Owner], written: Iterable[str],
                  settings: RollbackSettings) -> tuple[list[Action], list[str]]:
    """The suspensions to run first, and the plan's notes about each owner."""
    gitops: dict[tuple[str, str, str, str], list[str]] = {}
    notes: list[str] = []
    helm: dict[str, list[str]] = {}
    for label in written:
        owner = owners.get(label)
        if owner is None:
            continue
        if owner.owner == FLUX:
            gitops.setdefault((FLUX, owner.kind, owner.namespace, owner.name), []).append(label)
        elif owner.owner == ARGOCD:
            namespace = owner.namespace or settings.argocd_namespace
            gitops.setdefault((ARGOCD, "Application", namespace, owner.name), []).append(label)
        elif owner.owner == HELM and owner.helm is not None:
            helm.setdefault(f"{owner.helm.namespace}/{owner.helm.name}", []).append(label)
    actions: list[Action] = []
    for (kind_of, kind, namespace, name), owned in sorted(gitops.items()):
        if kind_of == FLUX:
            actions.append(SuspendFlux(kind, namespace, name, tuple(owned)))
            notes.append(f"Flux {kind} {namespace}/{name} is suspended first; commit "
                         "kubeProxyReplacement=false (or the CiliumNodeConfig change) to Git, then "
                         f"`flux resume {'helmrelease' if kind == 'HelmRelease' else 'kustomization'}"
                         f" {name} -n {namespace}`")
        else:
            actions.append(DisableArgoSync(namespace, name, tuple(owned)))
            notes.append(f"automated sync of Argo CD Application {namespace}/{name} is turned off "
                         "first; commit the change to Git, then re-enable automated sync")
    for release, owned in sorted(helm.items()):
        notes.append(f"{', '.join(owned)} belong(s) to Helm release {release}: the next "
                     "`helm upgrade --reuse-values` turns KPR back on; make the rollback durable "
                     "with `kpr-exporter rollback --persist`")
    return actions, notes
