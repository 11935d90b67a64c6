"""Settings of the Hubble reader (section ``hubble``), and the filter syntax.

Pure module: no I/O, no gRPC. ``HubbleSettings.problems()`` reports every
invalid value at once; ``parse_filter`` turns one filter entry into typed
``(field, value)`` terms that ``exporter.sources.hubble_call`` builds a
``flow.FlowFilter`` from.

Filter entries (``allowlist`` / ``denylist``): one entry is one FlowFilter,
written as space-separated ``field=value`` terms. Terms on different fields
must all match (AND); repeating a field lists alternatives (OR). Across
entries: OR. Example: ``verdict=DROPPED verdict=ERROR destination_pod=shop/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.config_constraints import between, non_negative, positive
from exporter.model import DROP_REASON_NAMES, VERDICT_NAMES

_STRING_FIELDS = frozenset({
    "source_ip", "source_pod", "destination_ip", "destination_pod", "source_fqdn",
    "destination_fqdn", "http_status_code", "source_label", "destination_label", "protocol",
    "source_port", "destination_port", "source_service", "destination_service", "dns_query",
    "http_method", "http_path", "node_name", "trace_id", "uuid", "http_url", "source_ip_xlated",
    "node_labels", "source_cluster_name", "destination_cluster_name",
})
_NUMBER_FIELDS = frozenset({"source_identity", "destination_identity", "ip_trace_id"})
_BOOL_FIELDS = frozenset({"reply", "encrypted"})
_ENUM_FIELDS: dict[str, dict[str, int]] = {
    "verdict": {name: number for number, name in VERDICT_NAMES.items()},
    "drop_reason_desc": {name: number for number, name in DROP_REASON_NAMES.items()},
    "traffic_direction": {"TRAFFIC_DIRECTION_UNKNOWN": 0, "INGRESS": 1, "EGRESS": 2},
    "ip_version": {"IP_NOT_USED": 0, "IPV4": 1, "IPV6": 2},
}
FILTER_FIELDS = tuple(sorted(
    _STRING_FIELDS | _NUMBER_FIELDS | _BOOL_FIELDS | set(_ENUM_FIELDS) | {"event_type"}
))

FilterValue = str | int | bool | tuple[int, int | None]


class FilterSyntaxError(ValueError):
    """A filter entry is not space-separated ``field=value`` terms of known fields."""


def parse_filter(text: str) -> list[tuple[str, FilterValue]]:
    """One filter entry as ``(flow.FlowFilter field, typed value)`` terms.

    Enum fields take the Hubble name (any case) or the number; ``event_type``
    takes ``type`` or ``type:sub_type``; ``reply``/``encrypted`` take true/false.
    """
    terms: list[tuple[str, FilterValue]] = []
    for term in text.split():
        name, sep, value = term.partition("=")
        if not sep or not name or not value:
            raise FilterSyntaxError(f"{term!r} is not field=value")
        terms.append((name, _filter_value(name, value)))
    if not terms:
        raise FilterSyntaxError("empty filter")
    return terms


def _filter_value(name: str, value: str) -> FilterValue:
    if name in _STRING_FIELDS:
        return value
    if name in _NUMBER_FIELDS:
        if not value.isdigit():
            raise FilterSyntaxError(f"{name} takes a number, got {value!r}")
        return int(value)
    if name in _BOOL_FIELDS:
        low = value.lower()
        if low not in ("true", "false"):
            raise FilterSyntaxError(f"{name} takes true or false, got {value!r}")
        return low == "true"
    if name in _ENUM_FIELDS:
        if value.isdigit():
            return int(value)
        names = {k.upper(): v for k, v in _ENUM_FIELDS[name].items()}
        if value.upper() not in names:
            raise FilterSyntaxError(f"{name}: unknown value {value!r}")
        return names[value.upper()]
    if name == "event_type":
        kind, sep, sub = value.partition(":")
        if not kind.isdigit() or (sep and not sub.isdigit()):
            raise FilterSyntaxError(f"event_type takes type or type:sub_type, got {value!r}")
        return (int(kind), int(sub) if sep else None)
    raise FilterSyntaxError(f"unsupported filter field {name!r}")


@dataclass(frozen=True)
class HubbleTLSSettings:
    ca_file: str = field(
        default="",
        metadata={
            "help": "PEM CA bundle that signed the Hubble server certificate; turns TLS on.",
            "flag": "--hubble.tls.ca-file",
        },
    )
    cert_file: str = field(
        default="",
        metadata={
            "help": "PEM client certificate for mTLS (with key-file); turns TLS on.",
            "flag": "--hubble.tls.cert-file",
        },
    )
    key_file: str = field(
        default="",
        metadata={
            "help": "PEM private key of the client certificate.",
            "flag": "--hubble.tls.key-file",
        },
    )
    server_name: str = field(
        default="",
        metadata={
            "help": "Name to verify the server certificate against (and send as SNI), e.g. "
            "instance.hubble-relay.cilium.io; empty: the host of the address.",
            "flag": "--hubble.tls.server-name",
        },
    )

    def problems(self) -> list[str]:
        found = []
        if bool(self.cert_file) != bool(self.key_file):
            found.append("hubble.tls: cert_file and key_file must be given together")
        if any(c.isspace() for c in self.server_name):
            found.append(f"hubble.tls.server_name {self.server_name!r} contains whitespace")
        return found


@dataclass(frozen=True)
class HubbleSettings:
    address: str = field(
        default="hubble-relay.kube-system.svc:80",
        metadata={
            "help": "Hubble Relay or agent: host:port, tls://host:port (TLS on) or "
            "unix:///var/run/cilium/hubble.sock.",
            "flag": "--hubble.address",
        },
    )
    tls: HubbleTLSSettings = field(default_factory=HubbleTLSSettings)
    allowlist: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "Flow filters sent as GetFlows whitelist; one entry per filter, each "
            "space-separated field=value terms (e.g. 'verdict=DROPPED destination_pod=shop/'). "
            "Empty: all flows.",
        },
    )
    denylist: tuple[str, ...] = field(
        default=(),
        metadata={"help": "Flow filters sent as GetFlows blacklist (same syntax as allowlist)."},
    )
    backoff_initial_seconds: float = field(
        default=0.5, metadata={"help": "First reconnect delay after the stream fails.",
                               "check": positive()}
    )
    backoff_max_seconds: float = field(
        default=30.0, metadata={"help": "Longest reconnect delay (the doubling stops there).",
                                "check": positive()}
    )
    backoff_jitter: float = field(
        default=0.2,
        metadata={"help": "Random fraction (0..1) taken off each delay, so replicas spread out.",
                  "check": between(0, 1)},
    )
    status_interval_seconds: float = field(
        default=15.0, metadata={"help": "Seconds between two ServerStatus polls.",
                                "check": positive()}
    )
    request_timeout_seconds: float = field(
        default=12.0, metadata={"help": "Timeout of unary calls (ServerStatus).",
                                "check": positive()}
    )
    first_message_timeout_seconds: float = field(
        default=30.0,
        metadata={
            "help": "Reconnect (with backoff) when a new GetFlows stream delivers no message "
            "within this many seconds; Relay always starts with a node status. 0 turns it off "
            "(an agent read directly through a narrow allowlist can stay silent).",
            "check": non_negative("0: off"),
        },
    )
    resume_overlap_seconds: float = field(
        default=2.0,
        metadata={
            "help": "After a reconnect, ask again for flows this far before the last one seen "
            "(Relay's ordering is approximate); duplicates are dropped by uuid.",
            "check": non_negative(),
        },
    )
    dedup_memory: int = field(
        default=65536, metadata={"help": "How many recent flow uuids are remembered for dedup.",
                                 "check": non_negative()}
    )

    @property
    def tls_enabled(self) -> bool:
        """TLS is on with a CA or client certificate, or a ``tls://`` address."""
        return bool(self.tls.ca_file or self.tls.cert_file) or self.address.startswith("tls://")

    @property
    def target(self) -> str:
        """The gRPC target: the address without a ``tls://`` prefix."""
        return self.address.removeprefix("tls://")

    def backoff(self) -> tuple[float, float, float]:
        """``(initial, max, jitter)`` of the reconnect backoff."""
        return (self.backoff_initial_seconds, self.backoff_max_seconds, self.backoff_jitter)

    def problems(self) -> list[str]:
        found = []
        target = self.target
        if target.startswith("unix:"):
            if not target.removeprefix("unix:").lstrip("/"):
                found.append(f"hubble.address {self.address!r}: unix socket path missing")
        else:
            host, sep, port = target.rpartition(":")
            if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
                found.append(
                    f"hubble.address {self.address!r} is not host:port, tls://host:port or "
                    "unix:///path"
                )
        for name in ("allowlist", "denylist"):
            for entry in getattr(self, name):
                try:
                    parse_filter(entry)
                except FilterSyntaxError as exc:
                    found.append(f"hubble.{name} {entry!r}: {exc}")
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            found.append("hubble.backoff_max_seconds must be >= backoff_initial_seconds")
        return found
