"""The project's own flow model: what every consumer of Hubble data sees.

Pure data: no I/O, no gRPC, no protobuf. Sources convert their wire format into
these types; handlers, the simulator and tests build them directly.

Enumerations are kept as plain ``int`` constants (Hubble's proto enums are open:
a newer agent may send a number this project does not know, and it must survive
as that number). ``enum_name`` turns a known number into its Hubble name and an
unknown one into its decimal string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from exporter import metrics_contract as _contract

# --- flow.Verdict -----------------------------------------------------------
VERDICT_UNKNOWN: Final = 0
FORWARDED: Final = 1
DROPPED: Final = 2
ERROR: Final = 3
AUDIT: Final = 4
REDIRECTED: Final = 5
TRACED: Final = 6
TRANSLATED: Final = 7
VERDICT_NAMES: Final = {
    0: "VERDICT_UNKNOWN", 1: "FORWARDED", 2: "DROPPED", 3: "ERROR",
    4: "AUDIT", 5: "REDIRECTED", 6: "TRACED", 7: "TRANSLATED",
}

# --- flow.FlowType ----------------------------------------------------------
TYPE_UNKNOWN: Final = 0
L3_L4: Final = 1
L7: Final = 2
SOCK: Final = 3

# --- monitor event types (flow.CiliumEventType.type) ------------------------
EVENT_DROP: Final = 1
EVENT_TRACE: Final = 4
EVENT_POLICY_VERDICT: Final = 5
EVENT_TRACE_SOCK: Final = 7
EVENT_L7: Final = 129

# --- flow.TrafficDirection --------------------------------------------------
DIRECTION_UNKNOWN: Final = 0
INGRESS: Final = 1
EGRESS: Final = 2

# --- flow.TraceObservationPoint (note the gap: TO_ENDPOINT is 101) ----------
UNKNOWN_POINT: Final = 0
TO_PROXY: Final = 1
TO_HOST: Final = 2
TO_STACK: Final = 3
TO_OVERLAY: Final = 4
FROM_ENDPOINT: Final = 5
FROM_PROXY: Final = 6
FROM_HOST: Final = 7
FROM_STACK: Final = 8
FROM_OVERLAY: Final = 9
FROM_NETWORK: Final = 10
TO_NETWORK: Final = 11
FROM_CRYPTO: Final = 12
TO_CRYPTO: Final = 13
TO_ENDPOINT: Final = 101

# --- flow.SocketTranslationPoint --------------------------------------------
SOCK_XLATE_UNKNOWN: Final = 0
SOCK_XLATE_PRE_FWD: Final = 1
SOCK_XLATE_POST_FWD: Final = 2
SOCK_XLATE_PRE_REV: Final = 3
SOCK_XLATE_POST_REV: Final = 4

# --- flow.L7FlowType --------------------------------------------------------
L7_UNKNOWN: Final = 0
L7_REQUEST: Final = 1
L7_RESPONSE: Final = 2
L7_SAMPLE: Final = 3

# --- flow.LostEventSource ---------------------------------------------------
LOST_SOURCE_NAMES: Final = {
    0: "UNKNOWN_LOST_EVENT_SOURCE",
    1: "PERF_EVENT_RING_BUFFER",
    2: "OBSERVER_EVENTS_QUEUE",
    3: "HUBBLE_RING_BUFFER",
}

# --- relay.NodeState --------------------------------------------------------
NODE_STATE_NAMES: Final = {
    0: "UNKNOWN_NODE_STATE",
    1: "NODE_CONNECTED",
    2: "NODE_UNAVAILABLE",
    3: "NODE_GONE",
    4: "NODE_ERROR",
}

# --- L4 protocols (our own small set; Layer4 oneof member) ------------------
PROTO_UNKNOWN: Final = 0
TCP: Final = 6
UDP: Final = 17
ICMP4: Final = 1
ICMP6: Final = 58
SCTP: Final = 132
PROTOCOL_NAMES: Final = {0: "other", 6: "TCP", 17: "UDP", 1: "ICMPv4", 58: "ICMPv6", 132: "SCTP"}

# --- TCP flags as a bitmask (stable, our own) --------------------------------
FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
URG: Final = 0x20
ECE: Final = 0x40
CWR: Final = 0x80
NS: Final = 0x100
TCP_FLAG_BITS: Final = {
    "FIN": FIN, "SYN": SYN, "RST": RST, "PSH": PSH, "ACK": ACK,
    "URG": URG, "ECE": ECE, "CWR": CWR, "NS": NS,
}

# --- flow.DropReason: the table is part of the metric contract (its enum names are the
# ``reason`` of kpr_service_drops_total); re-exported here with the rest of the vocabulary.
DROP_REASON_NAMES: Final = _contract.DROP_REASON_NAMES
#: The drop reasons that KPR changes the odds of (brief §6): compare, never ignore.
KPR_SENSITIVE_DROP_REASONS: Final = _contract.KPR_SENSITIVE_DROP_REASONS


def enum_name(names: Mapping[int, str], value: int) -> str:
    """The Hubble name of ``value``, or its decimal string when it is newer than us."""
    name = names.get(value)
    return name if name is not None else str(value)


# --- datapaths ---------------------------------------------------------------
KUBE_PROXY: Final = "kube-proxy"
EBPF: Final = "ebpf"
UNKNOWN: Final = "unknown"
DATAPATHS: Final = (KUBE_PROXY, EBPF, UNKNOWN)


class ServiceRef(NamedTuple):
    """A Kubernetes Service, as Hubble names it (``flow.Service``)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(slots=True)
class Endpoint:
    """One side of a flow (``flow.Endpoint``), reduced to what the SLIs read."""

    namespace: str = ""
    pod_name: str = ""
    identity: int = 0
    endpoint_id: int = 0  # non-zero when the endpoint is local to the observing node
    workload: str = ""  # first workload name, e.g. the Deployment
    labels: tuple[str, ...] = ()


@dataclass(slots=True)
class L7Http:
    """The L7 record of an HTTP flow."""

    type: int = L7_UNKNOWN  # L7_REQUEST / L7_RESPONSE / L7_SAMPLE
    latency_ns: int = 0  # non-zero only on matched RESPONSE flows
    code: int = 0
    method: str = ""
    protocol: str = "http"  # "http" for HTTP records, "dns"/"kafka" for the others


@dataclass(slots=True)
class Flow:
    """A single Hubble flow event.

    Addresses and ports are as on the wire: for reply flows the source is the
    responder. ``is_reply`` is ``None`` when Hubble does not know (always for drops).
    ``count`` is how many flows the message stands for (Hubble aggregation).
    """

    time_ns: int
    node_name: str
    verdict: int = VERDICT_UNKNOWN
    type: int = TYPE_UNKNOWN
    event_type: int = 0
    event_sub_type: int = 0
    src_ip: str = ""
    dst_ip: str = ""
    protocol: int = PROTO_UNKNOWN
    src_port: int = 0
    dst_port: int = 0
    tcp_flags: int = 0
    source: Endpoint | None = None
    destination: Endpoint | None = None
    source_service: ServiceRef | None = None
    destination_service: ServiceRef | None = None
    is_reply: bool | None = None
    traffic_direction: int = DIRECTION_UNKNOWN
    observation_point: int = UNKNOWN_POINT
    drop_reason: int = 0
    sock_xlate_point: int = SOCK_XLATE_UNKNOWN
    socket_cookie: int = 0
    uuid: str = ""
    l7: L7Http | None = None
    count: int = 1


@dataclass(frozen=True, slots=True)
class LostEvents:
    """Hubble could not deliver ``count`` events (``flow.LostEvent``)."""

    node_name: str
    source: int
    count: int
    time_ns: int = 0


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """Relay's view of its peers changed (``relay.NodeStatusEvent``)."""

    state: int
    node_names: tuple[str, ...] = ()
    message: str = ""
    time_ns: int = 0


Event = Flow | LostEvents | NodeStatus


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """What a flow source last knew about itself; never a zero standing in for "no data"."""

    up: bool
    address: str
    error: str = ""
    connected_nodes: tuple[str, ...] = ()
    unavailable_nodes: tuple[str, ...] = ()
    extras: dict[str, str] = field(default_factory=dict)
