"""The last step's cluster-wide setting: ``kube-proxy-replacement: "true"`` made by whoever
owns cilium-config, so that it sticks.

* **Helm** owns it: a new revision of Cilium's release, from the release's own stored chart
  and user-supplied values with ``kubeProxyReplacement`` (and its health endpoint) set —
  the same engine and consent as ``rollback --persist`` (``helm_edge.upgrade`` and a
  ``confirm`` asked with the values diff; ``migrate run --yes`` or the in-cluster enforce
  mode is the consent), described in the release history as ``HELM_DESCRIPTION``.
* **GitOps** (Flux, Argo CD) owns it: the change to commit is printed and recorded, then
  the step waits until cilium-config shows it (``migrate.gitops_wait_seconds``; then the
  migration pauses, changing nothing).
* **nobody**: cilium-config is patched directly (the rollback's own ``SetConfigValues``).

``apply()`` answers "" when the setting is in place, or what it waits for. Applying it
again when it is in place changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from exporter.cilium import KPR_HEALTHZ_KEY, KPR_KEY
from exporter.kube.client import KubeClient
from exporter.kube.errors import NotFound
from exporter.kube.resources import CONFIGMAPS
from exporter.migrate.settings import MigrateSettings
from exporter.ownership import HELM, NONE, detect_owner
from exporter.rollback.actions import SetConfigValues
from exporter.rollback.appliers import ActionRunner, StepFailed
from exporter.rollback.helm_edge import Upgrade
from exporter.rollback.persist import KPR_VALUE, PersistError, plan_persist, values_diff
from exporter.rollback.persist_cmd import deployed_release
from exporter.rollback.settings import RollbackSettings

log = logging.getLogger(__name__)
HEALTHZ_VALUE: Final = "kubeProxyReplacementHealthzBindAddr"
#: The Helm release description of the revision the last step makes.
HELM_DESCRIPTION: Final = "kpr-exporter migrate: kubeProxyReplacement=true"


class ClusterWide(Protocol):
    owner: str

    def describe(self) -> str: ...

    async def apply(self) -> str: ...


async def kpr_in_config(kube: KubeClient, settings: RollbackSettings) -> bool:
    c = settings.cilium
    try:
        data = (await kube.get(CONFIGMAPS, c.configmap, c.namespace)).get("data") or {}
    except NotFound:
        return False
    return data.get(KPR_KEY) == "true"


def with_kpr_on(values: Mapping[str, Any], healthz: str) -> dict[str, Any]:
    """Helm values with the replacement on, in the type the values already use."""
    out = dict(values)
    out[KPR_VALUE] = "true" if isinstance(out.get(KPR_VALUE), str) else True
    out[HEALTHZ_VALUE] = healthz
    return out


class Direct:
    owner = NONE

    def __init__(self, actions: ActionRunner, rollback: RollbackSettings, healthz: str) -> None:
        self._actions, self._r, self._healthz = actions, rollback, healthz

    def describe(self) -> str:
        c = self._r.cilium
        return f"a direct patch of ConfigMap {c.namespace}/{c.configmap} (no owner reverts it)"

    async def apply(self) -> str:
        c = self._r.cilium
        await self._actions.apply(SetConfigValues(c.namespace, c.configmap, {
            KPR_KEY: "true", KPR_HEALTHZ_KEY: self._healthz}), {}, _nothing)
        return ""


class Helm:
    owner = HELM

    def __init__(self, kube: KubeClient, rollback: RollbackSettings, healthz: str, *,
                 upgrade: Upgrade | None, confirm: Callable[[str], bool] | None,
                 guard: Callable[[], Any]) -> None:
        self._kube, self._r, self._healthz = kube, rollback, healthz
        self._upgrade, self._confirm, self._guard = upgrade, confirm, guard

    def describe(self) -> str:
        c = self._r.cilium
        return f"a new revision of Helm release {c.namespace}/{c.helm_release}"

    async def apply(self) -> str:
        if await kpr_in_config(self._kube, self._r):
            return ""
        c = self._r.cilium
        try:
            document = await deployed_release(self._kube, c.namespace, c.helm_release)
            plan = plan_persist(document)  # the same checks as rollback --persist
        except PersistError as exc:
            raise StepFailed(f"cannot plan the Helm revision: {exc}") from exc
        after = with_kpr_on(plan.values_before, self._healthz)
        text = "\n".join([f"Helm release {plan.namespace}/{plan.release}: revision "
                          f"{plan.revision} -> {plan.revision + 1}", "values (user-supplied):",
                          *values_diff(plan.values_before, after)])
        if self._upgrade is None:
            raise StepFailed("the Helm engine is not available here; run `kpr-exporter migrate "
                             f"run --yes` from a workstation with rights to upgrade Cilium:\n{text}")
        if self._confirm is not None and not self._confirm(text):
            return "waiting for consent to upgrade the Helm release:\n" + text
        await self._guard()
        summary = await asyncio.to_thread(  # Helm blocks
            partial(self._upgrade, document, after, description=HELM_DESCRIPTION))
        log.info("Helm release upgraded", extra={"kv": {
            "release": plan.release, "revision": summary.get("version", plan.revision + 1)}})
        if not await kpr_in_config(self._kube, self._r):
            raise StepFailed(f"Helm revision {summary.get('version', '?')} did not set "
                             f"{KPR_KEY}=true in ConfigMap {c.namespace}/{c.configmap}")
        return ""


class GitOps:
    owner = "gitops"

    def __init__(self, kube: KubeClient, rollback: RollbackSettings, healthz: str,
                 who: str) -> None:
        self._kube, self._r, self._healthz, self._who = kube, rollback, healthz, who

    def describe(self) -> str:
        return f"a commit to the Git source of {self._who} (the step waits for it)"

    def change(self) -> str:
        return (f"set in the Cilium Helm values: {KPR_VALUE}: true and {HEALTHZ_VALUE}: "
                f"\"{self._healthz}\" (cilium-config: {KPR_KEY}: \"true\", {KPR_HEALTHZ_KEY}: "
                f"\"{self._healthz}\"), then let {self._who} sync it")

    async def apply(self) -> str:
        if await kpr_in_config(self._kube, self._r):
            return ""
        return "waiting for the change in Git: " + self.change()


async def choose(kube: KubeClient, rollback: RollbackSettings, migrate: MigrateSettings,
                 actions: ActionRunner, *, upgrade: Upgrade | None,
                 confirm: Callable[[str], bool] | None, guard: Callable[[], Any]) -> ClusterWide:
    """The way the cluster-wide setting is made, by ``migrate.owner`` (auto: cilium-config's
    owner as its markers say)."""
    c, healthz = rollback.cilium, migrate.healthz_bind_address
    mode, who = migrate.owner, ""
    if mode == "auto":
        try:
            owner = detect_owner(await kube.get(CONFIGMAPS, c.configmap, c.namespace))
        except NotFound:
            raise StepFailed(f"ConfigMap {c.namespace}/{c.configmap} not found") from None
        mode = "gitops" if owner.gitops else "helm" if owner.owner == HELM else "direct"
        who = owner.describe()
    if mode == "helm":
        return Helm(kube, rollback, healthz, upgrade=upgrade, confirm=confirm, guard=guard)
    if mode == "gitops":
        return GitOps(kube, rollback, healthz, who or "the GitOps controller")
    return Direct(actions, rollback, healthz)


async def _nothing() -> None:
    return None
