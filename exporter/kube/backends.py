"""Address -> Service maps from EndpointSlices and Services (``ServiceDirectory``).

The fallback attribution for KPR connections: a SYN that socket-LB already sent to a
backend carries no ``destination_service``, so ``service_for_backend(ip, port)`` names
the Service owning that backend; ``service_for_frontend`` maps ClusterIPs, external IPs
and load-balancer IPs with their Service ports. Answers are never guesses: an address
claimed by two Services answers ``None``, and headless Services (which no datapath
load-balances) own no backends. Both maps together hold at most ``max_entries``
address:port keys; what does not fit is counted, not stored.

Example output::

    kpr_backend_map_entries{map="backend"} 1840
    kpr_backend_map_entries{map="frontend"} 212
    kpr_backend_map_overflow_total 0
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.kube.client import DELETED, SYNC, Backoff, KubeClient, WatchEvent
from exporter.kube.errors import KubeError
from exporter.kube.mirror import Mirror, object_key
from exporter.kube.resources import ENDPOINTSLICES, SERVICES
from exporter.kube.settings import KubeSettings
from exporter.model import ServiceRef

Addr = tuple[str, int]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class _Index:
    """address:port -> owning Services (with counts), and the resolved answer."""

    def __init__(self) -> None:
        self.owners: dict[Addr, dict[ServiceRef, int]] = {}
        self.answers: dict[Addr, ServiceRef | None] = {}

    def add(self, addr: Addr, ref: ServiceRef) -> None:
        owners = self.owners.setdefault(addr, {})
        owners[ref] = owners.get(ref, 0) + 1

    def remove(self, addr: Addr, ref: ServiceRef) -> None:
        owners = self.owners.get(addr)
        if owners is None or ref not in owners:
            return
        owners[ref] -= 1
        if owners[ref] <= 0:
            del owners[ref]
        if not owners:
            del self.owners[addr]
            self.answers.pop(addr, None)

    def resolve(self, addr: Addr, excluded: set[ServiceRef]) -> None:
        owners = [ref for ref in self.owners.get(addr, ()) if ref not in excluded]
        if addr in self.owners:
            self.answers[addr] = owners[0] if len(owners) == 1 else None

    def clear(self) -> None:
        self.owners.clear()
        self.answers.clear()


class BackendMap:
    """Implements ``exporter.roles.ServiceDirectory``; a Prometheus collector."""

    def __init__(self, *, max_entries: int = 200_000) -> None:
        self._max = max_entries
        self._backends = _Index()
        self._frontends = _Index()
        self._slice_entries: dict[tuple[str, str], tuple[ServiceRef, frozenset[Addr]]] = {}
        self._slices_of: dict[ServiceRef, set[tuple[str, str]]] = {}
        self._service_entries: dict[ServiceRef, frozenset[Addr]] = {}
        self._headless: set[ServiceRef] = set()
        self._overflow = 0

    # --- lookups (hot path) -----------------------------------------------------------

    def service_for_backend(self, ip: str, port: int) -> ServiceRef | None:
        return self._backends.answers.get((ip, port))

    def service_for_frontend(self, ip: str, port: int) -> ServiceRef | None:
        return self._frontends.answers.get((ip, port))

    @property
    def entries(self) -> int:
        return len(self._backends.owners) + len(self._frontends.owners)

    # --- EndpointSlices ----------------------------------------------------------------

    def slice_event(self, event: WatchEvent) -> None:
        if event.type == SYNC:
            self.replace_slices(event.objects)
        elif event.object is not None:
            self.apply_slice(event.object, deleted=event.type == DELETED)

    def replace_slices(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self._backends.clear()
        self._slice_entries.clear()
        self._slices_of.clear()
        for obj in objects:
            self.apply_slice(obj)

    def apply_slice(self, obj: Mapping[str, Any], *, deleted: bool = False) -> None:
        key = object_key(dict(obj))
        touched: set[Addr] = set()
        previous = self._slice_entries.pop(key, None)
        if previous is not None:
            old_ref, touched = previous[0], set(previous[1])
            for addr in touched:
                self._backends.remove(addr, old_ref)
            self._slices_of.get(old_ref, set()).discard(key)
        ref = _slice_service(obj)
        if not deleted and ref is not None:
            stored = frozenset(self._store(self._backends, ref, _slice_addresses(obj)))
            self._slice_entries[key] = (ref, stored)
            self._slices_of.setdefault(ref, set()).add(key)
            touched |= stored
        for addr in touched:
            self._backends.resolve(addr, self._headless)

    def clear_slices(self) -> None:
        self.replace_slices(())

    # --- Services ------------------------------------------------------------------------

    def service_event(self, event: WatchEvent) -> None:
        if event.type == SYNC:
            self.replace_services(event.objects)
        elif event.object is not None:
            self.apply_service(event.object, deleted=event.type == DELETED)

    def replace_services(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self._frontends.clear()
        self._service_entries.clear()
        was_headless = set(self._headless)
        self._headless.clear()
        for obj in objects:
            self.apply_service(obj)
        for ref in was_headless ^ self._headless:
            self._reresolve_backends(ref)

    def apply_service(self, obj: Mapping[str, Any], *, deleted: bool = False) -> None:
        meta = obj.get("metadata") or {}
        ref = ServiceRef(str(meta.get("namespace", "")), str(meta.get("name", "")))
        previous = self._service_entries.pop(ref, frozenset())
        for addr in previous:
            self._frontends.remove(addr, ref)
        spec = obj.get("spec") or {}
        headless = not deleted and spec.get("clusterIP") == "None"
        if headless != (ref in self._headless):
            (self._headless.add if headless else self._headless.discard)(ref)
            self._reresolve_backends(ref)
        if deleted:
            return
        stored = frozenset(self._store(self._frontends, ref, _frontend_addresses(obj)))
        self._service_entries[ref] = stored
        for addr in stored | previous:
            self._frontends.resolve(addr, set())

    def clear_services(self) -> None:
        self.replace_services(())

    # --- collector -------------------------------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        entries, overflow = self._families()
        entries.add_metric(["backend"], len(self._backends.owners))
        entries.add_metric(["frontend"], len(self._frontends.owners))
        overflow.add_metric([], self._overflow)
        yield from (entries, overflow)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, CounterMetricFamily]:
        return (
            GaugeMetricFamily("kpr_backend_map_entries",
                              "address:port keys held by the Service address maps.",
                              labels=["map"]),
            CounterMetricFamily("kpr_backend_map_overflow",
                                "address:port keys not stored because the maps were full."),
        )

    # --- internals -----------------------------------------------------------------------

    def _store(self, index: _Index, ref: ServiceRef, addrs: Iterable[Addr]) -> Iterator[Addr]:
        for addr in set(addrs):
            if addr not in index.owners and self.entries >= self._max:
                self._overflow += 1
                continue
            index.add(addr, ref)
            yield addr

    def _reresolve_backends(self, ref: ServiceRef) -> None:
        for key in self._slices_of.get(ref, ()):
            for addr in self._slice_entries[key][1]:
                self._backends.resolve(addr, self._headless)


class BackendWatcher:
    """Watches Services and EndpointSlices in every namespace into a ``BackendMap``."""

    def __init__(self, client: KubeClient, settings: KubeSettings, backends: BackendMap) -> None:
        common: dict[str, Any] = {
            "resync_seconds": settings.resync_seconds,
            "backoff": Backoff(settings.retry_min_seconds, settings.retry_max_seconds),
            "refused_retry_seconds": settings.retry_max_seconds,
            "keep_objects": False,
        }
        self.slices = Mirror(client, ENDPOINTSLICES, on_event=backends.slice_event,
                             on_lost=_lost(backends.clear_slices), **common)
        self.services = Mirror(client, SERVICES, on_event=backends.service_event,
                               on_lost=_lost(backends.clear_services), **common)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.services.run(), name="watch services")
            group.create_task(self.slices.run(), name="watch endpointslices")

    async def wait_synced(self) -> None:
        await asyncio.gather(self.slices.synced.wait(), self.services.synced.wait())


def _lost(clear: Any) -> Any:
    def on_lost(error: KubeError) -> None:
        clear()
    return on_lost


def _slice_service(obj: Mapping[str, Any]) -> ServiceRef | None:
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return ServiceRef(str(meta.get("namespace", "")), str(name)) if name else None


def _slice_addresses(obj: Mapping[str, Any]) -> Iterator[Addr]:
    ports = [p["port"] for p in obj.get("ports") or () if isinstance(p.get("port"), int)]
    for endpoint in obj.get("endpoints") or ():
        for ip in endpoint.get("addresses") or ():
            for port in ports:
                yield (str(ip), port)


def _frontend_addresses(obj: Mapping[str, Any]) -> Iterator[Addr]:
    spec = obj.get("spec") or {}
    ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")])
           if ip and ip != "None"]
    ips += list(spec.get("externalIPs") or ())
    for ingress in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ():
        if ingress.get("ip"):
            ips.append(ingress["ip"])
    ports = [p["port"] for p in spec.get("ports") or () if isinstance(p.get("port"), int)]
    for ip in ips:
        for port in ports:
            yield (str(ip), port)
