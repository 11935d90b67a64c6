"""The Kubernetes resource types this project reads or writes, and their URL paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class Resource:
    """One API resource: group (``""`` for core), version, plural and kind."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    builtin: bool = True  # custom resources accept no strategic-merge patch

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``configmaps`` or ``ciliumnodeconfigs.cilium.io``, as RBAC names it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path; ``namespace=None`` on a namespaced resource means all namespaces."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        elif not self.namespaced and namespace:
            raise ValueError(f"{self.kind} is cluster-scoped; got namespace {namespace!r}")
        base += f"/{self.plural}"
        if name is not None:
            if not name:
                raise ValueError(f"{self.kind} name must not be empty")
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


CONFIGMAPS: Final = Resource("", "v1", "configmaps", "ConfigMap")
PODS: Final = Resource("", "v1", "pods", "Pod")
NODES: Final = Resource("", "v1", "nodes", "Node", namespaced=False)
NAMESPACES: Final = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
SERVICES: Final = Resource("", "v1", "services", "Service")
EVENTS: Final = Resource("", "v1", "events", "Event")
SECRETS: Final = Resource("", "v1", "secrets", "Secret")
SERVICEACCOUNTS: Final = Resource("", "v1", "serviceaccounts", "ServiceAccount")
CLUSTERROLEBINDINGS: Final = Resource(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False)
DAEMONSETS: Final = Resource("apps", "v1", "daemonsets", "DaemonSet")
ENDPOINTSLICES: Final = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
LEASES: Final = Resource("coordination.k8s.io", "v1", "leases", "Lease")
CILIUM_NODE_CONFIGS: Final = Resource(
    "cilium.io", "v2", "ciliumnodeconfigs", "CiliumNodeConfig", builtin=False)
CILIUM_NODE_CONFIGS_V2ALPHA1: Final = Resource(
    "cilium.io", "v2alpha1", "ciliumnodeconfigs", "CiliumNodeConfig", builtin=False)

FLUX_HELMRELEASES: Final = Resource(
    "helm.toolkit.fluxcd.io", "v2", "helmreleases", "HelmRelease", builtin=False)
FLUX_KUSTOMIZATIONS: Final = Resource(
    "kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "Kustomization", builtin=False)
ARGOCD_APPLICATIONS: Final = Resource(
    "argoproj.io", "v1alpha1", "applications", "Application", builtin=False)

#: CiliumNodeConfig versions, preferred first (v2 since Cilium 1.16, v2alpha1 before).
CILIUM_NODE_CONFIG_VERSIONS: Final = (CILIUM_NODE_CONFIGS, CILIUM_NODE_CONFIGS_V2ALPHA1)
