"""The migration's steps against the Kubernetes API: each applied, then verified.

The mirror image of the rollback's appliers, and built on them: restarting an agent,
removing labels, stripping the CiliumNodeConfig and lifting the kube-proxy exclusion are
the rollback's own actions (``ActionRunner``), so both directions write the same way.
Every write is preceded by ``guard()`` (the Lease check), waits poll with the injected
clock and sleep and end in ``StepFailed`` at their timeout. Applying a step twice changes
nothing the second time: a resumed migration repeats its current step safely.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp

from exporter.cilium import KPR_HEALTHZ_KEY, KPR_KEY, NodeConfig, effective_kpr, kpr_on
from exporter.kube.client import MERGE_PATCH, KubeClient
from exporter.kube.errors import Conflict, NotFound
from exporter.kube.resources import CONFIGMAPS, DAEMONSETS, NODES, PODS
from exporter.migrate.affinity import (
    affinity_of, affinity_patch, with_exclusion, without_exclusion,
)
from exporter.migrate.drain import drain_targets, evict_all
from exporter.migrate.prove import KUBE_PROXY_GONE, MigrationProver, proven
from exporter.migrate.settings import MigrateSettings
from exporter.rollback.actions import RemoveNodeLabel, RestartAgent, StripNodeConfig
from exporter.rollback.appliers import ActionRunner, StepFailed, pod_ready
from exporter.rollback.backup import list_node_configs
from exporter.rollback.prove import Proof
from exporter.rollback.settings import RollbackSettings

log = logging.getLogger(__name__)
Record = Callable[[], Awaitable[None]]


class Steps:
    """One method per migration step; see the module docstring."""

    def __init__(self, kube: KubeClient, rollback: RollbackSettings, migrate: MigrateSettings, *,
                 clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]],
                 guard: Callable[[], Awaitable[None]], watch: Callable[[], None]) -> None:
        self._kube, self._r, self._m = kube, rollback, migrate
        self._clock, self._sleep, self._guard, self._watch = clock, sleep, guard, watch
        self.actions = ActionRunner(kube, rollback, clock=clock, sleep=sleep, guard=guard,
                                    watch=watch)

    @property
    def label(self) -> tuple[str, str]:
        return self._r.kube_proxy.migration_label, self._m.label_value

    @property
    def rollback(self) -> RollbackSettings:
        return self._r

    @property
    def settings(self) -> MigrateSettings:
        return self._m

    async def guard(self) -> None:
        """The Lease check before a write made outside these methods."""
        await self._guard()

    async def kube_proxy_exists(self) -> bool:
        kp = self._r.kube_proxy
        try:
            await self._kube.get(DAEMONSETS, kp.daemonset, kp.namespace)
        except NotFound:
            return False
        return True

    async def _wait(self, what: str, timeout: float,
                    check: Callable[[], Awaitable[tuple[bool, str]]]) -> None:
        start, detail = self._clock(), ""
        while True:
            ok, detail = await check()
            if ok:
                return
            if self._clock() - start >= timeout:
                raise StepFailed(f"timed out after {timeout:.0f}s waiting for {what} ({detail})")
            await self._sleep(self._m.poll_interval_seconds)
            self._watch()

    # --- kube-proxy exclusion and the CiliumNodeConfig ---------------------------------

    async def exclude_kube_proxy(self) -> None:
        key, value = self.label
        if not await self._rewrite_affinity(lambda ds: with_exclusion(ds, key, value)):
            kp = self._r.kube_proxy
            raise StepFailed(f"DaemonSet {kp.namespace}/{kp.daemonset} not found: the per-node "
                             "procedure starts from a running kube-proxy")

    async def lift_exclusion(self) -> None:
        """Undo ``exclude_kube_proxy`` (the affinity left as it was before, empty parts gone)."""
        key, value = self.label
        await self._rewrite_affinity(lambda ds: without_exclusion(ds, key, value))

    async def _rewrite_affinity(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> bool:
        """Patch the kube-proxy DaemonSet's pod affinity to ``change(ds)``'s (a merge patch
        conditional on the resourceVersion read); verified. False: no DaemonSet."""
        kp = self._r.kube_proxy
        for _ in range(3):
            try:
                ds = await self._kube.get(DAEMONSETS, kp.daemonset, kp.namespace)
            except NotFound:
                return False
            want = affinity_of(change(ds))
            if affinity_of(ds) == want:
                return True
            await self._guard()
            try:
                await self._kube.patch(DAEMONSETS, kp.daemonset, affinity_patch(ds, want),
                                       kp.namespace, patch_type=MERGE_PATCH)
            except Conflict:
                continue  # changed meanwhile: read again
        raise StepFailed(f"DaemonSet {kp.namespace}/{kp.daemonset} keeps changing; its node "
                         "affinity was not rewritten")

    def node_config_body(self) -> dict[str, Any]:
        key, value = self.label
        return {"metadata": {"name": self._m.node_config, "namespace": self._r.cilium.namespace,
                             "labels": {"app.kubernetes.io/managed-by": "kpr-exporter"}},
                "spec": {"nodeSelector": {"matchLabels": {key: value}},
                         "defaults": {KPR_KEY: "true", KPR_HEALTHZ_KEY: self._m.healthz_bind_address}}}

    async def create_node_config(self) -> None:
        ns, name = self._r.cilium.namespace, self._m.node_config
        resource, items = await list_node_configs(self._kube, ns)
        if resource is None:
            raise StepFailed("the cluster serves no CiliumNodeConfig (cilium.io/v2 or v2alpha1): "
                             "Cilium 1.13 or later is needed for the per-node procedure")
        body = self.node_config_body()
        current = next((o for o in items if o["metadata"]["name"] == name), None)
        if current is None:
            await self._guard()
            try:
                await self._kube.create(resource, body, ns)
            except Conflict as exc:
                if not exc.already_exists:
                    raise
            current = await self._kube.get(resource, name, ns)
        if (current.get("spec") or {}) != body["spec"]:
            raise StepFailed(f"CiliumNodeConfig {ns}/{name} exists with another spec "
                             f"({current.get('spec')}); rename migrate.node_config or remove it")
        key, value = self.label
        effective, _ = effective_kpr({key: value}, {}, [NodeConfig.from_object(current)])
        if effective != "true":
            raise StepFailed(f"CiliumNodeConfig {ns}/{name} does not turn KPR on for labelled nodes")

    # --- one batch ----------------------------------------------------------------------

    async def cordon(self, nodes: Sequence[str], already: Sequence[str]) -> tuple[str, ...]:
        """Cordon ``nodes``; the ones cordoned here (to uncordon later) plus ``already``."""
        ours = list(already)
        for name in nodes:
            node = await self._kube.get(NODES, name)
            if (node.get("spec") or {}).get("unschedulable"):
                continue  # cordoned before us (or by us before a restart: in ``already``)
            await self._guard()
            await self._kube.patch(NODES, name, {"spec": {"unschedulable": True}},
                                   patch_type=MERGE_PATCH)
            ours.append(name)
        return tuple(sorted(set(ours)))

    async def drain(self, nodes: Sequence[str]) -> list[str]:
        """Evict the pods of controllers on ``nodes`` as kubectl drain does (see
        :mod:`exporter.migrate.drain`), within ``migrate.drain_timeout_seconds``; wait until
        they are gone. Returns warnings (pods left in place)."""
        timeout = self._m.drain_timeout_seconds
        deadline = self._clock() + timeout
        targets, warnings = drain_targets([p for n in nodes for p in await self._pods_on(n)])
        await evict_all(self._kube, targets, deadline=deadline, clock=self._clock,
                        sleep=self._sleep, guard=self._guard, watch=self._watch)

        async def drained() -> tuple[bool, str]:
            left, _ = drain_targets([p for n in nodes for p in await self._pods_on(n)])
            names = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in left]
            return not names, "still running: " + ", ".join(names[:5]) if names else "drained"

        await self._wait(f"drain of {', '.join(nodes)}", max(0.0, deadline - self._clock()),
                         drained)
        return warnings

    async def uncordon(self, nodes: Sequence[str]) -> None:
        for name in nodes:
            try:
                node = await self._kube.get(NODES, name)
            except NotFound:
                continue
            if (node.get("spec") or {}).get("unschedulable"):
                await self._guard()
                await self._kube.patch(NODES, name, {"spec": {"unschedulable": None}},
                                       patch_type=MERGE_PATCH)

    async def label_nodes(self, nodes: Sequence[str]) -> None:
        key, value = self.label
        for name in nodes:
            node = await self._kube.get(NODES, name)
            if ((node.get("metadata") or {}).get("labels") or {}).get(key) != value:
                await self._guard()
                await self._kube.patch(NODES, name, {"metadata": {"labels": {key: value}}},
                                       patch_type=MERGE_PATCH)
            node = await self._kube.get(NODES, name)
            if (node["metadata"].get("labels") or {}).get(key) != value:
                raise StepFailed(f"node {name} does not carry {key}={value}")

    async def restart_agent(self, node: str, restarting: dict[str, str], record: Record) -> None:
        await self.actions.apply(RestartAgent(node), restarting, record)

    async def verify_node(self, node: str, timeout: float) -> str:
        """Wait until ``node`` shows it runs KPR (see :mod:`exporter.migrate.prove`)."""
        proof = self._r.proof
        async with aiohttp.ClientSession() as session:
            prover = MigrationProver(session, health_port=proof.kube_proxy_health_port,
                                     max_age_seconds=proof.max_age_seconds,
                                     timeout_seconds=min(10.0, timeout), clock=self._clock)
            detail = {"text": ""}

            async def check() -> tuple[bool, str]:
                ok, detail["text"] = await self._node_proofs(node, prover)
                return ok, detail["text"]

            await self._wait(f"{node} on the kube-proxy replacement", timeout, check)
        log.info("node proven on KPR", extra={"kv": {"node": node, "detail": detail["text"]}})
        return detail["text"]

    async def _node_proofs(self, node: str, prover: MigrationProver) -> tuple[bool, str]:
        c, kp = self._r.cilium, self._r.kube_proxy
        agents = (await self._kube.list(PODS, c.namespace, label_selector=c.agent_selector,
                                        field_selector=f"spec.nodeName={node}")).items
        ready = [p for p in agents if pod_ready(p)]
        if not ready:
            return False, "agent-ready: no ready Cilium agent"
        proxies = (await self._kube.list(PODS, kp.namespace, label_selector=kp.pod_selector,
                                         field_selector=f"spec.nodeName={node}")).items
        proofs = [Proof(node, KUBE_PROXY_GONE, not proxies,
                        "no kube-proxy pod" if not proxies else
                        f"kube-proxy pod {proxies[0]['metadata']['name']} still on the node")]
        labels = (await self._kube.get(NODES, node))["metadata"].get("labels") or {}
        value, source = await self._effective(labels)
        proofs.append(Proof(node, "config", kpr_on(value), f"{source} sets {KPR_KEY}={value}"))
        if self._r.proof.enabled:
            status = (await self._kube.get(NODES, node)).get("status") or {}
            by_type = {a.get("type"): a.get("address") for a in status.get("addresses") or ()}
            address = by_type.get("InternalIP") or by_type.get("ExternalIP")
            agent_ip = (ready[0].get("status") or {}).get("podIP")
            if not address or not agent_ip:
                return False, "no node address" if not address else "no agent pod address"
            host = f"[{agent_ip}]" if ":" in agent_ip else agent_ip
            proofs += [await prover.kpr_on(node, f"http://{host}:{self._r.proof.agent_metrics_port}/metrics"),
                       await prover.kpr_health(node, address)]
        return proven(proofs)

    async def _effective(self, labels: dict[str, str]) -> tuple[str, str]:
        c = self._r.cilium
        try:
            config = (await self._kube.get(CONFIGMAPS, c.configmap, c.namespace)).get("data") or {}
        except NotFound:
            config = None
        _, items = await list_node_configs(self._kube, c.namespace)
        return effective_kpr(labels, config, [NodeConfig.from_object(o) for o in items])

    async def _pods_on(self, node: str) -> list[dict[str, Any]]:
        pods = (await self._kube.list(PODS, None, field_selector=f"spec.nodeName={node}")).items
        return [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]

    # --- the end ------------------------------------------------------------------------

    async def remove_node_pieces(self, nodes: Sequence[str]) -> None:
        """Delete the CiliumNodeConfig (its keys only switched KPR) and the labels."""
        key, _ = self.label
        await self.actions.apply(StripNodeConfig(self._r.cilium.namespace, self._m.node_config,
                                                 (KPR_KEY, KPR_HEALTHZ_KEY), True), {}, _nothing)
        for name in nodes:
            await self.actions.apply(RemoveNodeLabel(name, key), {}, _nothing)


async def _nothing() -> None:
    return None
