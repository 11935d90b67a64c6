"""``kpr-exporter rollback --persist``: make a rollback durable as a new Helm revision.

Run by an operator with the rights to upgrade Cilium. It reads the deployed release from
Helm's storage, prints the values diff and the equivalent Helm command, asks (unless
``--yes``), runs the upgrade through the real Helm engine (:mod:`exporter.rollback.helm_edge`),
then hands back the fields this product's fast patch owns in ``cilium-config`` so that a
later server-side-apply upgrade meets no field conflict. An Event and a log line record it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TextIO

from exporter.helmrelease import ReleaseFormatError, decode_document, secret_revision
from exporter.kube.client import FIELD_MANAGER, MERGE_PATCH, KubeClient
from exporter.kube.errors import Forbidden, KubeError
from exporter.kube.events import Regarding, event_body, record_event
from exporter.kube.resources import CONFIGMAPS, SECRETS
from exporter.rollback.helm_edge import HelmEngineMissing, HelmUpgradeError, Upgrade
from exporter.rollback.persist import PERSIST_DESCRIPTION, PersistError, plan_persist
from exporter.rollback.settings import RollbackSettings

log = logging.getLogger(__name__)


async def deployed_release(kube: KubeClient, namespace: str, release: str) -> dict[str, Any]:
    """The deployed revision's full record; PersistError when it cannot be read."""
    try:
        listing = await kube.list(SECRETS, namespace, label_selector=f"owner=helm,name={release}")
    except Forbidden as exc:
        raise PersistError(f"cannot read Helm release {namespace}/{release}: {exc}; run with "
                           "credentials that may upgrade Cilium") from exc
    deployed = sorted(((secret_revision(s, release) or 0, s) for s in listing.items
                       if ((s.get("metadata") or {}).get("labels") or {}).get("status") == "deployed"),
                      key=lambda pair: pair[0])
    if not deployed:
        raise PersistError(f"no deployed Helm release {release!r} in {namespace}; nothing to persist")
    try:
        return decode_document(deployed[-1][1])
    except ReleaseFormatError as exc:
        raise PersistError(str(exc)) from exc


async def hand_back_fields(kube: KubeClient, namespace: str, name: str) -> bool:
    """Drop this product's entries from the object's managedFields (optimistic concurrency)."""
    live = await kube.get(CONFIGMAPS, name, namespace)
    meta = live.get("metadata") or {}
    fields = meta.get("managedFields") or []
    kept = [f for f in fields if f.get("manager") != FIELD_MANAGER]
    if len(kept) == len(fields):
        return False
    patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                          "managedFields": kept or [{}]}}
    await kube.patch(CONFIGMAPS, name, patch, namespace, patch_type=MERGE_PATCH)
    return True


async def cmd_persist(settings: RollbackSettings, kube: KubeClient, *, out: TextIO,
                      upgrade: Upgrade, confirm: Callable[[str], bool] | None = None,
                      clock: Callable[[], float] = time.time, instance: str = "cli") -> int:
    """Plan, confirm and run the persisting upgrade; 0 done or nothing to do, 1 failed, 3 refused."""
    c = settings.cilium
    try:
        document = await deployed_release(kube, c.namespace, c.helm_release)
        plan = plan_persist(document)
    except (PersistError, KubeError) as exc:
        print(f"error: {exc}", file=out)
        return 1
    print(plan.render(), file=out)
    if not plan.needed:
        return 0
    if confirm is not None and not confirm(plan.render()):
        print("aborted: nothing was changed", file=out)
        return 3
    try:
        summary = upgrade(document, plan.values_after, description=PERSIST_DESCRIPTION)
        handed = await hand_back_fields(kube, c.namespace, c.configmap)
    except (HelmEngineMissing, HelmUpgradeError, KubeError) as exc:
        print(f"error: {exc}", file=out)
        return 1
    revision = summary.get("version", plan.revision + 1)
    message = (f"rollback persisted: Helm release {plan.namespace}/{plan.release} revision "
               f"{revision} sets kubeProxyReplacement=false")
    log.info("rollback persisted", extra={"kv": {"release": plan.release, "revision": revision,
                                                 "fields_handed_back": handed}})
    await record_event(kube, event_body(
        Regarding("ConfigMap", c.namespace, c.configmap), reason="RollbackPersisted",
        message=message, action="Persist", instance=instance, now=clock()))
    print(message + ("; fields of the fast patch handed back to Helm" if handed else ""), file=out)
    return 0
