"""Settings of the SLI engine (section ``sli``).

Which handlers run, how many services each metric may hold, how long quiet
services keep their series, and the bounds of the handshake and trace-sock
tables. Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.config_constraints import at_least, positive

#: Handler names in their default order (the registry in ``exporter.sli.registry``
#: is the authority; this tuple only provides the default).
DEFAULT_HANDLERS = ("flows", "drops", "tcp", "http")


@dataclass(frozen=True)
class SliSettings:
    handlers: tuple[str, ...] = field(
        default=DEFAULT_HANDLERS,
        metadata={"help": "SLI handlers to run (comma list): flows, drops, tcp, http."},
    )
    max_services_per_metric: int = field(
        default=2000,
        metadata={
            "help": "Distinct (namespace, service) pairs each SLI metric keeps; later ones are "
            'folded into service="__other__" and counted in kpr_label_overflow_total.',
            "check": at_least(1),
        },
    )
    idle_seconds: float = field(
        default=3600.0,
        metadata={"help": "A service without samples for this long loses its series (wall clock).",
                  "check": positive()},
    )
    connect_timeout_seconds: float = field(
        default=10.0,
        metadata={
            "help": "A client SYN without SYN-ACK for this long (flow time) is a timeout attempt.",
            "check": positive(),
        },
    )
    table_max_entries: int = field(
        default=250_000,
        metadata={"help": "Most half-open connections tracked; the oldest is evicted beyond it.",
                  "check": at_least(1)},
    )
    table_max_age_seconds: float = field(
        default=120.0,
        metadata={
            "help": "Half-open connections older than this by the wall clock are evicted unjudged "
            "(their node's stream stopped); must exceed the connect timeout.",
            "check": positive(),
        },
    )
    l7_reporter: str = field(
        default="client",
        metadata={
            "help": "Which L7 proxy's report of a request counts (the other is ignored, so a "
            "request is counted once).",
            "choices": ("client", "server"),
        },
    )
    kpr_link_ttl_seconds: float = field(
        default=10.0,
        metadata={
            "help": "How long a KPR trace-sock link (client pod + backend -> Service) attributes "
            "flows (flow time).",
            "check": positive(),
        },
    )
    kpr_link_max_entries: int = field(
        default=100_000,
        metadata={"help": "Most trace-sock links and unpaired trace-sock events kept.",
                  "check": at_least(1)},
    )
    directory_fallback: bool = field(
        default=True,
        metadata={
            "help": "On eBPF nodes, attribute flows without a trace-sock link through the "
            "backend -> Service directory (EndpointSlices)."
        },
    )
    error_log_interval_seconds: float = field(
        default=60.0,
        metadata={"help": "At most one log line per handler per interval about failing flows.",
                  "check": positive()},
    )

    def problems(self) -> list[str]:
        from exporter.sli.registry import HANDLERS

        found: list[str] = []
        if not self.handlers:
            found.append("sli.handlers: at least one handler is needed")
        for name in self.handlers:
            if name not in HANDLERS:
                found.append(
                    f"sli.handlers: unknown handler {name!r}; known: {', '.join(HANDLERS)}"
                )
        if len(set(self.handlers)) != len(self.handlers):
            found.append("sli.handlers: a handler is listed twice")
        if self.table_max_age_seconds <= self.connect_timeout_seconds:
            found.append(
                f"sli.table_max_age_seconds ({self.table_max_age_seconds}) must exceed "
                f"sli.connect_timeout_seconds ({self.connect_timeout_seconds})"
            )
        return found
