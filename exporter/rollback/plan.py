"""What a rollback will do: typed, serialisable actions grouped in the steps of brief §7.

Pure. ``build_plan(snapshot, scope, trigger, settings, now)`` turns a cluster snapshot
into a ``Plan``; dry-run prints exactly this plan and enforce executes exactly it (the
plan is persisted, so a resumed rollback runs the same actions, not a re-computed set).

Steps, each verified before the next:

0. **owners** (only when GitOps owns what the plan writes): suspend the owning Flux
   HelmRelease/Kustomization, or turn off the Argo CD Application's automated sync, before
   anything changes (:mod:`exporter.rollback.owners_step`); Helm-only ownership adds a note
   naming ``rollback --persist``.
1. **kube-proxy**: restore the kube-proxy ConfigMap and DaemonSet from the backup when
   they are gone; remove the migration label from the affected nodes (this undoes
   both the kube-proxy exclusion affinity and a CiliumNodeConfig selecting that label,
   the reverse of Cilium's per-node procedure); drop affected nodes from a
   ``kubernetes.io/hostname NotIn`` exclusion; then wait for kube-proxy to be ready there.
2. **kpr-off**: ``kube-proxy-replacement: "false"`` in cilium-config (cluster scope),
   strip the KPR keys from (or delete) CiliumNodeConfigs that still switch an affected
   node on; verify the effective setting of every affected node is off.
3. **restart-agents**: delete the Cilium agent pod of each affected node, one at a
   time, and wait for its ready replacement.
4. **prove** (unless ``rollback.proof.enabled`` is off): each node shows it on its
   datapath — kube-proxy's own health endpoint synced recently and the agent's KPR
   feature gauge off (:mod:`exporter.rollback.prove`).

The plan never deletes kube-proxy, never runs ``kube-proxy --cleanup`` and never
touches ``k8sServiceHost``. It refuses (``Plan.refusal``), changing nothing, when it
cannot reach a safe end state: kube-proxy gone without a backup, a per-node rollback of
a node switched by cilium-config itself, a CiliumNodeConfig shared with nodes outside
the scope, or a kube-proxy exclusion it does not know how to lift.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.cilium import (
    KPR_HEALTHZ_KEY, KPR_KEY, KPR_KEYS, KPR_SUBFEATURE_KEYS, NodeConfig, invalid_node_configs,
    kpr_on,
)
from exporter.rollback.actions import (
    STEP_KPR_OFF, STEP_KUBE_PROXY, STEP_OWNERS, STEP_PROVE, STEP_RESTART, Action, Plan, ProveNode,
    RemoveNodeLabel, RestartAgent,
    RestoreObject, SetConfigValues, Step, StripNodeConfig, UnexcludeNodes, VerifyKprOff,
    WaitKubeProxyReady, action_to_dict,
)
from exporter.rollback.roles import CLUSTER, Scope, Trigger
from exporter.rollback.model import (
    HOSTNAME_LABEL, ClusterSnapshot, required_node_terms, schedules_on, without_excluded_values,
)
from exporter.rollback.owners_step import owner_actions, written_objects
from exporter.rollback.settings import RollbackSettings

_VERSION_TEXT = re.compile(r"^v?(\d+)\.(\d+)")

# --- planning --------------------------------------------------------------------------------


class _Refused(Exception):
    pass


@dataclass
class _Draft:
    step1: list[Action] = field(default_factory=list)
    step2: list[Action] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_plan(
    snapshot: ClusterSnapshot,
    scope: Scope,
    trigger: Trigger,
    settings: RollbackSettings,
    now: float,
) -> Plan:
    """The rollback for ``scope`` on the cluster in ``snapshot``; see the module docstring."""
    draft = _Draft()
    known = set(snapshot.nodes)
    missing = sorted(set(scope.nodes) - known)
    if missing:
        draft.warnings.append(f"node(s) {', '.join(missing)} not found in the cluster; skipped")
    for name, problem in sorted(invalid_node_configs(snapshot.node_configs).items()):
        draft.warnings.append(f"CiliumNodeConfig {name} selects no node: its nodeSelector is "
                              f"invalid ({problem})")
    if scope.kind == CLUSTER:
        affected = sorted((set(snapshot.kpr_nodes()) | set(scope.nodes)) & known)
    else:
        affected = sorted(set(scope.nodes) & known)

    def plan(steps: tuple[Step, ...] = (), refusal: str = "") -> Plan:
        body = {"scope": scope.to_dict(), "nodes": affected, "refusal": refusal,
                "steps": [[action_to_dict(a) for a in s.actions] for s in steps]}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
        return Plan(f"{int(now)}-{digest[:8]}", scope, trigger, now, tuple(affected), steps,
                    refusal, tuple(draft.warnings), tuple(draft.notes))

    if snapshot.cilium_config is None:
        c = settings.cilium
        return plan(refusal=f"ConfigMap {c.namespace}/{c.configmap} not found: is Cilium installed "
                            f"there? (settings rollback.cilium.namespace / configmap)")
    if not affected:
        draft.notes.append("no node runs or is configured for the kube-proxy replacement")
        return plan()
    try:
        labels_after = _kube_proxy_step(snapshot, affected, settings, draft)
        _kpr_off_step(snapshot, scope, affected, labels_after, settings, draft)
    except _Refused as refusal:
        return plan(refusal=str(refusal))
    draft.warnings.append(
        f"connections translated by eBPF on {', '.join(affected)} (NodePort SNAT/DSR, socket-LB "
        "UDP) break when the agent restarts; cordon and drain first if that matters"
    )
    suspensions, owner_notes = owner_actions(
        snapshot.owners, written_objects([*draft.step1, *draft.step2], settings), settings)
    draft.notes.extend(owner_notes)
    steps = (
        *((Step(STEP_OWNERS, tuple(suspensions)),) if suspensions else ()),
        Step(STEP_KUBE_PROXY, tuple(draft.step1)),
        Step(STEP_KPR_OFF, tuple(draft.step2)),
        Step(STEP_RESTART, tuple(RestartAgent(n) for n in affected)),
    )
    if settings.proof.enabled:
        steps += (Step(STEP_PROVE, tuple(ProveNode(n) for n in affected)),)
        draft.notes.append("agents before Cilium 1.17 export no KPR feature gauge: for them the "
                           "configuration decides, and kube-proxy's health endpoint must still agree")
    else:
        draft.notes.append("datapath proof is off (rollback.proof.enabled): nodes count as restored "
                           "by configuration and pod readiness only")
    return plan(steps)


def _kube_proxy_step(
    snapshot: ClusterSnapshot, affected: list[str], settings: RollbackSettings, draft: _Draft
) -> dict[str, dict[str, str]]:
    """Fill step 1; return every node's labels as they will be after it."""
    kp = settings.kube_proxy
    backup = snapshot.backup
    label = kp.migration_label
    labels_after = {n: dict(lbl) for n, lbl in snapshot.nodes.items()}
    daemonset = snapshot.kube_proxy_daemonset
    taken = backup.taken_at if backup else ""
    if not snapshot.kube_proxy_configmap:
        if backup and backup.kube_proxy_configmap:
            draft.step1.append(RestoreObject("v1", "ConfigMap", kp.namespace, kp.configmap,
                                             backup.kube_proxy_configmap, taken))
        else:
            draft.warnings.append(f"ConfigMap {kp.namespace}/{kp.configmap} is missing and no backup "
                                  "holds it; kube-proxy pods that mount it will not start")
    if daemonset is None:
        if not (backup and backup.kube_proxy_daemonset):
            why = f" (backup unreadable: {snapshot.backup_error})" if snapshot.backup_error else ""
            raise _Refused(
                f"the kube-proxy DaemonSet {kp.namespace}/{kp.daemonset} is gone and no backup holds "
                f"it{why}. Nothing was changed. Bring kube-proxy back by hand first (kubeadm: "
                "`kubeadm init phase addon kube-proxy`; managed clusters: the provider's add-on), "
                "or restore a backup written by `kpr-exporter backup` before the switch"
            )
        daemonset = backup.kube_proxy_daemonset
        draft.step1.append(RestoreObject("apps/v1", "DaemonSet", kp.namespace, kp.daemonset,
                                         daemonset, taken))
        if skew := version_skew(daemonset, snapshot.server_version):
            draft.warnings.append(skew)
    for node in affected:
        if label in labels_after[node]:
            draft.step1.append(RemoveNodeLabel(node, label))
            del labels_after[node][label]
    unexclude: list[str] = []
    for node in affected:
        if schedules_on(daemonset, node, labels_after[node]):
            continue
        host = labels_after[node].get(HOSTNAME_LABEL, node)
        lifted = without_excluded_values(daemonset, HOSTNAME_LABEL, [host])
        if not schedules_on(lifted, node, labels_after[node]):
            raise _Refused(
                f"DaemonSet {kp.namespace}/{kp.daemonset} would not schedule on {node} even without "
                f"the migration label: its nodeSelector or affinity "
                f"({_affinity_text(daemonset)}) excludes it in a way this tool does not undo. "
                "Nothing was changed; make kube-proxy schedule there by hand, then retry"
            )
        unexclude.append(host)
    if unexclude:
        draft.step1.append(UnexcludeNodes(kp.namespace, kp.daemonset, HOSTNAME_LABEL, tuple(unexclude)))
        daemonset = without_excluded_values(daemonset, HOSTNAME_LABEL, unexclude)
    others = [n for n in snapshot.kpr_nodes() if n not in affected
              and schedules_on(daemonset, n, labels_after[n])]
    if others and any(isinstance(a, RestoreObject) and a.kind == "DaemonSet" for a in draft.step1):
        draft.warnings.append(
            f"the restored kube-proxy also lands on {', '.join(others)} (not in scope, KPR stays on): "
            f"harmless for Service translation, but its healthz port 10256 can clash with "
            f"{KPR_HEALTHZ_KEY} there"
        )
    draft.step1.append(WaitKubeProxyReady(tuple(affected)))
    return labels_after


def _kpr_off_step(
    snapshot: ClusterSnapshot, scope: Scope, affected: list[str],
    labels_after: dict[str, dict[str, str]], settings: RollbackSettings, draft: _Draft,
) -> None:
    c = settings.cilium
    config = snapshot.cilium_config or {}
    configs = list(snapshot.node_configs)
    if scope.kind == CLUSTER:
        values = {}
        if config.get(KPR_KEY) != "false":
            values[KPR_KEY] = "false"
        if config.get(KPR_HEALTHZ_KEY):
            values[KPR_HEALTHZ_KEY] = ""
        values.update(_subfeatures_before(snapshot, draft))
        if values:
            draft.step2.append(SetConfigValues(c.namespace, c.configmap, values))
        for cnc in sorted(configs, key=lambda x: (x.namespace, x.name)):
            if kpr_on(cnc.defaults.get(KPR_KEY, "false")):
                draft.step2.append(_strip(cnc))
        draft.step2.append(VerifyKprOff(tuple(affected)))
        return
    stripped: set[tuple[str, str]] = set()
    for node in affected:
        while True:
            live = [x for x in configs if (x.namespace, x.name) not in stripped]
            value, source = snapshot.effective(node, labels_after[node], live)
            if not kpr_on(value):
                break
            found = next((x for x in live if x.ref == source), None)
            if found is None:
                raise _Refused(
                    f"node {node} runs KPR because ConfigMap {c.namespace}/{c.configmap} sets "
                    f'{KPR_KEY}="{value}" for every node; a rollback of single nodes cannot undo '
                    "that. Nothing was changed; roll back the whole cluster instead (alert label "
                    "kpr_scope=cluster, or `kpr-exporter rollback --scope cluster`)"
                )
            cnc = found
            outside = sorted(n for n in snapshot.nodes
                             if n not in affected and cnc.selects(labels_after[n]))
            if outside:
                raise _Refused(
                    f"{cnc.ref} switches KPR on for {node} but also for {', '.join(outside)}, which "
                    "are outside the rollback scope. Nothing was changed; widen the scope or split "
                    "the CiliumNodeConfig"
                )
            draft.step2.append(_strip(cnc))
            stripped.add((cnc.namespace, cnc.name))
    if any(isinstance(a, RemoveNodeLabel) for a in draft.step1):
        draft.notes.append("removing the migration label also deselects CiliumNodeConfigs "
                           "that select it")
    draft.step2.append(VerifyKprOff(tuple(affected)))


def _subfeatures_before(snapshot: ClusterSnapshot, draft: _Draft) -> dict[str, str]:
    """The KPR sub-feature keys the switch changed, back to their backed-up values."""
    before = ((snapshot.backup.cilium_config or {}).get("data") or {}) if snapshot.backup else {}
    now = snapshot.cilium_config or {}
    if not before:
        if any(k in now for k in KPR_SUBFEATURE_KEYS):
            draft.notes.append("no backed-up cilium-config: KPR sub-features ("
                               + ", ".join(k for k in KPR_SUBFEATURE_KEYS if k in now)
                               + ") are left as they are")
        return {}
    restore = {k: before[k] for k in KPR_SUBFEATURE_KEYS if k in before and now.get(k) != before[k]}
    added = [k for k in KPR_SUBFEATURE_KEYS if k in now and k not in before]
    if added:
        draft.warnings.append(f"{', '.join(added)} set in cilium-config since the backup; left as "
                              "they are (remove them by hand if the switch added them)")
    return restore


def _strip(cnc: NodeConfig) -> StripNodeConfig:
    keys = tuple(k for k in KPR_KEYS if k in cnc.defaults)
    return StripNodeConfig(cnc.namespace, cnc.name, keys, delete=set(cnc.defaults) <= set(KPR_KEYS))


def version_skew(daemonset: Mapping[str, Any], server_version: str) -> str:
    """A warning when the restored kube-proxy is more than one minor version from the API server."""
    spec = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    images = [str(c.get("image", "")) for c in spec.get("containers") or ()]
    image = _minor(images[0].split("@")[0].rsplit(":", 1)[-1]) if images else None
    server = _minor(server_version)
    if image is None or server is None or abs(image[1] - server[1]) <= 1 or image[0] != server[0]:
        return ""
    return (f"the kube-proxy image in the backup ({images[0]}) is {abs(image[1] - server[1])} minor "
            f"versions away from the API server ({server_version}): Kubernetes' skew policy allows "
            "kube-proxy older than the API server by a few minors and never newer; after the "
            "rollback, update the DaemonSet's image to the cluster's version")


def _minor(text: str) -> tuple[int, int] | None:
    match = _VERSION_TEXT.match(text.strip())
    return (int(match[1]), int(match[2])) if match else None


def _affinity_text(daemonset: Mapping[str, Any]) -> str:
    terms = required_node_terms(daemonset)
    pod = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    parts = []
    if pod.get("nodeSelector"):
        parts.append(f"nodeSelector {json.dumps(pod['nodeSelector'], sort_keys=True)}")
    if terms:
        parts.append(f"required terms {json.dumps(terms, sort_keys=True)}")
    return "; ".join(parts) or "none"


__all__ = ["build_plan"]
