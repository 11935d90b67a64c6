"""Backup of what a rollback needs, taken before the switch, and its restore.

``take_backup`` captures cilium-config, the kube-proxy DaemonSet, ConfigMap,
ServiceAccount and the ClusterRoleBindings that bind it (server-set fields stripped),
every CiliumNodeConfig, and the Helm release that owns Cilium: name, namespace,
revision, chart and version, and the user-supplied values (``helm get values``), read
from Helm's own storage (the ``sh.helm.release.v1.<release>.v<N>`` Secrets) when the
credentials allow it. What it could not read is recorded in the backup's notes with the
reason and the command that captures it. It is stored as JSON in a ConfigMap (key
``backup.json``) or a file. ``restore_backup`` makes the live objects match the backup again (create
what is missing, replace what differs); the rollback executor itself only ever
re-creates kube-proxy from it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, Protocol

from exporter.kube.client import STRATEGIC_MERGE, KubeClient
from exporter.kube.errors import Conflict, Forbidden, KubeError, NotFound
from exporter.helmrelease import ReleaseFormatError, decode_secret, secret_revision
from exporter.kube.resources import (
    CILIUM_NODE_CONFIG_VERSIONS, CLUSTERROLEBINDINGS, CONFIGMAPS, DAEMONSETS, SECRETS,
    SERVICEACCOUNTS, Resource,
)
from exporter.rollback.model import Backup, strip_server_fields
from exporter.rollback.settings import RollbackSettings

BACKUP_KEY: Final = "backup.json"


class BackupError(Exception):
    """The backup could not be read or written; the message says what to do."""


class BackupStore(Protocol):
    """Where the backup lives."""

    location: str

    async def load(self) -> Backup | None: ...

    async def save(self, backup: Backup) -> None: ...


class ConfigMapBackupStore:
    """The backup as JSON under ``backup.json`` of a ConfigMap in the exporter's namespace."""

    def __init__(self, kube: KubeClient, namespace: str, name: str) -> None:
        self._kube, self._namespace, self._name = kube, namespace, name
        self.location = f"ConfigMap {namespace}/{name}"

    async def load(self) -> Backup | None:
        try:
            cm = await self._kube.get(CONFIGMAPS, self._name, self._namespace)
        except NotFound:
            return None
        except KubeError as exc:
            raise BackupError(f"cannot read the backup {self.location}: {exc}") from exc
        text = (cm.get("data") or {}).get(BACKUP_KEY)
        if text is None:
            raise BackupError(f"{self.location} has no {BACKUP_KEY} key")
        try:
            return Backup.from_json(text)
        except ValueError as exc:
            raise BackupError(f"{self.location}: {exc}") from exc

    async def save(self, backup: Backup) -> None:
        body = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self._name, "namespace": self._namespace,
                         "labels": {"app.kubernetes.io/name": "kpr-exporter",
                                    "app.kubernetes.io/component": "backup"}},
            "data": {BACKUP_KEY: backup.to_json()},
        }
        try:
            try:
                await self._kube.create(CONFIGMAPS, body, self._namespace)
            except Conflict as exc:
                if not exc.already_exists:
                    raise
                await self._kube.patch(CONFIGMAPS, self._name, {"data": body["data"]},
                                       self._namespace, patch_type=STRATEGIC_MERGE)
        except KubeError as exc:
            raise BackupError(f"cannot write the backup to {self.location}: {exc}") from exc


class FileBackupStore:
    """The backup as a JSON file (written atomically)."""

    def __init__(self, path: str) -> None:
        self._path = Path(path)
        self.location = f"file {path}"

    async def load(self) -> Backup | None:
        try:
            text = self._path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BackupError(f"cannot read {self.location}: {exc.strerror or exc}") from exc
        try:
            return Backup.from_json(text)
        except ValueError as exc:
            raise BackupError(f"{self.location}: {exc}") from exc

    async def save(self, backup: Backup) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=self._path.name + ".")
            with os.fdopen(fd, "w") as fh:
                fh.write(backup.to_json() + "\n")
            os.replace(tmp, self._path)
        except OSError as exc:
            raise BackupError(f"cannot write {self.location}: {exc.strerror or exc}") from exc


def backup_store(kube: KubeClient, settings: RollbackSettings, path: str | None = None) -> BackupStore:
    """The store the settings (or an explicit ``path``) name."""
    chosen = path or settings.backup_file
    if chosen:
        return FileBackupStore(chosen)
    return ConfigMapBackupStore(kube, settings.namespace, settings.backup_configmap)


@dataclass(frozen=True)
class BackupReport:
    backup: Backup
    notes: tuple[str, ...]  # what could not be captured, and why


async def take_backup(
    kube: KubeClient, settings: RollbackSettings, *, clock: Callable[[], float]
) -> BackupReport:
    """Capture the objects (see the module docstring); missing ones are noted, not fatal."""
    c, kp = settings.cilium, settings.kube_proxy
    notes: list[str] = []
    cilium_config = await _stripped(kube, CONFIGMAPS, c.configmap, c.namespace, notes)
    daemonset = await _stripped(kube, DAEMONSETS, kp.daemonset, kp.namespace, notes)
    kp_config = await _stripped(kube, CONFIGMAPS, kp.configmap, kp.namespace, notes)
    if daemonset is None:
        notes.append("without the kube-proxy DaemonSet in the backup, a rollback cannot bring "
                     "kube-proxy back once it is deleted: take the backup before the switch")
    node_configs: list[dict[str, Any]] = []
    try:
        _, items = await list_node_configs(kube, c.namespace)
        node_configs = [strip_server_fields(o) for o in items]
    except Forbidden as exc:
        notes.append(f"CiliumNodeConfigs not captured: {exc}")
    helm = await _helm_release(kube, c.namespace, c.helm_release, notes)
    account, bindings = await _kube_proxy_identity(kube, daemonset, kp.namespace, notes)
    taken = datetime.fromtimestamp(clock(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    backup = Backup(taken, cilium_config, daemonset, kp_config,
                    tuple(sorted(node_configs, key=lambda o: o["metadata"]["name"])), helm,
                    account, bindings, tuple(notes))
    return BackupReport(backup, tuple(notes))


async def list_node_configs(kube: KubeClient, namespace: str) -> tuple[Resource | None, list[dict]]:
    """CiliumNodeConfigs from the first served version (v2, then v2alpha1); none if no CRD."""
    for resource in CILIUM_NODE_CONFIG_VERSIONS:
        try:
            listing = await kube.list(resource, namespace)
        except NotFound:
            continue
        return resource, listing.items
    return None, []


async def restore_backup(kube: KubeClient, backup: Backup) -> list[str]:
    """Make the live objects equal to the backup's; returns one line per change made."""
    done: list[str] = []
    for resource, manifest in _backed_up_objects(backup):
        meta = manifest["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        what = f"{manifest.get('kind', resource.kind)} {ns}/{name}"
        try:
            live = await kube.get(resource, name, ns)
        except NotFound:
            await kube.create(resource, manifest, ns)
            done.append(f"created {what}")
            continue
        if _comparable(strip_server_fields(live)) == _comparable(manifest):
            continue
        body = {**manifest, "metadata": {**meta, "resourceVersion": live["metadata"]["resourceVersion"]}}
        await kube.replace(resource, body, ns)
        done.append(f"replaced {what}")
    return done


def _backed_up_objects(backup: Backup) -> list[tuple[Resource, dict[str, Any]]]:
    out: list[tuple[Resource, dict[str, Any]]] = []
    if backup.cilium_config:
        out.append((CONFIGMAPS, backup.cilium_config))
    if backup.kube_proxy_configmap:
        out.append((CONFIGMAPS, backup.kube_proxy_configmap))
    if backup.kube_proxy_service_account:
        out.append((SERVICEACCOUNTS, backup.kube_proxy_service_account))
    out.extend((CLUSTERROLEBINDINGS, crb) for crb in backup.kube_proxy_role_bindings)
    if backup.kube_proxy_daemonset:
        out.append((DAEMONSETS, backup.kube_proxy_daemonset))
    versions = {r.api_version: r for r in CILIUM_NODE_CONFIG_VERSIONS}
    for cnc in backup.node_configs:
        out.append((versions.get(cnc.get("apiVersion", ""), CILIUM_NODE_CONFIG_VERSIONS[0]), cnc))
    return out


def _comparable(obj: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}, sort_keys=True)


async def _stripped(kube: KubeClient, resource: Resource, name: str, namespace: str,
                    notes: list[str]) -> dict[str, Any] | None:
    try:
        return strip_server_fields(await kube.get(resource, name, namespace))
    except NotFound:
        notes.append(f"{resource.kind} {namespace}/{name} not found; not in the backup")
    except Forbidden as exc:
        notes.append(f"{resource.kind} {namespace}/{name} not captured: {exc}")
    return None


async def _helm_release(kube: KubeClient, namespace: str, release: str,
                        notes: list[str]) -> dict[str, Any] | None:
    """The deployed revision of ``release`` with its user-supplied values, from Helm's Secrets."""
    command = f"helm get values {release} -n {namespace} -o yaml"
    try:
        listing = await kube.list(SECRETS, namespace, label_selector=f"owner=helm,name={release}")
    except Forbidden as exc:
        notes.append(f"Helm release {namespace}/{release} not captured: listing Secrets in "
                     f"{namespace} is not allowed ({exc}); run `kpr-exporter backup` with "
                     f"credentials that may read them, or keep `{command}`")
        return None
    secrets = sorted(((secret_revision(s, release), s) for s in listing.items),
                     key=lambda pair: pair[0] or 0, reverse=True)
    secrets = [(rev, s) for rev, s in secrets if rev is not None]
    if not secrets:
        notes.append(f"no Helm release {release!r} found in {namespace}; Cilium's Helm values "
                     "not recorded")
        return None
    deployed = [(rev, s) for rev, s in secrets
                if ((s.get("metadata") or {}).get("labels") or {}).get("status") == "deployed"]
    revision, secret = (deployed or secrets)[0]
    labels = (secret.get("metadata") or {}).get("labels") or {}
    found: dict[str, Any] = {"name": release, "namespace": namespace, "revision": revision,
                             "secret": secret["metadata"]["name"], "status": labels.get("status", "")}
    try:
        decoded = decode_secret(secret)
    except ReleaseFormatError as exc:
        notes.append(f"Helm release {namespace}/{release} revision {revision}: values not "
                     f"recorded ({exc}); keep `{command}`")
        return found
    return {**found, **decoded.summary(), "revision": revision,
            "values": dict(decoded.values)}


async def _kube_proxy_identity(kube: KubeClient, daemonset: Mapping[str, Any] | None,
                               namespace: str, notes: list[str]
                               ) -> tuple[dict[str, Any] | None, tuple[dict[str, Any], ...]]:
    """kube-proxy's ServiceAccount and the ClusterRoleBindings naming it (kubeadm: node-proxier)."""
    if daemonset is None:
        return None, ()
    spec = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    name = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if not name:
        return None, ()
    account = await _stripped(kube, SERVICEACCOUNTS, name, namespace, notes)
    try:
        listing = await kube.list(CLUSTERROLEBINDINGS)
    except Forbidden as exc:
        notes.append(f"ClusterRoleBindings of ServiceAccount {namespace}/{name} not captured: "
                     f"{exc}; keep `kubectl get clusterrolebinding -o yaml` output")
        return account, ()
    bindings = tuple(strip_server_fields(b) for b in listing.items
                     if any(sub.get("kind") == "ServiceAccount" and sub.get("name") == name
                            and sub.get("namespace") == namespace
                            for sub in b.get("subjects") or ()))
    return account, tuple(sorted(bindings, key=lambda b: b["metadata"]["name"]))
