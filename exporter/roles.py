"""Small interfaces named for the roles collaborators play.

Everything here is a ``Protocol``: implementations live next to their
transport (``sources``, ``kube``, ``simulator``) or are pure (static
resolvers); consumers depend only on these shapes. Pure module.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

from exporter.model import Event, ServiceRef, SourceStatus

#: Wall-clock seconds since the epoch. Injected wherever time matters, so
#: tests can drive it instead of sleeping.
Clock = Callable[[], float]

system_clock: Clock = time.time


@runtime_checkable
class FlowSource(Protocol):
    """Yields Hubble events: flows, lost events and node status changes."""

    def events(self) -> AsyncIterator[Event]: ...

    def status(self) -> SourceStatus: ...


@runtime_checkable
class DatapathResolver(Protocol):
    """Which datapath translated Services on a node: ``kube-proxy``, ``ebpf`` or ``unknown``."""

    def datapath(self, node: str) -> str: ...


@runtime_checkable
class ServiceDirectory(Protocol):
    """Maps addresses to the Service they belong to (from EndpointSlices and Services).

    Used only as the fallback attribution for KPR connections; ``None`` means
    "not known", never a guess.
    """

    def service_for_backend(self, ip: str, port: int) -> ServiceRef | None: ...

    def service_for_frontend(self, ip: str, port: int) -> ServiceRef | None: ...
