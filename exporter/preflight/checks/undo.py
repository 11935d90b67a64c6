"""Can the switch be undone, and will the undo stick: backup, its freshness, owners, kube-proxy."""

from __future__ import annotations

from typing import Any, Final

import yaml

from exporter.ownership import NONE, detect_owner
from exporter.preflight.model import FAIL, PASS, WARN, Facts, Row, missing
from exporter.rollback.settings import RollbackSettings

#: kube-proxy mode -> (status, what its removal leaves behind and how to clean it)
KUBE_PROXY_MODES: Final = {
    "iptables": (PASS, "its KUBE-* iptables chains stay after removal: on each migrated node run "
                       "`iptables-save | grep -v KUBE | iptables-restore` (and ip6tables), or reboot"),
    "ipvs": (WARN, "IPVS mode is deprecated; removal leaves the IPVS table and the kube-ipvs0 "
                   "interface: `ipvsadm --clear` and `ip link delete kube-ipvs0` on each node, "
                   "plus the iptables cleanup"),
    "nftables": (WARN, "Cilium's documented iptables cleanup does not touch nftables: "
                       "`nft delete table ip kube-proxy` and `nft delete table ip6 kube-proxy` on "
                       "each node; nftables mode never served NodePorts on 127.0.0.1, KPR may"),
}


def backup(facts: Facts, settings: RollbackSettings) -> Row:
    check = "backup"
    if (row := missing(check, facts, "backup")) is not None:
        return row
    found = facts.backup
    if found is None:
        return Row(check, FAIL, "no backup found",
                   why="a rollback cannot bring kube-proxy back once it is deleted",
                   todo="run `kpr-exporter backup` before switching")
    if found.kube_proxy_daemonset is None:
        return Row(check, WARN, f"the backup of {found.taken_at} holds no kube-proxy DaemonSet",
                   why="taken after kube-proxy was deleted?", todo="keep a copy of the DaemonSet")
    helm = found.helm_release
    extra = f", Helm revision {helm['revision']}" if helm else ""
    return Row(check, PASS, f"backup of {found.taken_at} with kube-proxy{extra}")


def backup_freshness(facts: Facts, settings: RollbackSettings) -> Row:
    """The backup must know the Helm release's current revision, or its values are stale."""
    check = "backup-freshness"
    if (row := missing(check, facts, "backup")) is not None:
        return row
    if "helm_revisions" in facts.errors:
        return Row(check, WARN, f"could not read Helm's release records: {facts.errors['helm_revisions']}",
                   why="the backup cannot be compared with the release's current revision",
                   todo="run preflight with rights to list Secrets in the release's namespace")
    revisions = facts.helm_revisions or {}
    deployed = max((r for r, status in revisions.items() if status == "deployed"), default=None)
    release = settings.cilium.helm_release
    if deployed is None:
        return Row(check, PASS, f"no deployed Helm release {release!r}: nothing to be stale against")
    if facts.backup is None:
        return Row(check, FAIL, f"no backup to compare with Helm revision {deployed} (see backup)")
    held = (facts.backup.helm_release or {}).get("revision")
    if held is None:
        return Row(check, FAIL, f"Helm release {release} is at revision {deployed}; the backup "
                                "records no revision",
                   why="a rollback or --persist would work from values nobody recorded",
                   todo="run `kpr-exporter backup` with rights to read the release's Secrets")
    if int(held) < deployed:
        return Row(check, FAIL, f"the backup holds Helm revision {held}; the release is now at "
                                f"revision {deployed}",
                   why="the values changed since the backup: restoring it would undo those changes",
                   todo="run `kpr-exporter backup` again")
    return Row(check, PASS, f"the backup holds the deployed Helm revision {deployed}")


def owners(facts: Facts, settings: RollbackSettings) -> Row:
    """Who reverts a direct change of the objects a switch or a rollback writes."""
    check = "owners"
    objects: list[tuple[str, dict[str, Any] | None]] = [
        ("cilium-config", facts.cilium_config_object),
        ("kube-proxy DaemonSet", facts.kube_proxy_daemonset),
        ("kube-proxy ConfigMap", facts.kube_proxy_configmap),
        *((f"CiliumNodeConfig {(o.get('metadata') or {}).get('name', '')}", o)
          for o in facts.node_config_objects),
    ]
    found = [(what, detect_owner(obj)) for what, obj in objects if obj is not None]
    managed = [(what, o) for what, o in found if o.owner != NONE]
    if not managed:
        return Row(check, PASS, "no owner reverts direct changes" if found else "no objects to own")
    text = "; ".join(f"{what}: {o.describe()}" for what, o in managed)
    if any(o.gitops for _, o in managed):
        return Row(check, WARN, text,
                   why="a GitOps controller reverts direct changes at its next sync",
                   todo="the rollback suspends the owner first; commit the change to Git and "
                        "resume it afterwards (see the runbook)")
    return Row(check, WARN, text,
               why="the next `helm upgrade --reuse-values` re-renders the stored values",
               todo="after a rollback, make it durable with `kpr-exporter rollback --persist`")


def kube_proxy_mode(facts: Facts, settings: RollbackSettings) -> Row:
    check = "kube-proxy-mode"
    if (row := missing(check, facts, "kube_proxy_configmap")) is not None:
        return row
    if facts.kube_proxy_configmap is None:
        return Row(check, WARN, "kube-proxy ConfigMap not found: mode unknown",
                   todo="check rollback.kube-proxy.configmap")
    mode = mode_of(facts.kube_proxy_configmap)
    status, cleanup = KUBE_PROXY_MODES.get(mode, (WARN, "unknown mode: check its cleanup by hand"))
    return Row(check, status, f"kube-proxy runs in {mode} mode",
               why="kube-proxy does not clean up after itself when removed (failure class 18)",
               todo=cleanup)


def mode_of(configmap: dict[str, Any]) -> str:
    """kube-proxy's ``mode`` from its KubeProxyConfiguration (empty means iptables)."""
    for text in (configmap.get("data") or {}).values():
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and (doc.get("kind") == "KubeProxyConfiguration" or "mode" in doc):
            return str(doc.get("mode") or "iptables")
    return "iptables"
