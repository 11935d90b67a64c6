import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Response(_message.Message):
    __slots__ = ("flow", "node_status", "lost_events", "node_name", "time")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    NODE_STATUS_FIELD_NUMBER: _ClassVar[int]
    LOST_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    flow: Flow
    node_status: bytes
    lost_events: bytes
    node_name: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, flow: _Optional[_Union[Flow, _Mapping]] = ..., node_status: _Optional[bytes] = ..., lost_events: _Optional[bytes] = ..., node_name: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Flow(_message.Message):
    __slots__ = ("time", "verdict", "drop_reason", "IP", "l4", "source", "destination", "Type", "node_name", "l7", "event_type", "source_service", "destination_service", "traffic_direction", "trace_observation_point", "drop_reason_desc", "is_reply", "sock_xlate_point", "socket_cookie", "uuid", "aggregate")
    TIME_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    DROP_REASON_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    L4_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    L7_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_SERVICE_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_DIRECTION_FIELD_NUMBER: _ClassVar[int]
    TRACE_OBSERVATION_POINT_FIELD_NUMBER: _ClassVar[int]
    DROP_REASON_DESC_FIELD_NUMBER: _ClassVar[int]
    IS_REPLY_FIELD_NUMBER: _ClassVar[int]
    SOCK_XLATE_POINT_FIELD_NUMBER: _ClassVar[int]
    SOCKET_COOKIE_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    verdict: int
    drop_reason: int
    IP: bytes
    l4: Layer4
    source: bytes
    destination: bytes
    Type: int
    node_name: str
    l7: Layer7
    event_type: bytes
    source_service: bytes
    destination_service: bytes
    traffic_direction: int
    trace_observation_point: int
    drop_reason_desc: int
    is_reply: bytes
    sock_xlate_point: int
    socket_cookie: int
    uuid: str
    aggregate: bytes
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., verdict: _Optional[int] = ..., drop_reason: _Optional[int] = ..., IP: _Optional[bytes] = ..., l4: _Optional[_Union[Layer4, _Mapping]] = ..., source: _Optional[bytes] = ..., destination: _Optional[bytes] = ..., Type: _Optional[int] = ..., node_name: _Optional[str] = ..., l7: _Optional[_Union[Layer7, _Mapping]] = ..., event_type: _Optional[bytes] = ..., source_service: _Optional[bytes] = ..., destination_service: _Optional[bytes] = ..., traffic_direction: _Optional[int] = ..., trace_observation_point: _Optional[int] = ..., drop_reason_desc: _Optional[int] = ..., is_reply: _Optional[bytes] = ..., sock_xlate_point: _Optional[int] = ..., socket_cookie: _Optional[int] = ..., uuid: _Optional[str] = ..., aggregate: _Optional[bytes] = ...) -> None: ...

class Layer4(_message.Message):
    __slots__ = ("TCP", "UDP", "ICMPv4", "ICMPv6", "SCTP", "VRRP", "IGMP")
    TCP_FIELD_NUMBER: _ClassVar[int]
    UDP_FIELD_NUMBER: _ClassVar[int]
    ICMPV4_FIELD_NUMBER: _ClassVar[int]
    ICMPV6_FIELD_NUMBER: _ClassVar[int]
    SCTP_FIELD_NUMBER: _ClassVar[int]
    VRRP_FIELD_NUMBER: _ClassVar[int]
    IGMP_FIELD_NUMBER: _ClassVar[int]
    TCP: TCP
    UDP: Ports
    ICMPv4: bytes
    ICMPv6: bytes
    SCTP: Ports
    VRRP: bytes
    IGMP: bytes
    def __init__(self, TCP: _Optional[_Union[TCP, _Mapping]] = ..., UDP: _Optional[_Union[Ports, _Mapping]] = ..., ICMPv4: _Optional[bytes] = ..., ICMPv6: _Optional[bytes] = ..., SCTP: _Optional[_Union[Ports, _Mapping]] = ..., VRRP: _Optional[bytes] = ..., IGMP: _Optional[bytes] = ...) -> None: ...

class TCP(_message.Message):
    __slots__ = ("source_port", "destination_port", "flags")
    SOURCE_PORT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_PORT_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    source_port: int
    destination_port: int
    flags: bytes
    def __init__(self, source_port: _Optional[int] = ..., destination_port: _Optional[int] = ..., flags: _Optional[bytes] = ...) -> None: ...

class Ports(_message.Message):
    __slots__ = ("source_port", "destination_port")
    SOURCE_PORT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_PORT_FIELD_NUMBER: _ClassVar[int]
    source_port: int
    destination_port: int
    def __init__(self, source_port: _Optional[int] = ..., destination_port: _Optional[int] = ...) -> None: ...

class Layer7(_message.Message):
    __slots__ = ("type", "latency_ns", "dns", "http", "kafka")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_NS_FIELD_NUMBER: _ClassVar[int]
    DNS_FIELD_NUMBER: _ClassVar[int]
    HTTP_FIELD_NUMBER: _ClassVar[int]
    KAFKA_FIELD_NUMBER: _ClassVar[int]
    type: int
    latency_ns: int
    dns: bytes
    http: HTTP
    kafka: bytes
    def __init__(self, type: _Optional[int] = ..., latency_ns: _Optional[int] = ..., dns: _Optional[bytes] = ..., http: _Optional[_Union[HTTP, _Mapping]] = ..., kafka: _Optional[bytes] = ...) -> None: ...

class HTTP(_message.Message):
    __slots__ = ("code", "method")
    CODE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    code: int
    method: str
    def __init__(self, code: _Optional[int] = ..., method: _Optional[str] = ...) -> None: ...
