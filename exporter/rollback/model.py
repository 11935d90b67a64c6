"""The cluster as the rollback sees it, and the Kubernetes object logic it needs. Pure.

* ``strip_server_fields`` turns a live object into a manifest that can be created again;
* node affinity terms are evaluated here, so the planner can tell whether the kube-proxy
  DaemonSet would schedule on a node (requirements checked as ``exporter.cilium`` does);
* which CiliumNodeConfig applies to a node and the ``kube-proxy-replacement`` an agent gets
  at its next start come from ``exporter.cilium``, shared with the datapath tracker;
* ``Backup`` and ``ClusterSnapshot`` are plain data read by ``reader`` and ``backup``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from exporter.cilium import (
    NODE_OPERATORS, InvalidSelector, NodeConfig, check_requirement, effective_kpr, kpr_on,
    requirement_matches,
)
from exporter.ownership import Owner

HOSTNAME_LABEL: Final = "kubernetes.io/hostname"

_SERVER_METADATA: Final = (
    "uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink",
    "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences",
)
_SERVER_ANNOTATIONS: Final = ("deprecated.daemonset.template.generation",)


def strip_server_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` without what the API server sets: it can be created again as is."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _SERVER_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if annotations:
        for key in _SERVER_ANNOTATIONS:
            annotations.pop(key, None)
        if not annotations:
            meta.pop("annotations")
    template_meta = (((out.get("spec") or {}).get("template") or {}).get("metadata")) or {}
    template_meta.pop("creationTimestamp", None)
    return out


# --- node affinity ---------------------------------------------------------------------


def _requirement_holds(expr: Mapping[str, Any], value: str | None) -> bool:
    """A ``NodeSelectorRequirement``; one the API server would reject never holds."""
    try:
        return requirement_matches(check_requirement(expr, NODE_OPERATORS), value)
    except InvalidSelector:
        return False


def match_node_selector_term(term: Mapping[str, Any], node: str, labels: Mapping[str, str]) -> bool:
    """One ``NodeSelectorTerm``: its expressions and fields are ANDed; empty matches nothing."""
    exprs = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not exprs and not fields:
        return False
    if not all(_requirement_holds(e, labels.get(e.get("key", ""))) for e in exprs):
        return False
    return all(
        _requirement_holds(f, node if f.get("key") == "metadata.name" else None) for f in fields
    )


def required_node_terms(workload: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The required node affinity terms of a DaemonSet's pod template; None when there are none."""
    pod = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    required = (((pod.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return None
    return list(required.get("nodeSelectorTerms") or [])


def schedules_on(workload: Mapping[str, Any], node: str, labels: Mapping[str, str]) -> bool:
    """Whether a DaemonSet would place a pod on ``node`` (nodeSelector + required affinity; taints ignored)."""
    pod = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    for key, value in (pod.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    terms = required_node_terms(workload)
    if terms is None:
        return True
    return any(match_node_selector_term(t, node, labels) for t in terms)


def without_excluded_values(workload: Mapping[str, Any], key: str, values: Sequence[str]) -> dict[str, Any]:
    """A copy of ``workload`` whose required ``key NotIn`` expressions no longer list ``values``.

    Expressions left with no values are dropped; a term left empty is dropped, and
    the whole required affinity goes when no term is left.
    """
    out = copy.deepcopy(dict(workload))
    pod = out.get("spec", {}).get("template", {}).get("spec", {})
    node_affinity = (pod.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return out
    terms = []
    for term in required.get("nodeSelectorTerms") or []:
        exprs = []
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == key and expr.get("operator") == "NotIn":
                kept = [v for v in expr.get("values") or [] if v not in values]
                if not kept:
                    continue
                expr = {**expr, "values": kept}
            exprs.append(expr)
        term = {**term, "matchExpressions": exprs} if exprs else {k: v for k, v in term.items() if k != "matchExpressions"}
        if term.get("matchExpressions") or term.get("matchFields"):
            terms.append(term)
    if terms:
        required["nodeSelectorTerms"] = terms
    else:
        node_affinity.pop("requiredDuringSchedulingIgnoredDuringExecution")
    return out


# --- snapshot and backup --------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    """What a rollback needs from before the switch (server-set fields stripped).

    ``helm_release`` describes the Helm release that owns Cilium: ``name``, ``namespace``,
    ``revision``, ``status``, ``chart``, ``chartVersion``, ``appVersion``, ``secret`` and,
    when the release record could be read, ``values`` (what ``helm get values`` prints).
    ``notes`` says what could not be captured, and why.
    """

    taken_at: str
    cilium_config: dict[str, Any] | None = None
    kube_proxy_daemonset: dict[str, Any] | None = None
    kube_proxy_configmap: dict[str, Any] | None = None
    node_configs: tuple[dict[str, Any], ...] = ()
    helm_release: dict[str, Any] | None = None
    kube_proxy_service_account: dict[str, Any] | None = None
    kube_proxy_role_bindings: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()

    FORMAT: ClassVar[str] = "kpr-exporter/backup-v1"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.FORMAT,
            "takenAt": self.taken_at,
            "ciliumConfig": self.cilium_config,
            "kubeProxyDaemonSet": self.kube_proxy_daemonset,
            "kubeProxyConfigMap": self.kube_proxy_configmap,
            "ciliumNodeConfigs": list(self.node_configs),
            "helmRelease": self.helm_release,
            "kubeProxyServiceAccount": self.kube_proxy_service_account,
            "kubeProxyClusterRoleBindings": list(self.kube_proxy_role_bindings),
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Backup:
        if doc.get("format") != cls.FORMAT:
            raise ValueError(f"not a kpr-exporter backup (format {doc.get('format')!r})")
        return cls(
            taken_at=str(doc.get("takenAt", "")),
            cilium_config=doc.get("ciliumConfig"),
            kube_proxy_daemonset=doc.get("kubeProxyDaemonSet"),
            kube_proxy_configmap=doc.get("kubeProxyConfigMap"),
            node_configs=tuple(doc.get("ciliumNodeConfigs") or ()),
            helm_release=doc.get("helmRelease"),
            kube_proxy_service_account=doc.get("kubeProxyServiceAccount"),
            kube_proxy_role_bindings=tuple(doc.get("kubeProxyClusterRoleBindings") or ()),
            notes=tuple(str(n) for n in doc.get("notes") or ()),
        )

    @classmethod
    def from_json(cls, text: str) -> Backup:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"backup is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise ValueError("backup must be a JSON object")
        return cls.from_dict(doc)


@dataclass(frozen=True)
class ClusterSnapshot:
    """The objects a rollback plan is computed from, read at one moment."""

    nodes: Mapping[str, Mapping[str, str]]  # node name -> labels
    cilium_config: Mapping[str, str] | None  # cilium-config data; None when missing
    node_configs: tuple[NodeConfig, ...] = ()
    kube_proxy_daemonset: Mapping[str, Any] | None = None
    kube_proxy_configmap: bool = False
    backup: Backup | None = None
    backup_error: str = ""  # why the backup could not be read, if it exists but is broken
    extras: Mapping[str, Any] = field(default_factory=dict)
    owners: Mapping[str, Owner] = field(default_factory=dict)  # object label -> its owner
    server_version: str = ""  # the API server's gitVersion, "" when unknown

    def effective(self, node: str, labels: Mapping[str, str] | None = None,
                  node_configs: Sequence[NodeConfig] | None = None) -> tuple[str, str]:
        return effective_kpr(
            self.nodes[node] if labels is None else labels,
            self.cilium_config,
            self.node_configs if node_configs is None else node_configs,
        )

    def kpr_nodes(self) -> list[str]:
        """Nodes whose agent gets KPR on at its next start."""
        return sorted(n for n in self.nodes if kpr_on(self.effective(n)[0]))
