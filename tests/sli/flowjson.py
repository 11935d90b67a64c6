"""Hubble JSON (``hubble observe -o json``) -> ``exporter.model.Flow``, for SLI tests.

A small, test-only mapping of the JSON keys onto the model's fields, so the SLI
tests read realistic flows without depending on the gRPC source package.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from exporter import model

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "hubble" / "example-flows.jsonl"

_VERDICTS = {name: number for number, name in model.VERDICT_NAMES.items()}
_TYPES = {"L3_L4": model.L3_L4, "L7": model.L7, "SOCK": model.SOCK}
_DIRECTIONS = {"INGRESS": model.INGRESS, "EGRESS": model.EGRESS}
_POINTS = {
    "TO_PROXY": model.TO_PROXY, "TO_HOST": model.TO_HOST, "TO_STACK": model.TO_STACK,
    "TO_OVERLAY": model.TO_OVERLAY, "FROM_ENDPOINT": model.FROM_ENDPOINT,
    "TO_ENDPOINT": model.TO_ENDPOINT, "FROM_NETWORK": model.FROM_NETWORK,
    "TO_NETWORK": model.TO_NETWORK,
}
_XLATE = {
    "SOCK_XLATE_POINT_PRE_DIRECTION_FWD": model.SOCK_XLATE_PRE_FWD,
    "SOCK_XLATE_POINT_POST_DIRECTION_FWD": model.SOCK_XLATE_POST_FWD,
    "SOCK_XLATE_POINT_PRE_DIRECTION_REV": model.SOCK_XLATE_PRE_REV,
    "SOCK_XLATE_POINT_POST_DIRECTION_REV": model.SOCK_XLATE_POST_REV,
}
_DROP_REASONS = {name: number for number, name in model.DROP_REASON_NAMES.items()}
_L7_TYPES = {"REQUEST": model.L7_REQUEST, "RESPONSE": model.L7_RESPONSE, "SAMPLE": model.L7_SAMPLE}


def time_ns(text: str) -> int:
    whole, _, frac = text.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp()
    return int(seconds) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def _endpoint(data: dict | None) -> model.Endpoint | None:
    if data is None:
        return None
    workloads = data.get("workloads") or [{}]
    return model.Endpoint(
        namespace=data.get("namespace", ""),
        pod_name=data.get("pod_name", ""),
        identity=data.get("identity", 0),
        endpoint_id=data.get("ID", 0),
        workload=workloads[0].get("name", ""),
        labels=tuple(data.get("labels", ())),
    )


def _service(data: dict | None) -> model.ServiceRef | None:
    return None if data is None else model.ServiceRef(data["namespace"], data["name"])


def flow_from_json(data: dict) -> model.Flow:
    l4 = data.get("l4", {})
    protocol, ports = model.PROTO_UNKNOWN, {}
    for key, number in (("TCP", model.TCP), ("UDP", model.UDP), ("SCTP", model.SCTP)):
        if key in l4:
            protocol, ports = number, l4[key]
    flags = 0
    for name, on in ports.get("flags", {}).items():
        if on:
            flags |= model.TCP_FLAG_BITS[name]
    l7 = None
    if "l7" in data:
        record = data["l7"]
        http = record.get("http", {})
        l7 = model.L7Http(
            type=_L7_TYPES.get(record.get("type", ""), model.L7_UNKNOWN),
            latency_ns=int(record.get("latency_ns", 0)),
            code=http.get("code", 0),
            method=http.get("method", ""),
            protocol="http" if "http" in record else "dns",
        )
    drop = data.get("drop_reason_desc")
    return model.Flow(
        time_ns=time_ns(data["time"]),
        node_name=data.get("node_name", ""),
        verdict=_VERDICTS.get(data.get("verdict", ""), 0),
        type=_TYPES.get(data.get("Type", ""), 0),
        event_type=data.get("event_type", {}).get("type", 0),
        event_sub_type=data.get("event_type", {}).get("sub_type", 0),
        src_ip=data.get("IP", {}).get("source", ""),
        dst_ip=data.get("IP", {}).get("destination", ""),
        protocol=protocol,
        src_port=ports.get("source_port", 0),
        dst_port=ports.get("destination_port", 0),
        tcp_flags=flags,
        source=_endpoint(data.get("source")),
        destination=_endpoint(data.get("destination")),
        source_service=_service(data.get("source_service")),
        destination_service=_service(data.get("destination_service")),
        is_reply=data.get("is_reply"),
        traffic_direction=_DIRECTIONS.get(data.get("traffic_direction", ""), 0),
        observation_point=_POINTS.get(data.get("trace_observation_point", ""), 0),
        drop_reason=_DROP_REASONS[drop] if drop else data.get("drop_reason", 0),
        sock_xlate_point=_XLATE.get(data.get("sock_xlate_point", ""), 0),
        socket_cookie=int(data.get("socket_cookie", 0)),
        uuid=data.get("uuid", ""),
        l7=l7,
        count=1,
    )


def load_examples() -> dict[str, model.Flow]:
    """The reference example flows by the last two digits of their uuid ("01".."13")."""
    out = {}
    for line in EXAMPLES.read_text().splitlines():
        if line.strip():
            flow = flow_from_json(json.loads(line)["flow"])
            out[flow.uuid[-2:]] = flow
    return out
