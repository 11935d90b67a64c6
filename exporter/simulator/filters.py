"""Hubble ``FlowFilter`` lists -> a predicate over ``model.Flow``, applied as the Observer does.

Inside one filter every set field must match (AND); inside one field any listed
value may match (OR); filters of one list are OR-ed; the result is whitelist
minus blacklist, and an empty whitelist lets everything through. Lost events and
node status never reach these predicates (they bypass filters).

Supported fields: source/destination ``ip`` (address or CIDR), ``pod``
(``namespace/pod-prefix``; without ``/``, a pod prefix in any namespace),
``service`` (same form), ``identity``; ``verdict``, ``event_type``, ``protocol``
(tcp, udp, icmp, http, ...), ``reply``, ``node_name`` (glob), ``traffic_direction``,
``drop_reason_desc``, ``http_status_code`` (``200`` or ``5+``), ``uuid``. A filter
using any other field is refused with ``UnsupportedFilter``, never ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

from exporter.model import ICMP4, ICMP6, SCTP, TCP, UDP, Endpoint, Flow, ServiceRef

Predicate = Callable[[Flow], bool]

SUPPORTED_FIELDS = frozenset({
    "source_ip", "destination_ip", "source_pod", "destination_pod", "source_service",
    "destination_service", "source_identity", "destination_identity", "verdict", "event_type",
    "protocol", "reply", "node_name", "traffic_direction", "drop_reason_desc",
    "http_status_code", "uuid",
})

_L4_PROTOCOLS = {"tcp": TCP, "udp": UDP, "sctp": SCTP, "icmpv4": ICMP4, "icmpv6": ICMP6}


class UnsupportedFilter(ValueError):
    """A filter uses a field the simulator does not implement, or a malformed value."""


def _ip_matcher(values: Sequence[str]) -> Callable[[str], bool]:
    exact: set[str] = set()
    nets = []
    for v in values:
        try:
            if "/" in v:
                nets.append(ipaddress.ip_network(v, strict=False))
            else:
                exact.add(str(ipaddress.ip_address(v)))
        except ValueError as exc:
            raise UnsupportedFilter(f"invalid IP filter {v!r}") from exc

    def match(ip: str) -> bool:
        if ip in exact:
            return True
        if nets and ip:
            addr = ipaddress.ip_address(ip)
            return any(addr in net for net in nets)
        return False
    return match


def _names(values: Sequence[str]) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for v in values:
        ns, sep, name = v.partition("/")
        out.append((ns, name) if sep else (None, v))
    return out


def _pod_matcher(values: Sequence[str]) -> Callable[[Endpoint | None], bool]:
    names = _names(values)

    def match(ep: Endpoint | None) -> bool:
        if ep is None:
            return False
        return any((ns is None or ep.namespace == ns) and ep.pod_name.startswith(prefix)
                   for ns, prefix in names)
    return match


def _service_matcher(values: Sequence[str]) -> Callable[[ServiceRef | None], bool]:
    names = _names(values)

    def match(svc: ServiceRef | None) -> bool:
        if svc is None:
            return False
        return any((ns is None or svc.namespace == ns) and svc.name.startswith(prefix)
                   for ns, prefix in names)
    return match


def _protocol(flow: Flow, name: str) -> bool:
    if name in _L4_PROTOCOLS:
        return flow.protocol == _L4_PROTOCOLS[name]
    if name == "icmp":
        return flow.protocol in (ICMP4, ICMP6)
    return flow.l7 is not None and flow.l7.protocol == name


def _status(code: int, spec: str) -> bool:
    if spec.endswith("+"):
        return code > 0 and str(code).startswith(spec[:-1])
    return spec.isdigit() and code == int(spec)


def compile_filter(f: Any) -> Predicate:
    """One ``flow.FlowFilter`` message as a predicate."""
    unsupported = sorted(field.name for field, _ in f.ListFields()
                         if field.name not in SUPPORTED_FIELDS)
    if unsupported:
        raise UnsupportedFilter(f"unsupported filter field(s): {', '.join(unsupported)}")
    checks: list[Predicate] = []
    if f.source_ip:
        src_ip = _ip_matcher(list(f.source_ip))
        checks.append(lambda fl: src_ip(fl.src_ip))
    if f.destination_ip:
        dst_ip = _ip_matcher(list(f.destination_ip))
        checks.append(lambda fl: dst_ip(fl.dst_ip))
    if f.source_pod:
        src_pod = _pod_matcher(list(f.source_pod))
        checks.append(lambda fl: src_pod(fl.source))
    if f.destination_pod:
        dst_pod = _pod_matcher(list(f.destination_pod))
        checks.append(lambda fl: dst_pod(fl.destination))
    if f.source_service:
        src_svc = _service_matcher(list(f.source_service))
        checks.append(lambda fl: src_svc(fl.source_service))
    if f.destination_service:
        dst_svc = _service_matcher(list(f.destination_service))
        checks.append(lambda fl: dst_svc(fl.destination_service))
    if f.source_identity:
        src_ids = frozenset(f.source_identity)
        checks.append(lambda fl: fl.source is not None and fl.source.identity in src_ids)
    if f.destination_identity:
        dst_ids = frozenset(f.destination_identity)
        checks.append(lambda fl: fl.destination is not None and fl.destination.identity in dst_ids)
    if f.verdict:
        verdicts = frozenset(f.verdict)
        checks.append(lambda fl: fl.verdict in verdicts)
    if f.event_type:
        types = [(e.type, e.match_sub_type, e.sub_type) for e in f.event_type]
        checks.append(lambda fl: any(fl.event_type == t and (not m or fl.event_sub_type == s)
                                     for t, m, s in types))
    if f.protocol:
        protocols = [p.lower() for p in f.protocol]
        checks.append(lambda fl: any(_protocol(fl, p) for p in protocols))
    if f.reply:
        replies = frozenset(f.reply)
        checks.append(lambda fl: bool(fl.is_reply) in replies)
    if f.node_name:
        patterns = list(f.node_name)
        checks.append(lambda fl: any(fnmatchcase(fl.node_name, p) for p in patterns))
    if f.traffic_direction:
        directions = frozenset(f.traffic_direction)
        checks.append(lambda fl: fl.traffic_direction in directions)
    if f.drop_reason_desc:
        reasons = frozenset(f.drop_reason_desc)
        checks.append(lambda fl: fl.drop_reason in reasons)
    if f.http_status_code:
        specs = list(f.http_status_code)
        checks.append(lambda fl: fl.l7 is not None and any(_status(fl.l7.code, s) for s in specs))
    if f.uuid:
        uuids = frozenset(f.uuid)
        checks.append(lambda fl: fl.uuid in uuids)
    return lambda fl: all(check(fl) for check in checks)


def compile_filters(whitelist: Iterable[Any], blacklist: Iterable[Any]) -> Predicate | None:
    """The combined predicate, or ``None`` when nothing is filtered."""
    allow = [compile_filter(f) for f in whitelist]
    deny = [compile_filter(f) for f in blacklist]
    if not allow and not deny:
        return None

    def predicate(flow: Flow) -> bool:
        if allow and not any(p(flow) for p in allow):
            return False
        return not any(p(flow) for p in deny)
    return predicate
