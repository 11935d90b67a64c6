"""A ``coordination.k8s.io/v1`` Lease so only one replica rolls back at a time.

Acquire: create the Lease, or take it over when it is free, ours, or expired
(``renewTime + leaseDurationSeconds`` in the past), always as a compare-and-swap on
``resourceVersion`` so two replicas racing get one winner and one 409.

While held, ``kept(timer)`` renews it every third of its duration from a background
task, however long one action takes. ``ensure_held()`` runs immediately before every
write: it re-reads the Lease and raises ``LeaseLost`` when another replica took it, or
when it was released meanwhile; a holder never takes the Lease back in the middle of a
run. ``release()`` clears ``holderIdentity`` if we still hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, NoReturn

from exporter.kube.client import KubeClient
from exporter.kube.errors import Conflict, KubeError, NotFound
from exporter.kube.resources import LEASES

log = logging.getLogger(__name__)

Timer = Callable[[float], Awaitable[object]]


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
    """Another holder owns the Lease now (or nobody does): stop acting at once."""


class LeaseLock:
    """One named Lease held by ``identity``."""

    def __init__(self, kube: KubeClient, namespace: str, name: str, identity: str,
                 duration_seconds: int, clock: Callable[[], float]) -> None:
        self._kube, self._namespace, self._name = kube, namespace, name
        self.identity = identity
        self._duration = duration_seconds
        self._clock = clock
        self._lost = ""  # why we lost it, once the renewal task found out
        self.holder = ""  # who holds it, as last seen

    @property
    def ref(self) -> str:
        return f"Lease {self._namespace}/{self._name}"

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
            self._held()
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and self._live(spec, now):
            self.holder = holder
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        body = {**lease, "spec": self._spec(now, acquire=holder != self.identity,
                                            transitions=transitions, old=spec)}
        try:
            await self._kube.replace(LEASES, body, self._namespace)
        except Conflict:
            return False
        self._held()
        return True

    async def live_holder(self) -> str:
        """Another identity holding an unexpired Lease, or "" when it can be taken."""
        try:
            spec = (await self._kube.get(LEASES, self._name, self._namespace)).get("spec") or {}
        except NotFound:
            return ""
        holder = spec.get("holderIdentity") or ""
        return holder if holder != self.identity and self._live(spec, self._clock()) else ""

    def raise_if_lost(self) -> None:
        """``LeaseLost`` once the renewal found the Lease taken (no I/O)."""
        if self._lost:
            raise LeaseLost(self._lost)

    async def ensure_held(self) -> None:
        """Before a write: ``LeaseLost`` unless we still hold the Lease (renewed if it ran out)."""
        self.raise_if_lost()
        spec = await self._read_ours()
        if not self._live(spec, self._clock()):
            await self.renew()  # nobody took it yet: renew (compare-and-swap) before acting

    async def renew(self) -> None:
        """Renew the Lease we hold; ``LeaseLost`` when it is not ours any more."""
        for _ in range(2):
            try:
                lease = await self._kube.get(LEASES, self._name, self._namespace)
            except NotFound:
                self._lose("it was deleted")
            spec = self._check(lease.get("spec") or {})
            body = {**lease, "spec": {**spec, "renewTime": micro_time(self._clock()),
                                      "leaseDurationSeconds": self._duration}}
            try:
                await self._kube.replace(LEASES, body, self._namespace)
                return
            except Conflict:
                continue  # written meanwhile: read again, it may have been taken
        self._lose("it keeps changing under us")

    @contextlib.asynccontextmanager
    async def kept(self, timer: Timer) -> AsyncIterator[None]:
        """Renew every third of the duration in the background while the block runs."""
        task = asyncio.ensure_future(self._keep(timer))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

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

    async def _keep(self, timer: Timer) -> None:
        while True:
            await timer(self._duration / 3)
            try:
                await self.renew()
            except LeaseLost as exc:
                log.warning("rollback Lease lost", extra={"kv": {"lease": self.ref, "error": str(exc)}})
                return
            except KubeError as exc:  # the next write's check decides; try again next tick
                log.warning("cannot renew the rollback Lease", extra={"kv": {"error": str(exc)}})

    async def _read_ours(self) -> dict[str, Any]:
        try:
            lease = await self._kube.get(LEASES, self._name, self._namespace)
        except NotFound:
            self._lose("it was deleted")
        return self._check(lease.get("spec") or {})

    def _check(self, spec: dict[str, Any]) -> dict[str, Any]:
        holder = spec.get("holderIdentity") or ""
        if holder != self.identity:
            self.holder = holder
            self._lose(f"{holder} holds it now" if holder else "it was released meanwhile")
        return spec

    def _lose(self, why: str) -> NoReturn:
        self._lost = f"{self.ref} is no longer held by {self.identity}: {why}"
        raise LeaseLost(self._lost)

    def _live(self, spec: dict[str, Any], now: float) -> bool:
        renewed = parse_micro_time(spec.get("renewTime")) or 0.0
        return renewed + int(spec.get("leaseDurationSeconds") or self._duration) > now

    def _held(self) -> None:
        self._lost = ""
        self.holder = self.identity

    def _spec(self, now: float, *, acquire: bool, transitions: int,
              old: dict[str, Any] | None = None) -> dict[str, Any]:
        spec = dict(old or {})
        spec.update({"holderIdentity": self.identity, "leaseDurationSeconds": self._duration,
                     "renewTime": micro_time(now), "leaseTransitions": transitions})
        if acquire or "acquireTime" not in spec:
            spec["acquireTime"] = micro_time(now)
        return spec
