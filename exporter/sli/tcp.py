"""TCP handshake: connect latency and attempt outcomes, measured once at the client's node.

A connection starts at the first observation of the client's SYN (SYN without
ACK, not a reply, source endpoint local to the observing node) and ends with

* the SYN-ACK delivered to the client endpoint on that node (observation point
  ``TO_ENDPOINT``): ``established``, and its duration is observed;
* a RST towards the client on that node: ``refused``;
* no SYN-ACK within the connect timeout, judged on the node's flow time (a dead
  stream never produces timeouts): ``timeout``.

Pending connections are kept per node, keyed by (client IP, client port,
protocol), never by destination (translation changes it). Retransmitted SYNs
and other observation points keep the first timestamp; server-side
observations find no entry on their node and are ignored. The table is bounded
by entries (the oldest is evicted) and by wall-clock age (entries of a node
whose stream stopped), and a node's pending entries are dropped unjudged when
Hubble reports lost events there. An aggregated flow message is one observation
here (a connection is paired once, whatever ``count`` says). Examples::

    kpr_service_connect_duration_seconds_bucket{namespace="shop",service="cart",datapath="ebpf",le="0.001"} 1841
    kpr_service_connect_attempts_total{namespace="shop",service="cart",datapath="ebpf",result="established"} 1902
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from exporter.metrics_contract import SERVICE_CONNECT_ATTEMPTS, SERVICE_CONNECT_DURATION
from exporter.model import (
    ACK,
    EVENT_TRACE,
    L3_L4,
    RST,
    SYN,
    TCP,
    TO_ENDPOINT,
    UNKNOWN_POINT,
    Flow,
)
from exporter.sli.handler import SliHandler
from exporter.sli.settings import SliSettings

TABLE = "handshake"
ESTABLISHED = "established"
REFUSED = "refused"
TIMEOUT = "timeout"
RESULTS = (ESTABLISHED, REFUSED, TIMEOUT)

# Layout of a pending entry (a tuple; the destination is kept only while the Service is unknown).
_T0, _STAMP, _SVC, _DP, _DST_IP, _DST_PORT = range(6)


def _to_endpoint_by_event(flow: Flow) -> bool:
    """A trace event without an observation point whose datapath sub-type means TO_ENDPOINT (0)."""
    return (
        flow.observation_point == UNKNOWN_POINT
        and flow.event_type == EVENT_TRACE
        and flow.event_sub_type == 0
    )


class _NodeTable:
    """The pending handshakes of one node, oldest first."""

    __slots__ = ("node", "pending", "next_sweep")

    def __init__(self, node: str) -> None:
        self.node = node
        self.pending: OrderedDict[tuple[str, int, int], tuple[Any, ...]] = OrderedDict()
        self.next_sweep = 0


class TcpHandshake(SliHandler):
    name = "tcp"

    def setup(self, settings: SliSettings) -> None:
        self._duration = self.histogram(
            SERVICE_CONNECT_DURATION,
            "TCP handshake time at the client's node: first client SYN to SYN-ACK delivered.",
        )
        self._attempts = self.counter(
            SERVICE_CONNECT_ATTEMPTS,
            "TCP connection attempts by result (established, refused, timeout).",
        )
        self._timeout_s = settings.connect_timeout_seconds
        self._timeout_ns = int(settings.connect_timeout_seconds * 1e9)
        self._sweep_every_ns = min(1_000_000_000, max(self._timeout_ns // 4, 1))
        self._max_entries = settings.table_max_entries
        self._max_age = settings.table_max_age_seconds
        self._tables: dict[str, _NodeTable] = {}
        self._size = 0
        stats = self._ctx.stats
        stats.entries[TABLE] = lambda: self._size
        self._evictions = stats.evictions
        self._unattributed = stats.unattributed

    # --- per flow ---------------------------------------------------------------------

    def process(self, flow: Flow) -> None:
        if flow.protocol != TCP or flow.type != L3_L4:
            return
        flags = flow.tcp_flags
        if not flags & (SYN | RST):
            return
        table = self._tables.get(flow.node_name)
        if table is None:
            table = self._tables[flow.node_name] = _NodeTable(flow.node_name)
        now = flow.time_ns
        if now >= table.next_sweep:
            self._sweep(table, now)
        if flags & RST:
            key = (flow.dst_ip, flow.dst_port, TCP)
            entry = table.pending.pop(key, None)
            if entry is not None:
                self._size -= 1
                self._finish(table, key, entry, REFUSED, flow)
            return
        if flags & ACK:
            if flow.observation_point != TO_ENDPOINT and not _to_endpoint_by_event(flow):
                return
            key = (flow.dst_ip, flow.dst_port, TCP)
            entry = table.pending.pop(key, None)
            if entry is None:
                return
            self._size -= 1
            elapsed = now - entry[_T0]
            if elapsed > self._timeout_ns:
                self._finish(table, key, entry, TIMEOUT, flow)
            else:
                self._finish(table, key, entry, ESTABLISHED, flow, max(elapsed, 0))
            return
        # The client's SYN, on the client's node.
        if flow.is_reply:
            return
        src = flow.source
        if src is None or not src.endpoint_id:
            return
        key = (flow.src_ip, flow.src_port, TCP)
        entry = table.pending.get(key)
        ctx = self._ctx
        if entry is not None:
            if now - entry[_T0] <= self._timeout_ns:
                if entry[_SVC] is None:
                    svc = ctx.towards(flow)
                    if svc is not None:
                        table.pending[key] = (*entry[:_SVC], svc, entry[_DP], None, 0)
                return
            del table.pending[key]
            self._size -= 1
            self._finish(table, key, entry, TIMEOUT, None)
        if self._size >= self._max_entries:
            self._evict_one(table)
        svc = ctx.towards(flow)
        if svc is None:  # keep the destination for a later attribution
            entry = (now, ctx.stamp, None, ctx.datapath(flow), flow.dst_ip, flow.dst_port)
        else:
            entry = (now, ctx.stamp, svc, ctx.datapath(flow), None, 0)
        table.pending[key] = entry
        self._size += 1

    def _finish(
        self, table: _NodeTable, key: tuple[Any, ...], entry: tuple[Any, ...], result: str,
        flow: Flow | None,
        elapsed_ns: int = -1,
    ) -> None:
        datapath = entry[_DP]
        svc = entry[_SVC]
        if svc is None:
            ctx = self._ctx
            if flow is not None:
                svc = ctx.answered(flow, datapath)
            else:
                svc = ctx.reached(
                    table.node, key[0], entry[_DST_IP], entry[_DST_PORT], entry[_T0], datapath
                )
            if svc is None:
                ukey = (datapath, result)
                self._unattributed[ukey] = self._unattributed.get(ukey, 0) + 1
                return
        self._attempts.add(svc, (datapath, result))
        if elapsed_ns >= 0:
            self._duration.observe(svc, (datapath,), elapsed_ns / 1e9)

    # --- bounds ------------------------------------------------------------------------

    def _sweep(self, table: _NodeTable, now_ns: int) -> None:
        """Judge as timeouts the node's entries older than the connect timeout (flow time)."""
        limit = now_ns - self._timeout_ns
        pending = table.pending
        while pending:
            key, entry = next(iter(pending.items()))
            if entry[_T0] >= limit:
                break
            pending.popitem(last=False)
            self._size -= 1
            self._finish(table, key, entry, TIMEOUT, None)
        table.next_sweep = now_ns + self._sweep_every_ns

    def _evict_one(self, table: _NodeTable) -> None:
        victim = table
        if not table.pending:  # the node that inserts holds nothing: take from the fullest
            victim = max(self._tables.values(), key=lambda t: len(t.pending))
        victim.pending.popitem(last=False)
        self._size -= 1
        self._evictions[(TABLE, "capacity")] += 1

    def tick(self, now: float) -> None:
        """Evict, unjudged, entries older than the max age by the wall clock."""
        limit = now - self._max_age
        for table in self._tables.values():
            pending = table.pending
            while pending:
                entry = next(iter(pending.values()))
                if entry[_STAMP] >= limit:
                    break
                pending.popitem(last=False)
                self._size -= 1
                self._evictions[(TABLE, "age")] += 1

    def events_lost(self, node: str) -> None:
        """Hubble lost events on ``node`` (every node when empty): drop its pending entries.

        A lost SYN-ACK would otherwise be judged a timeout; unjudged is honest.
        """
        tables = [self._tables[node]] if node in self._tables else []
        if not node:
            tables = list(self._tables.values())
        for table in tables:
            dropped = len(table.pending)
            table.pending.clear()
            self._size -= dropped
            self._evictions[(TABLE, "lost")] += dropped

    def status(self) -> str:
        return (
            f"tcp: connect timeout {self._timeout_s:g}s, at most {self._max_entries} half-open "
            f"connections for {self._max_age:g}s"
        )
