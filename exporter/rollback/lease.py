"""A ``coordination.k8s.io/v1`` Lease so only one replica rolls back at a time.

Acquire: create the Lease, or take it over when it is free, ours, or expired
(``renewTime + leaseDurationSeconds`` in the past), always as a compare-and-swap on
``resourceVersion`` so two replicas racing get one winner and one 409. The holder
renews it between steps (``renew_if_due``), never from a background task, and
releases it at the end by clearing ``holderIdentity``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from exporter.kube.client import KubeClient
from exporter.kube.errors import Conflict, NotFound
from exporter.kube.resources import LEASES


def micro_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class LeaseLost(Exception):
    """Another holder owns the Lease now; stop acting."""


class LeaseLock:
    """One named Lease held by ``identity``."""

    def __init__(self, kube: KubeClient, namespace: str, name: str, identity: str,
                 duration_seconds: int, clock: Callable[[], float]) -> None:
        self._kube, self._namespace, self._name = kube, namespace, name
        self.identity = identity
        self._duration = duration_seconds
        self._clock = clock
        self._renewed_at = 0.0
        self.holder = ""  # who holds it, as last seen

    async def acquire(self) -> bool:
        """True when we hold the Lease now; False when someone else holds a live one."""
        now = self._clock()
        try:
            lease = await self._kube.get(LEASES, self._name, self._namespace)
        except NotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self._name, "namespace": self._namespace},
                    "spec": self._spec(now, acquire=True, transitions=0)}
            try:
                await self._kube.create(LEASES, body, self._namespace)
            except Conflict:
                return False
            self._held(now)
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renewed = parse_micro_time(spec.get("renewTime")) or 0.0
        duration = int(spec.get("leaseDurationSeconds") or self._duration)
        if holder and holder != self.identity and renewed + duration > now:
            self.holder = holder
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        body = {**lease, "spec": self._spec(now, acquire=holder != self.identity,
                                            transitions=transitions, old=spec)}
        try:
            await self._kube.replace(LEASES, body, self._namespace)
        except Conflict:
            return False
        self._held(now)
        return True

    async def renew_if_due(self) -> None:
        """Renew when a third of the duration has passed; ``LeaseLost`` when taken over."""
        if self._clock() - self._renewed_at < self._duration / 3:
            return
        if not await self.acquire() or self.holder != self.identity:
            raise LeaseLost(f"Lease {self._namespace}/{self._name} is held by {self.holder or 'someone else'}")

    async def release(self) -> None:
        """Clear ``holderIdentity`` if we still hold it (best effort)."""
        try:
            lease = await self._kube.get(LEASES, self._name, self._namespace)
        except NotFound:
            return
        spec = dict(lease.get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            return
        spec.pop("holderIdentity", None)
        try:
            await self._kube.replace(LEASES, {**lease, "spec": spec}, self._namespace)
        except Conflict:
            pass
        self.holder = ""

    def _held(self, now: float) -> None:
        self._renewed_at = now
        self.holder = self.identity

    def _spec(self, now: float, *, acquire: bool, transitions: int,
              old: dict[str, Any] | None = None) -> dict[str, Any]:
        spec = dict(old or {})
        spec.update({"holderIdentity": self.identity, "leaseDurationSeconds": self._duration,
                     "renewTime": micro_time(now), "leaseTransitions": transitions})
        if acquire or "acquireTime" not in spec:
            spec["acquireTime"] = micro_time(now)
        return spec
