"""The rollback appliers: each action applied against the Kubernetes API, then verified.

``ActionRunner.apply`` dispatches on the action type. Every write is preceded by
``guard()`` (the executor passes the Lease check, so a replica that lost the Lease stops
before its next write), and waits stop once ``watch()`` knows the Lease is lost.
Conflict (409) and Unavailable (429/5xx) are retried a few times, re-reading first;
waits poll with the injected clock/sleep and give up at the step's timeout with
``StepFailed``.
"""

from __future__ import annotations

import logging
from functools import partial
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp

from exporter.kube.client import MERGE_PATCH, KubeClient
from exporter.kube.errors import Conflict, NotFound, Unavailable
from exporter.kube.resources import (
    ARGOCD_APPLICATIONS, CONFIGMAPS, DAEMONSETS, FLUX_HELMRELEASES, FLUX_KUSTOMIZATIONS, NODES,
    PODS,
)
from exporter.rollback.backup import list_node_configs
from exporter.cilium import NodeConfig, effective_kpr, kpr_on
from exporter.rollback.model import (
    required_node_terms, strip_server_fields, without_excluded_values,
)
from exporter.rollback.actions import (
    Action, DisableArgoSync, ProveNode, RemoveNodeLabel, RestartAgent, RestoreObject,
    SetConfigValues, StripNodeConfig, SuspendFlux, UnexcludeNodes, VerifyKprOff,
    WaitKubeProxyReady,
)
from exporter.rollback.prove import DatapathProver, Proof
from exporter.rollback.settings import RollbackSettings

log = logging.getLogger(__name__)

ATTEMPTS: Final = 5
_RESOURCES: Final = {("v1", "ConfigMap"): CONFIGMAPS, ("apps/v1", "DaemonSet"): DAEMONSETS}

Record = Callable[[], Awaitable[None]]


def _proven(proofs: list[Proof]) -> tuple[bool, str]:
    """All proofs hold (a missing gauge defers to configuration, already verified)."""
    failing = [p for p in proofs if p.ok is False]
    detail = "; ".join(f"{p.check}: {p.detail}" for p in proofs)
    if not failing:
        log.info("node proven on its datapath", extra={"kv": {"node": proofs[0].node, "detail": detail}})
    return not failing, detail


class StepFailed(Exception):
    """An action could not be applied or verified; the message says why."""


def pod_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False



class ActionRunner:
    """Applies and verifies plan actions; see the module docstring."""

    def __init__(self, kube: KubeClient, settings: RollbackSettings, *, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]], guard: Callable[[], Awaitable[None]],
                 watch: Callable[[], None] = lambda: None) -> None:
        self._kube = kube
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._guard = guard  # before every write: raises when the Lease is not ours any more
        self._watch = watch  # between polls, without I/O: raises once the Lease is known lost

    async def apply(self, action: Action, restarting: dict[str, str], record: Record) -> None:
        """Apply ``action`` and verify it; ``record`` persists ``restarting`` before a pod delete."""
        handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            RestoreObject: self._restore, RemoveNodeLabel: self._remove_label,
            UnexcludeNodes: self._unexclude, WaitKubeProxyReady: self._wait_kube_proxy,
            SetConfigValues: self._set_config, StripNodeConfig: self._strip_node_config,
            VerifyKprOff: self._verify_kpr_off, ProveNode: self._prove,
            SuspendFlux: self._suspend_flux, DisableArgoSync: self._disable_argo_sync,
        }
        handler = handlers.get(type(action))
        if isinstance(action, RestartAgent):
            await self._restart_agent(action, restarting, record)
        elif handler is not None:
            await self._retrying(lambda: handler(action))
        else:  # pragma: no cover - every action type is handled above
            raise StepFailed(f"unknown action {action!r}")

    async def _retrying(self, attempt: Callable[[], Awaitable[None]]) -> None:
        """Run ``attempt``; retry Conflict and Unavailable a few times (each re-reads)."""
        for number in range(1, ATTEMPTS + 1):
            try:
                await attempt()
                return
            except (Conflict, Unavailable) as exc:
                if number == ATTEMPTS:
                    raise StepFailed(f"gave up after {ATTEMPTS} attempts: {exc}") from exc
                log.info("retrying rollback action", extra={"kv": {"error": str(exc), "attempt": number}})
                await self._sleep(self._settings.timeouts.poll_interval_seconds)

    async def _wait(self, what: str, timeout: float,
                    check: Callable[[], Awaitable[tuple[bool, str]]]) -> None:
        """Poll ``check`` until it holds; StepFailed after ``timeout`` seconds (injected clock)."""
        start = self._clock()
        detail = ""
        while True:
            try:
                ok, detail = await check()
            except Unavailable as exc:
                ok, detail = False, str(exc)
            if ok:
                return
            if self._clock() - start >= timeout:
                raise StepFailed(f"timed out after {timeout:.0f}s waiting for {what} ({detail})")
            await self._sleep(self._settings.timeouts.poll_interval_seconds)
            self._watch()

    # --- actions (each write is preceded by the Lease check) ------------------------------

    async def _restore(self, action: RestoreObject) -> None:
        resource = _RESOURCES[(action.api_version, action.kind)]
        manifest = strip_server_fields(action.manifest)
        manifest.setdefault("metadata", {})["namespace"] = action.namespace
        try:
            await self._guard()
            await self._kube.create(resource, manifest, action.namespace)
        except Conflict as exc:
            if not exc.already_exists:
                raise
            log.info("restore skipped: object exists", extra={"kv": {"object": action.name}})
        await self._kube.get(resource, action.name, action.namespace)  # verify

    async def _remove_label(self, action: RemoveNodeLabel) -> None:
        try:
            await self._guard()
            await self._kube.patch(NODES, action.node, {"metadata": {"labels": {action.label: None}}},
                                   patch_type=MERGE_PATCH)
            node = await self._kube.get(NODES, action.node)
        except NotFound:
            log.warning("node gone; nothing to unlabel", extra={"kv": {"node": action.node}})
            return
        if action.label in ((node.get("metadata") or {}).get("labels") or {}):
            raise StepFailed(f"label {action.label} is still on node {action.node}")

    async def _unexclude(self, action: UnexcludeNodes) -> None:
        ds = await self._kube.get(DAEMONSETS, action.name, action.namespace)
        lifted = without_excluded_values(ds, action.key, action.values)
        if lifted != ds:
            await self._guard()
            await self._kube.replace(DAEMONSETS, lifted, action.namespace)  # CAS on resourceVersion
            ds = await self._kube.get(DAEMONSETS, action.name, action.namespace)
        still = {v for term in required_node_terms(ds) or () for e in term.get("matchExpressions") or ()
                 if e.get("key") == action.key and e.get("operator") == "NotIn"
                 for v in e.get("values") or () if v in action.values}
        if still:
            raise StepFailed(f"DaemonSet {action.namespace}/{action.name} still excludes "
                             f"{', '.join(sorted(still))}")

    async def _wait_kube_proxy(self, action: WaitKubeProxyReady) -> None:
        kp = self._settings.kube_proxy

        async def check() -> tuple[bool, str]:
            pods = (await self._kube.list(PODS, kp.namespace, label_selector=kp.pod_selector)).items
            ready = {(p.get("spec") or {}).get("nodeName") for p in pods if pod_ready(p)}
            missing = [n for n in action.nodes if n not in ready]
            return not missing, "not ready on " + ", ".join(missing) if missing else "ready"

        await self._wait(f"kube-proxy on {', '.join(action.nodes)}",
                         self._settings.timeouts.kube_proxy_ready_seconds, check)

    async def _set_config(self, action: SetConfigValues) -> None:
        await self._guard()
        await self._kube.patch(CONFIGMAPS, action.name, {"data": dict(action.values)}, action.namespace,
                               patch_type=MERGE_PATCH)
        data = (await self._kube.get(CONFIGMAPS, action.name, action.namespace)).get("data") or {}
        wrong = {k: data.get(k) for k, v in action.values.items() if data.get(k, "") != v}
        if wrong:
            raise StepFailed(f"ConfigMap {action.namespace}/{action.name} still has {wrong}")

    async def _strip_node_config(self, action: StripNodeConfig) -> None:
        resource, items = await list_node_configs(self._kube, action.namespace)
        current = next((o for o in items if o["metadata"]["name"] == action.name), None)
        if resource is None or current is None:
            return  # already gone
        defaults = dict((current.get("spec") or {}).get("defaults") or {})
        for key in action.keys:
            defaults.pop(key, None)
        rv = current["metadata"]["resourceVersion"]
        await self._guard()
        if not defaults:
            try:
                await self._kube.delete(resource, action.name, action.namespace, resource_version=rv)
            except NotFound:
                return
        else:
            body = {**current, "spec": {**current.get("spec", {}), "defaults": defaults}}
            await self._kube.replace(resource, body, action.namespace)

    async def _verify_kpr_off(self, action: VerifyKprOff) -> None:
        c = self._settings.cilium

        async def check() -> tuple[bool, str]:
            nodes = {n["metadata"]["name"]: n["metadata"].get("labels") or {}
                     for n in (await self._kube.list(NODES)).items}
            try:
                config = (await self._kube.get(CONFIGMAPS, c.configmap, c.namespace)).get("data") or {}
            except NotFound:
                config = None
            _, items = await list_node_configs(self._kube, c.namespace)
            configs = [NodeConfig.from_object(o) for o in items]
            still = []
            for node in action.nodes:
                if node not in nodes:
                    continue
                value, source = effective_kpr(nodes[node], config, configs)
                if kpr_on(value):
                    still.append(f"{node} ({source} says {value})")
            return not still, "KPR still on for " + ", ".join(still) if still else "off"

        await self._wait("the KPR-off configuration", self._settings.timeouts.config_seconds, check)

    async def _restart_agent(self, action: RestartAgent, restarting: dict[str, str],
                             record: Record) -> None:
        c = self._settings.cilium
        node = action.node

        async def agent_pods() -> list[dict[str, Any]]:
            return (await self._kube.list(PODS, c.namespace, label_selector=c.agent_selector,
                                          field_selector=f"spec.nodeName={node}")).items

        old_uid = restarting.get(node)
        if old_uid is None:
            live = [p for p in await agent_pods() if not p["metadata"].get("deletionTimestamp")]
            old_uid = live[0]["metadata"]["uid"] if live else ""
            restarting[node] = old_uid
            await record()  # before the delete: a resume must not delete the replacement
        for pod in await agent_pods():
            if old_uid and pod["metadata"]["uid"] == old_uid:
                try:
                    await self._retrying(partial(self._delete_pod, pod["metadata"]["name"]))
                except NotFound:
                    pass

        async def check() -> tuple[bool, str]:
            fresh = [p for p in await agent_pods() if p["metadata"]["uid"] != old_uid]
            if any(pod_ready(p) for p in fresh):
                return True, "ready"
            return False, "replacement not ready yet" if fresh else "no replacement pod yet"

        await self._wait(f"the Cilium agent on {node}", self._settings.timeouts.agent_ready_seconds, check)

    async def _suspend_flux(self, action: SuspendFlux) -> None:
        resource = FLUX_HELMRELEASES if action.kind == "HelmRelease" else FLUX_KUSTOMIZATIONS
        current = await self._kube.get(resource, action.name, action.namespace)
        if (current.get("spec") or {}).get("suspend") is not True:
            await self._guard()
            await self._kube.patch(resource, action.name, {"spec": {"suspend": True}},
                                   action.namespace, patch_type=MERGE_PATCH)
        after = await self._kube.get(resource, action.name, action.namespace)
        if (after.get("spec") or {}).get("suspend") is not True:
            raise StepFailed(f"Flux {action.kind} {action.namespace}/{action.name} is not suspended")
        log.info("owner suspended", extra={"kv": {"owner": f"flux {action.kind}",
                                                  "name": f"{action.namespace}/{action.name}"}})

    async def _disable_argo_sync(self, action: DisableArgoSync) -> None:
        current = await self._kube.get(ARGOCD_APPLICATIONS, action.name, action.namespace)
        if ((current.get("spec") or {}).get("syncPolicy") or {}).get("automated") is not None:
            await self._guard()
            await self._kube.patch(ARGOCD_APPLICATIONS, action.name,
                                   {"spec": {"syncPolicy": {"automated": None}}},
                                   action.namespace, patch_type=MERGE_PATCH)
        after = await self._kube.get(ARGOCD_APPLICATIONS, action.name, action.namespace)
        if ((after.get("spec") or {}).get("syncPolicy") or {}).get("automated") is not None:
            raise StepFailed(f"Argo CD Application {action.namespace}/{action.name} still syncs "
                             "automatically")
        log.info("owner's automated sync off", extra={"kv": {
            "owner": "argocd Application", "name": f"{action.namespace}/{action.name}"}})

    async def _prove(self, action: ProveNode) -> None:
        """Wait until the node itself shows kube-proxy back and KPR off (see prove.py)."""
        proof, c = self._settings.proof, self._settings.cilium
        node = action.node

        async def addresses() -> tuple[str | None, str | None]:
            found = (await self._kube.get(NODES, node)).get("status") or {}
            by_type = {a.get("type"): a.get("address") for a in found.get("addresses") or ()}
            pods = (await self._kube.list(PODS, c.namespace, label_selector=c.agent_selector,
                                          field_selector=f"spec.nodeName={node}")).items
            agent = next(((p.get("status") or {}).get("podIP") for p in pods if pod_ready(p)), None)
            return by_type.get("InternalIP") or by_type.get("ExternalIP"), agent

        async with aiohttp.ClientSession() as session:
            prover = DatapathProver(session, health_port=proof.kube_proxy_health_port,
                                    max_age_seconds=proof.max_age_seconds,
                                    timeout_seconds=min(10.0, proof.timeout_seconds),
                                    clock=self._clock)

            async def check() -> tuple[bool, str]:
                node_ip, agent_ip = await addresses()
                if not node_ip or not agent_ip:
                    return False, "no node address" if not node_ip else "no ready agent pod address"
                agent = f"[{agent_ip}]" if ":" in agent_ip else agent_ip
                proofs = [await prover.kube_proxy(node, node_ip),
                          await prover.kpr_off(node, f"http://{agent}:{proof.agent_metrics_port}/metrics")]
                return _proven(proofs)

            await self._wait(f"proof on {node}'s datapath", proof.timeout_seconds, check)

    async def _delete_pod(self, name: str) -> None:
        await self._guard()
        try:
            await self._kube.delete(PODS, name, self._settings.cilium.namespace)
        except NotFound:
            return
