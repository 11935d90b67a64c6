"""Rollbackers: ``KubeRollbacker`` executes a plan against the API, ``DryRunRollbacker`` only reports it.

``KubeRollbacker.rollback(plan)``:

* refuses (changing nothing) a refused plan, or when another replica holds the Lease;
* one rollback at a time per process (``asyncio.Lock``) and per cluster (Lease);
* persists progress after every action (``state.StateStore``); an unfinished rollback
  found there is finished first, from where it stopped (``resume()`` does the same at
  start-up), instead of being repeated;
* applies each action idempotently and verifies it before the next; Conflict (409) and
  Unavailable (429/5xx) are retried a few times, waits poll with an injected
  clock/sleep and give up at the step's timeout;
* a failure stops at once and reports what was done and what failed. Nothing in the
  plan deletes kube-proxy, runs ``kube-proxy --cleanup`` or unsets ``k8sServiceHost``,
  so stopping mid-way leaves kube-proxy running alongside the agents (no worse);
* records Events (``RollbackStarted``/``Succeeded``/``Failed``/``Refused``) on the state
  ConfigMap, with the alert fingerprints.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from exporter.kube.client import MERGE_PATCH, KubeClient
from exporter.kube.errors import Conflict, Forbidden, KubeError, NotFound, Unavailable
from exporter.kube.resources import CONFIGMAPS, DAEMONSETS, EVENTS, NODES, PODS
from exporter.rollback.api import DRY_RUN, ENFORCE, FAILED, NOOP, PLANNED, REFUSED, SUCCEEDED, Result
from exporter.rollback.backup import list_node_configs
from exporter.rollback.lease import LeaseLock, LeaseLost, micro_time
from exporter.rollback.model import (
    NodeConfig, effective_kpr, kpr_on, required_node_terms, strip_server_fields,
    without_excluded_values,
)
from exporter.rollback.plan import (
    READY, Action, Plan, RemoveNodeLabel, RestartAgent, RestoreObject, SetConfigValues,
    StripNodeConfig, UnexcludeNodes, VerifyKprOff, WaitKubeProxyReady,
)
from exporter.rollback.settings import RollbackSettings
from exporter.rollback.state import RUNNING, RollbackState, StateError, StateStore

log = logging.getLogger(__name__)

ATTEMPTS: Final = 5
_RESOURCES: Final = {("v1", "ConfigMap"): CONFIGMAPS, ("apps/v1", "DaemonSet"): DAEMONSETS}
_PERMISSION_HINT: Final = ("; grant it to the exporter (exporter/rollback/permissions.py lists "
                           "every permission the rollback needs)")


class StepFailed(Exception):
    """An action could not be applied or verified; the message says why."""


def pod_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


class DryRunRollbacker:
    """The null object: logs exactly the plan enforce would run and changes nothing."""

    mode = DRY_RUN

    async def rollback(self, plan: Plan) -> Result:
        status = {READY: PLANNED, NOOP: NOOP, REFUSED: REFUSED}[plan.status]
        count = len(plan.actions())
        message = plan.refusal or (f"dry-run: would run {count} action(s); nothing was changed"
                                   if count else "dry-run: nothing to do")
        log.info("rollback plan (dry-run, nothing changed)", extra={"kv": {
            "plan": plan.id, "status": status, "scope": plan.scope.describe(),
            "fingerprints": ",".join(plan.trigger.fingerprints), "steps": plan.render(),
        }})
        return Result(status, DRY_RUN, message, plan.id)


class KubeRollbacker:
    """Executes rollback plans against the Kubernetes API; see the module docstring."""

    mode = ENFORCE

    def __init__(
        self,
        kube: KubeClient,
        settings: RollbackSettings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        store: StateStore | None = None,
        lease: LeaseLock | None = None,
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self.identity = settings.identity or socket.gethostname()
        self._store = store or StateStore(kube, settings.namespace, settings.state_configmap)
        self._lease = lease or LeaseLock(kube, settings.namespace, settings.lease_name, self.identity,
                                         settings.lease_seconds, clock)
        self._lock = asyncio.Lock()

    # --- entry points -------------------------------------------------------------------

    async def rollback(self, plan: Plan) -> Result:
        if plan.status == REFUSED:
            await self._event(plan, "RollbackRefused", f"refused: {plan.refusal}", warning=True)
            return Result(REFUSED, ENFORCE, plan.refusal, plan.id)
        if plan.status == NOOP:
            return Result(NOOP, ENFORCE, "nothing to roll back: " + "; ".join(plan.notes), plan.id)
        return await self._locked(plan)

    async def resume(self) -> Result | None:
        """Finish a rollback recorded as running (after a restart); None when there is none."""
        try:
            state = await self._store.load()
        except (KubeError, StateError) as exc:
            log.error("cannot read rollback state", extra={"kv": {"error": str(exc)}})
            return None
        if state is None or state.status != RUNNING:
            return None
        return await self._locked(None)

    async def history(self) -> list[float]:
        """Start times of recorded rollbacks (seeds the decision's cooldown and cap)."""
        return await self._store.history()

    async def _locked(self, plan: Plan | None) -> Result:
        plan_id = plan.id if plan else ""
        async with self._lock:
            try:
                if not await self._lease.acquire():
                    return Result(REFUSED, ENFORCE, f"another replica ({self._lease.holder}) holds Lease "
                                  f"{self._settings.namespace}/{self._settings.lease_name}: one "
                                  "rollback at a time", plan_id)
            except KubeError as exc:
                return Result(FAILED, ENFORCE, f"cannot take the rollback Lease: {_explain(exc)}", plan_id)
            try:
                return await self._start_or_resume(plan)
            finally:
                try:
                    await self._lease.release()
                except KubeError as exc:
                    log.warning("cannot release the rollback Lease", extra={"kv": {"error": str(exc)}})

    async def _start_or_resume(self, plan: Plan | None) -> Result:
        try:
            state = await self._store.load()
        except (KubeError, StateError) as exc:
            return Result(FAILED, ENFORCE, f"cannot read rollback state: {_explain(exc)}; "
                          "nothing was changed", plan.id if plan else "")
        prefix = ""
        if state is not None and state.status == RUNNING:
            if plan is not None and state.plan.id != plan.id:
                prefix = (f"finished the interrupted rollback {state.plan.id} instead of starting "
                          f"{plan.id}; "
                          )
            log.info("resuming interrupted rollback", extra={"kv": {
                "plan": state.plan.id, "done": len(state.done), "of": len(state.plan.actions())}})
        elif plan is None:
            return Result(NOOP, ENFORCE, "no interrupted rollback to resume")
        else:
            now = self._clock()
            state = RollbackState(plan, started_at=now, updated_at=now, holder=self.identity)
            try:
                history = await self._store.history()
                await self._store.save(state, history=[*history, now])
            except KubeError as exc:
                return Result(FAILED, ENFORCE, f"cannot record rollback progress in "
                              f"{self._store.location}: {_explain(exc)}; nothing was changed", plan.id)
            await self._event(plan, "RollbackStarted",
                              f"rolling back {plan.scope.describe()}: {plan.trigger.reason}")
        result = await self._execute(state)
        if prefix:
            result = Result(result.status, result.mode, prefix + result.message, result.plan_id, result.done)
        return result

    # --- execution ------------------------------------------------------------------------

    async def _execute(self, state: RollbackState) -> Result:
        plan = state.plan
        done = [a.describe() for i, _, a in plan.actions() if i in state.done]
        for index, step, action in plan.actions():
            if index in state.done:
                continue
            log.info("rollback action", extra={"kv": {"plan": plan.id, "step": step.name,
                                                      "action": action.describe()}})
            try:
                await self._apply(action, state)
                state.done.append(index)
                done.append(action.describe())
                await self._save(state)
                await self._lease.renew_if_due()
            except (StepFailed, KubeError, LeaseLost) as exc:
                text = _explain(exc) if isinstance(exc, KubeError) else str(exc)
                message = (f"step {step.name} failed at '{action.describe()}': {text}. Stopped; "
                           f"{len(done)} action(s) done before. kube-proxy was not removed and "
                           "k8sServiceHost was not touched")
                state.status, state.message = FAILED, message
                if not isinstance(exc, LeaseLost):
                    await self._save(state, quiet=True)
                await self._event(plan, "RollbackFailed", message, warning=True)
                return Result(FAILED, ENFORCE, message, plan.id, tuple(done))
        state.status = SUCCEEDED
        state.message = f"rolled back {plan.scope.describe()} ({len(done)} action(s))"
        await self._save(state, quiet=True)
        await self._event(plan, "RollbackSucceeded", state.message)
        return Result(SUCCEEDED, ENFORCE, state.message, plan.id, tuple(done))

    async def _save(self, state: RollbackState, *, quiet: bool = False) -> None:
        state.updated_at = self._clock()
        try:
            await self._store.save(state)
        except KubeError as exc:
            if not quiet:
                raise StepFailed(f"cannot record progress in {self._store.location}: {_explain(exc)}") from exc
            log.error("cannot record rollback progress", extra={"kv": {"error": str(exc)}})

    async def _apply(self, action: Action, state: RollbackState) -> None:
        handler = {
            RestoreObject: self._restore, RemoveNodeLabel: self._remove_label,
            UnexcludeNodes: self._unexclude, WaitKubeProxyReady: self._wait_kube_proxy,
            SetConfigValues: self._set_config, StripNodeConfig: self._strip_node_config,
            VerifyKprOff: self._verify_kpr_off,
        }.get(type(action))
        if isinstance(action, RestartAgent):
            await self._restart_agent(action, state)
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
            await self._lease.renew_if_due()

    # --- actions ------------------------------------------------------------------------

    async def _restore(self, action: RestoreObject) -> None:
        resource = _RESOURCES[(action.api_version, action.kind)]
        manifest = strip_server_fields(action.manifest)
        manifest.setdefault("metadata", {})["namespace"] = action.namespace
        try:
            await self._kube.create(resource, manifest, action.namespace)
        except Conflict as exc:
            if not exc.already_exists:
                raise
            log.info("restore skipped: object exists", extra={"kv": {"object": action.name}})
        await self._kube.get(resource, action.name, action.namespace)  # verify

    async def _remove_label(self, action: RemoveNodeLabel) -> None:
        try:
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

    async def _restart_agent(self, action: RestartAgent, state: RollbackState) -> None:
        c = self._settings.cilium
        node = action.node

        async def agent_pods() -> list[dict[str, Any]]:
            return (await self._kube.list(PODS, c.namespace, label_selector=c.agent_selector,
                                          field_selector=f"spec.nodeName={node}")).items

        old_uid = state.restarting.get(node)
        if old_uid is None:
            live = [p for p in await agent_pods() if not p["metadata"].get("deletionTimestamp")]
            old_uid = live[0]["metadata"]["uid"] if live else ""
            state.restarting[node] = old_uid
            await self._save(state)  # before the delete: a resume must not delete the replacement
        for pod in await agent_pods():
            if old_uid and pod["metadata"]["uid"] == old_uid:
                try:
                    await self._retrying(lambda name=pod["metadata"]["name"]: self._delete_pod(name))
                except NotFound:
                    pass

        async def check() -> tuple[bool, str]:
            fresh = [p for p in await agent_pods() if p["metadata"]["uid"] != old_uid]
            if any(pod_ready(p) for p in fresh):
                return True, "ready"
            return False, "replacement not ready yet" if fresh else "no replacement pod yet"

        await self._wait(f"the Cilium agent on {node}", self._settings.timeouts.agent_ready_seconds, check)

    async def _delete_pod(self, name: str) -> None:
        try:
            await self._kube.delete(PODS, name, self._settings.cilium.namespace)
        except NotFound:
            return

    # --- records ---------------------------------------------------------------------------

    async def _event(self, plan: Plan, reason: str, message: str, *, warning: bool = False) -> None:
        ns = self._settings.namespace
        now = micro_time(self._clock())
        prints = ",".join(plan.trigger.fingerprints)
        text = f"{message} [plan {plan.id}" + (f"; alerts {prints}" if prints else "") + "]"
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": "kpr-exporter-rollback.", "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns,
                               "name": self._settings.state_configmap},
            "reason": reason, "message": text[:1024], "type": "Warning" if warning else "Normal",
            "source": {"component": "kpr-exporter"}, "reportingComponent": "kpr-exporter",
            "reportingInstance": self.identity, "action": "Rollback",
            "firstTimestamp": now[:19] + "Z", "lastTimestamp": now[:19] + "Z", "count": 1,
        }
        try:
            await self._kube.create(EVENTS, body, ns)
        except KubeError as exc:
            log.warning("cannot record rollback event", extra={"kv": {"reason": reason, "error": str(exc)}})


def _explain(exc: KubeError) -> str:
    return str(exc) + (_PERMISSION_HINT if isinstance(exc, Forbidden) else "")
