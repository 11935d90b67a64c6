"""The project's own flow model: what every consumer of Hubble data sees.

Pure data: no I/O, no gRPC, no protobuf. Sources convert their wire format into
these types; handlers, the simulator and tests build them directly.

Enumerations are kept as plain ``int`` constants (Hubble's proto enums are open:
a newer agent may send a number this project does not know, and it must survive
as that number). ``enum_name`` turns a known number into its Hubble name and an
unknown one into its decimal string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

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

# --- flow.DropReason (names as Hubble prints them) ---------------------------
DROP_REASON_NAMES: Final = {
    0: "DROP_REASON_UNKNOWN", 130: "INVALID_SOURCE_MAC", 131: "INVALID_DESTINATION_MAC",
    132: "INVALID_SOURCE_IP", 133: "POLICY_DENIED", 134: "INVALID_PACKET_DROPPED",
    135: "CT_TRUNCATED_OR_INVALID_HEADER", 136: "CT_MISSING_TCP_ACK_FLAG",
    137: "CT_UNKNOWN_L4_PROTOCOL", 138: "CT_CANNOT_CREATE_ENTRY_FROM_PACKET",
    139: "UNSUPPORTED_L3_PROTOCOL", 140: "MISSED_TAIL_CALL", 141: "ERROR_WRITING_TO_PACKET",
    142: "UNKNOWN_L4_PROTOCOL", 143: "UNKNOWN_ICMPV4_CODE", 144: "UNKNOWN_ICMPV4_TYPE",
    145: "UNKNOWN_ICMPV6_CODE", 146: "UNKNOWN_ICMPV6_TYPE", 147: "ERROR_RETRIEVING_TUNNEL_KEY",
    148: "ERROR_RETRIEVING_TUNNEL_OPTIONS", 149: "INVALID_GENEVE_OPTION",
    150: "UNKNOWN_L3_TARGET_ADDRESS", 151: "STALE_OR_UNROUTABLE_IP",
    152: "NO_MATCHING_LOCAL_CONTAINER_FOUND", 153: "ERROR_WHILE_CORRECTING_L3_CHECKSUM",
    154: "ERROR_WHILE_CORRECTING_L4_CHECKSUM", 155: "CT_MAP_INSERTION_FAILED",
    156: "INVALID_IPV6_EXTENSION_HEADER", 157: "IP_FRAGMENTATION_NOT_SUPPORTED",
    158: "SERVICE_BACKEND_NOT_FOUND", 160: "NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT",
    161: "FAILED_TO_INSERT_INTO_PROXYMAP", 162: "REACHED_EDT_RATE_LIMITING_DROP_HORIZON",
    163: "UNKNOWN_CONNECTION_TRACKING_STATE", 164: "LOCAL_HOST_IS_UNREACHABLE",
    165: "NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION", 166: "UNSUPPORTED_L2_PROTOCOL",
    167: "NO_MAPPING_FOR_NAT_MASQUERADE", 168: "UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE",
    169: "FIB_LOOKUP_FAILED", 170: "ENCAPSULATION_TRAFFIC_IS_PROHIBITED", 171: "INVALID_IDENTITY",
    172: "UNKNOWN_SENDER", 173: "NAT_NOT_NEEDED", 174: "IS_A_CLUSTERIP",
    175: "FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND", 176: "FORBIDDEN_ICMPV6_MESSAGE",
    177: "DENIED_BY_LB_SRC_RANGE_CHECK", 178: "SOCKET_LOOKUP_FAILED", 179: "SOCKET_ASSIGN_FAILED",
    180: "PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL", 181: "POLICY_DENY", 182: "VLAN_FILTERED",
    183: "INVALID_VNI", 184: "INVALID_TC_BUFFER", 185: "NO_SID", 186: "MISSING_SRV6_STATE",
    187: "NAT46", 188: "NAT64", 189: "AUTH_REQUIRED", 190: "CT_NO_MAP_FOUND",
    191: "SNAT_NO_MAP_FOUND", 192: "INVALID_CLUSTER_ID", 193: "UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP",
    194: "NO_EGRESS_GATEWAY", 195: "UNENCRYPTED_TRAFFIC", 196: "TTL_EXCEEDED", 197: "NO_NODE_ID",
    198: "DROP_RATE_LIMITED", 199: "IGMP_HANDLED", 200: "IGMP_SUBSCRIBED", 201: "MULTICAST_HANDLED",
    202: "DROP_HOST_NOT_READY", 203: "DROP_EP_NOT_READY", 204: "DROP_NO_EGRESS_IP",
    205: "DROP_PUNT_PROXY", 207: "DROP_FRAG_NOT_FOUND_WORLD",
}

#: The drop reasons that KPR changes the odds of (brief §6): compare, never ignore.
KPR_SENSITIVE_DROP_REASONS: Final = frozenset({
    "SERVICE_BACKEND_NOT_FOUND",
    "STALE_OR_UNROUTABLE_IP",
    "CT_MAP_INSERTION_FAILED",
    "NO_MAPPING_FOR_NAT_MASQUERADE",
    "FIB_LOOKUP_FAILED",
})


def enum_name(names: dict[int, str], value: int) -> str:
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
