"""Cluster builders for rollback tests: seeded fake clusters, a DaemonSet controller, virtual time.

The test plays the DaemonSet controller (the fake has none): ``Controller``
(``exporter.simulator.kubeapi.cluster``) gives every node a ready pod of each DaemonSet that
schedules there on ``reconcile``, which runs on every injected ``sleep``, which also
advances the virtual clock. Nothing really sleeps.
"""

from __future__ import annotations

import asyncio

from exporter.cilium import MIGRATION_LABEL
from exporter.rollback.settings import DatapathProof, RollbackSettings
from exporter.simulator.kubeapi.cluster import CILIUM_LABELS, KP_LABELS, Controller
from tests.fakekube.fixtures import cilium_node_config, configmap, daemonset, node

MIGRATION = MIGRATION_LABEL
NODES = ("node-a", "node-b", "node-c")
T0 = 1_800_000_000.0


class VirtualTime:
    """Clock + sleep + timer on one virtual clock; nothing really sleeps.

    ``sleep`` advances the clock (the code under test is the only thing waiting) and lets
    the 'controller' act. ``timer`` waits, without advancing it, until the clock has moved
    past the deadline: background timers (Lease renewal, the resume loop) fire when the
    test or a ``sleep`` moves time on. ``timers`` counts the timers waiting now.
    """

    def __init__(self, controller: Controller | None = None, start: float = T0) -> None:
        self._now = start
        self.controller = controller
        self.sleeps = 0
        self._timers: list[tuple[float, asyncio.Future[None]]] = []
        self._parked = asyncio.Event()

    def __call__(self) -> float:
        return self._now

    @property
    def now(self) -> float:
        return self._now

    @now.setter
    def now(self, value: float) -> None:
        self._now = value
        due = [f for deadline, f in self._timers if deadline <= value]
        self._timers = [(d, f) for d, f in self._timers if d > value and not f.done()]
        for future in due:
            if not future.done():
                future.set_result(None)

    async def timer(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._timers.append((self._now + seconds, future))
        self._parked.set()
        try:
            await future
        finally:
            self._timers = [(d, f) for d, f in self._timers if f is not future]

    @property
    def timers(self) -> int:
        return sum(1 for _, f in self._timers if not f.done())

    async def parked(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait (real time, bounded) until ``count`` timers wait on the clock."""
        async def until() -> None:
            while self.timers < count:
                self._parked.clear()
                await self._parked.wait()
        await asyncio.wait_for(until(), timeout)

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if self.controller is not None:
            self.controller.reconcile()
        await asyncio.sleep(0)


def settings(**overrides) -> RollbackSettings:
    """Enforce-mode settings; the datapath proof is off unless a test serves the nodes' health
    endpoints and agent metrics (tests/rollback/test_prove_step.py)."""
    base = dict(mode="enforce", namespace="kpr", identity="test-replica",
                proof=DatapathProof(enabled=False))
    base.update(overrides)
    return RollbackSettings(**base)


def migration_affinity() -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": MIGRATION, "operator": "NotIn", "values": ["true"]}]}]}}}


def kube_proxy_daemonset(affinity: dict | None = None) -> dict:
    return daemonset("kube-proxy", "kube-system", KP_LABELS, affinity=affinity)


def seed_canary(fake, canaries=("node-b",)) -> None:
    """Cilium's per-node procedure, done for ``canaries``: label, exclusion affinity, CNC."""
    for name in NODES:
        fake.seed(node(name, {MIGRATION: "true"} if name in canaries else None))
    fake.seed(configmap("cilium-config", "kube-system", {"kube-proxy-replacement": "false",
                                                         "k8s-service-host": "10.0.0.1"}))
    fake.seed(cilium_node_config("kube-proxy-replacement", "kube-system",
                                 {"matchLabels": {MIGRATION: "true"}},
                                 {"kube-proxy-replacement": "true",
                                  "kube-proxy-replacement-healthz-bind-address": "0.0.0.0:10256"}))
    fake.seed(kube_proxy_daemonset(migration_affinity()))
    fake.seed(configmap("kube-proxy", "kube-system", {"config.conf": "mode: iptables"}, KP_LABELS))
    fake.seed(daemonset("cilium", "kube-system", CILIUM_LABELS, image="quay.io/cilium/cilium:v1.18.0"))


def seed_full(fake, *, kube_proxy: bool = False) -> None:
    """Every node switched by cilium-config; kube-proxy deleted unless ``kube_proxy``."""
    for name in NODES:
        fake.seed(node(name))
    fake.seed(configmap("cilium-config", "kube-system", {
        "kube-proxy-replacement": "true",
        "kube-proxy-replacement-healthz-bind-address": "0.0.0.0:10256"}))
    fake.seed(daemonset("cilium", "kube-system", CILIUM_LABELS, image="quay.io/cilium/cilium:v1.18.0"))
    if kube_proxy:
        fake.seed(kube_proxy_daemonset())
        fake.seed(configmap("kube-proxy", "kube-system", {"config.conf": "mode: iptables"}, KP_LABELS))



