"""The handler interface and the SLI engine's own errors.

A handler is one SLI: constructed with the settings, the registry and the
shared ``FlowContext``; ``process(flow)`` is synchronous, pure accounting into
plain dicts (no I/O, no prometheus_client call per flow); ``status()`` is one
line for the startup log and ``check-config``. Handlers that keep state in time
(the handshake table) also implement ``Ticking``; those that care about lost
Hubble events implement ``LossAware``.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry

from exporter.model import Flow
from exporter.sli.context import FlowContext
from exporter.sli.settings import SliSettings


class SliError(Exception):
    """Base of the SLI engine's errors."""


class SliConfigError(SliError):
    """The SLI settings are invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class UnknownHandlerError(SliConfigError):
    """A handler name that is not in the registry (the message lists the known ones)."""


@runtime_checkable
class Handler(Protocol):
    name: ClassVar[str]

    def __init__(
        self, settings: SliSettings, registry: CollectorRegistry, context: FlowContext
    ) -> None: ...

    def process(self, flow: Flow) -> None: ...

    def status(self) -> str: ...


@runtime_checkable
class Ticking(Protocol):
    """A handler with time-bounded state: ``tick(now)`` runs with wall-clock seconds."""

    def tick(self, now: float) -> None: ...


@runtime_checkable
class LossAware(Protocol):
    """A handler whose state becomes unreliable when Hubble loses events on a node."""

    def events_lost(self, node: str) -> None: ...
