"""KPR trace-sock links: which Service a socket-LB connection was translated from.

With socket-LB, Hubble shows two trace-sock events per ``connect()``, both with
the client pod as source and the same socket cookie: pre-translation (towards
the Service address, with ``destination_service``) and post-translation (towards
the chosen backend). Pairing them yields a link *(node, client IP, backend IP,
backend port) -> Service*, which attributes the connection's packets (they are
addressed to the backend and carry no Service). Links live for a short TTL of
flow time and the tables are bounded; the two events may arrive in either order.
Pure module.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from exporter.model import SOCK_XLATE_POST_FWD, SOCK_XLATE_PRE_FWD, Flow, ServiceRef

#: Value of the ``table`` label for this table's self-metrics.
TABLE = "sock_link"
#: A port-less link seen for two different Services: attributes nothing.
_AMBIGUOUS = ServiceRef("", "")


class SockLinks:
    """Pairs trace-sock events and answers "which Service did this client reach here?"."""

    def __init__(self, *, ttl_seconds: float, max_entries: int, evictions: dict[tuple[str, str], int]) -> None:
        self._ttl = int(ttl_seconds * 1e9)
        self._max = max_entries
        self._evictions = evictions
        evictions.setdefault((TABLE, "capacity"), 0)
        # (node, cookie) -> (xlate point, Service or (backend ip, port), client ip, time_ns)
        self._pending: OrderedDict[tuple[str, int], tuple[Any, ...]] = OrderedDict()
        # (node, client ip, backend ip, backend port) -> (Service, time_ns)
        self._links: OrderedDict[tuple[str, str, str, int], tuple[ServiceRef, int]] = OrderedDict()
        # (node, client ip, backend ip) -> (Service, time_ns), for port-less flows (L7)
        self._by_ip: OrderedDict[tuple[str, str, str], tuple[ServiceRef, int]] = OrderedDict()
        self._next_sweep = 0

    def __len__(self) -> int:
        return len(self._links) + len(self._pending)

    def learn(self, flow: Flow) -> None:
        """Take one trace-sock event (``flow.type == SOCK``)."""
        point = flow.sock_xlate_point
        if point == SOCK_XLATE_PRE_FWD:
            half: Any = flow.destination_service
            if half is None:  # a connect() that is not towards a Service
                return
        elif point == SOCK_XLATE_POST_FWD:
            half = (flow.dst_ip, flow.dst_port)
        else:
            return
        if not flow.socket_cookie:
            return
        now = flow.time_ns
        if now >= self._next_sweep:
            self.sweep(now)
        key = (flow.node_name, flow.socket_cookie)
        other = self._pending.pop(key, None)
        if other is None or other[0] == point:
            self._put(self._pending, key, (point, half, flow.src_ip, now))
            return
        if point == SOCK_XLATE_PRE_FWD:
            service, backend = half, other[1]
        else:
            service, backend = other[1], half
        self.link(flow.node_name, flow.src_ip, backend[0], backend[1], service, now)

    def link(
        self, node: str, client_ip: str, backend_ip: str, backend_port: int,
        service: ServiceRef, time_ns: int,
    ) -> None:
        """Record that ``client_ip`` on ``node`` reached ``service`` through this backend."""
        self._put(self._links, (node, client_ip, backend_ip, backend_port), (service, time_ns))
        ip_key = (node, client_ip, backend_ip)
        known = self._by_ip.get(ip_key)
        if known is not None and known[0] != service and time_ns - known[1] <= self._ttl:
            service = _AMBIGUOUS
        self._put(self._by_ip, ip_key, (service, time_ns))

    def lookup(
        self, node: str, client_ip: str, backend_ip: str, backend_port: int, time_ns: int
    ) -> ServiceRef | None:
        """The Service linked to this client and backend, if the link is fresh."""
        if not self._links:
            return None
        if backend_port:
            hit = self._links.get((node, client_ip, backend_ip, backend_port))
        else:
            hit = self._by_ip.get((node, client_ip, backend_ip))
        if hit is None or time_ns - hit[1] > self._ttl or hit[0] is _AMBIGUOUS:
            return None
        return hit[0]

    def sweep(self, now_ns: int) -> None:
        """Drop everything older than the TTL (flow time)."""
        limit = now_ns - self._ttl
        for table in (self._pending, self._links, self._by_ip):
            while table:
                value = next(iter(table.values()))
                if value[-1] > limit:
                    break
                table.popitem(last=False)
        self._next_sweep = now_ns + max(self._ttl // 4, 1)

    def _put(self, table: OrderedDict[Any, Any], key: tuple[Any, ...], value: tuple[Any, ...]) -> None:
        if key in table:
            table.move_to_end(key)
        elif len(table) >= self._max:
            table.popitem(last=False)
            self._evictions[(TABLE, "capacity")] += 1
        table[key] = value
