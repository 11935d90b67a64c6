"""Keep a local view of one resource current through ``KubeClient.watch``.

A ``Mirror`` hands every watch event to its consumer and, optionally, keeps the
objects by (namespace, name). When the API refuses (RBAC), no longer serves the
resource (CRD version gone) or rejects the request, the view is dropped, the consumer
is told the data is lost (``None``: not known, which is not the same as empty), the
problem is logged once, and the watch is retried after ``refused_retry_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from exporter.kube.client import SYNC, Backoff, KubeClient, WatchEvent
from exporter.kube.errors import Forbidden, KubeError, NotFound
from exporter.kube.resources import Resource

log = logging.getLogger(__name__)

Key = tuple[str, str]


def object_key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


class Mirror:
    """One watched resource; ``run()`` until cancelled."""

    def __init__(self, client: KubeClient, resource: Resource, *,
                 namespace: str | None = None, label_selector: str = "",
                 field_selector: str = "", resync_seconds: float = 300.0,
                 backoff: Backoff = Backoff(), refused_retry_seconds: float = 60.0,
                 on_event: Callable[[WatchEvent], None] | None = None,
                 on_lost: Callable[[KubeError], None] | None = None,
                 keep_objects: bool = True) -> None:
        self.resource = resource
        self.namespace = namespace
        self._client = client
        self._watch_args: dict[str, Any] = {
            "label_selector": label_selector, "field_selector": field_selector,
            "resync_seconds": resync_seconds, "backoff": backoff,
        }
        self._refused_retry = refused_retry_seconds
        self._on_event = on_event
        self._on_lost = on_lost
        self._keep = keep_objects
        self.objects: dict[Key, dict[str, Any]] = {}
        self.available = False
        self.error: KubeError | None = None
        self.synced = asyncio.Event()  # set after the first listing (or first loss)
        self._waiters: list[asyncio.Future[None]] = []

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.resource.qualified}{where}"

    async def changed(self) -> None:
        """Wait for the next event or loss handed to the consumer."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _wake(self) -> None:
        self.synced.set()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def run(self) -> None:
        while True:
            try:
                async for event in self._client.watch(self.resource, self.namespace,
                                                      **self._watch_args):
                    self._apply(event)
            except KubeError as exc:
                self._lose(exc)
                await asyncio.sleep(self._refused_retry)

    def _apply(self, event: WatchEvent) -> None:
        if not self.available and self.error is not None:
            log.info("Kubernetes watch recovered", extra={"kv": {"resource": self.describe()}})
        self.available, self.error = True, None
        if self._keep:
            if event.type == SYNC:
                self.objects = {object_key(o): o for o in event.objects}
            elif event.object is not None:
                key = object_key(event.object)
                if event.type == "DELETED":
                    self.objects.pop(key, None)
                else:
                    self.objects[key] = event.object
        if self._on_event is not None:
            self._on_event(event)
        self._wake()

    def _lose(self, exc: KubeError) -> None:
        repeated = self.error is not None and str(self.error) == str(exc)
        self.available, self.error = False, exc
        self.objects = {}
        if not repeated:
            fields = {"resource": self.describe(), "verb": exc.verb, "error": str(exc),
                      "retry_seconds": self._refused_retry}
            if isinstance(exc, NotFound):
                log.info("Kubernetes resource not served; treated as unknown",
                         extra={"kv": fields})
            elif isinstance(exc, Forbidden):
                log.error("Kubernetes API refused access (check RBAC)", extra={"kv": fields})
            else:
                log.error("Kubernetes watch failed", extra={"kv": fields})
        if self._on_lost is not None:
            self._on_lost(exc)
        self._wake()
