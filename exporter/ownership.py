"""Who owns a Kubernetes object, from the markers its owner leaves in its metadata.

A change written straight into a managed object is undone by the owner's next reconcile,
so every write to Cilium's or kube-proxy's configuration starts by asking who owns it.
Markers, outermost owner first (a Flux HelmRelease drives Helm, so its objects carry
Helm's markers too; the GitOps controller is the one that reverts a change):

========== ============================================================================
owner      marker
========== ============================================================================
flux       labels ``helm.toolkit.fluxcd.io/name`` + ``/namespace`` (a HelmRelease) or
           ``kustomize.toolkit.fluxcd.io/name`` + ``/namespace`` (a Kustomization)
argocd     annotation ``argocd.argoproj.io/tracking-id`` (annotation tracking), or label
           ``app.kubernetes.io/instance`` on an object no Helm release claims (label
           tracking; weaker, since many charts set that label themselves)
helm       annotations ``meta.helm.sh/release-name`` + ``meta.helm.sh/release-namespace``
           (label ``app.kubernetes.io/managed-by: Helm`` alone is only a hint: rendered
           templates carry it whoever applied them)
none       none of the above: a direct change is durable
========== ============================================================================

Pure: metadata in, :class:`Owner` out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

HELM: Final = "helm"
FLUX: Final = "flux"
ARGOCD: Final = "argocd"
NONE: Final = "none"
OWNERS: Final = (HELM, FLUX, ARGOCD, NONE)

HELM_RELEASE_NAME: Final = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE: Final = "meta.helm.sh/release-namespace"
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
FLUX_HELMRELEASE: Final = "helm.toolkit.fluxcd.io"
FLUX_KUSTOMIZATION: Final = "kustomize.toolkit.fluxcd.io"
ARGOCD_TRACKING_ID: Final = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"


@dataclass(frozen=True)
class HelmRelease:
    name: str
    namespace: str


@dataclass(frozen=True)
class Owner:
    """The controller that reverts a direct change of the object.

    ``kind`` is the owning object's kind (``HelmRelease``, ``Kustomization``,
    ``Application``, a Helm ``release``, or empty for none); ``name``/``namespace`` name it
    where the markers say (Argo CD's Application namespace is often not recorded).
    ``helm`` is the Helm release that rendered the object, also under a GitOps owner.
    ``evidence`` quotes the marker that decided.
    """

    owner: str
    kind: str = ""
    name: str = ""
    namespace: str = ""
    helm: HelmRelease | None = None
    evidence: str = ""

    @property
    def owner_name(self) -> str:
        """``namespace/name`` of the owning object (or just the name), empty for none."""
        if not self.name:
            return ""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def gitops(self) -> bool:
        return self.owner in (FLUX, ARGOCD)

    def describe(self) -> str:
        """One phrase for plans, preflight and reports."""
        if self.owner == NONE:
            return "no owner (a direct change is durable)"
        text = f"{self.owner} {self.kind} {self.owner_name}".strip()
        if self.helm is not None and self.owner != HELM:
            text += f" (Helm release {self.helm.namespace}/{self.helm.name})"
        return f"{text} [{self.evidence}]" if self.evidence else text


def detect_owner(obj: Mapping[str, Any]) -> Owner:
    """The owner of a Kubernetes object (a dict as the API returns it)."""
    meta = obj.get("metadata") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    helm = _helm_release(annotations, meta.get("namespace", ""))
    for prefix, kind in ((FLUX_HELMRELEASE, "HelmRelease"), (FLUX_KUSTOMIZATION, "Kustomization")):
        name = labels.get(f"{prefix}/name")
        if name:
            namespace = labels.get(f"{prefix}/namespace", "")
            return Owner(FLUX, kind, name, namespace, helm, f"label {prefix}/name={name}")
    tracking = annotations.get(ARGOCD_TRACKING_ID)
    if tracking:
        app = tracking.split(":", 1)[0]
        namespace, _, name = app.rpartition("_")
        return Owner(ARGOCD, "Application", name, namespace, helm,
                     f"annotation {ARGOCD_TRACKING_ID}={tracking}")
    instance = labels.get(INSTANCE_LABEL)
    if instance and helm is None:
        return Owner(ARGOCD, "Application", instance, "", None,
                     f"label {INSTANCE_LABEL}={instance} without a Helm release "
                     "(Argo CD label tracking, assumed)")
    if helm is not None:
        return Owner(HELM, "release", helm.name, helm.namespace, helm,
                     f"annotation {HELM_RELEASE_NAME}={helm.name}")
    return Owner(NONE)


def _helm_release(annotations: Mapping[str, str], object_namespace: str) -> HelmRelease | None:
    name = annotations.get(HELM_RELEASE_NAME)
    if not name:
        return None
    return HelmRelease(name, annotations.get(HELM_RELEASE_NAMESPACE) or object_namespace)
