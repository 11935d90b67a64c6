"""Point-in-time copies of the flow-derived SLI state, for the judge and the baseline.

The SLI pipeline keeps cumulative counts (like Prometheus counters). A snapshot
copies them out at one instant; the difference of two snapshots is the traffic
of the window between them. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


class SliKey(NamedTuple):
    """Identifies one service on one datapath."""

    namespace: str
    service: str
    datapath: str


class NodeEvents(NamedTuple):
    """Cumulative Hubble events of one node: flows processed, events the stream reported
    lost, and the agent's own ``hubble_lost_events_total`` (-1 when never read)."""

    flows: int = 0
    lost: int = 0
    agent_lost: int = -1

    def since(self, earlier: NodeEvents | None) -> NodeEvents:
        """The events after ``earlier``, like ``increase()``: a counter that went down counts
        from zero, and the agent's count only when both readings have it (0 otherwise)."""
        before = earlier or NodeEvents()
        agent = (_sub(self.agent_lost, before.agent_lost)
                 if self.agent_lost >= 0 and before.agent_lost >= 0 else 0)
        return NodeEvents(_sub(self.flows, before.flows), _sub(self.lost, before.lost), agent)


@dataclass(frozen=True, slots=True)
class ServiceSli:
    """Cumulative counts of one service on one datapath.

    ``connect_counts[i]`` is the number of handshakes whose duration fell in bucket
    ``i`` (not cumulative; the last bucket is +Inf), against the shared
    ``SliSnapshot.connect_bounds``.
    """

    connect_counts: tuple[int, ...] = ()
    connect_sum: float = 0.0
    attempts: dict[str, int] = field(default_factory=dict)  # result -> count
    flows: int = 0
    drops: dict[str, int] = field(default_factory=dict)  # reason -> count
    requests: dict[str, int] = field(default_factory=dict)  # code_class -> count
    request_counts: tuple[int, ...] = ()
    request_sum: float = 0.0

    def minus(self, earlier: ServiceSli) -> ServiceSli:
        """The counts accumulated since ``earlier`` (a counter reset yields the later value)."""
        return ServiceSli(
            connect_counts=_sub_seq(self.connect_counts, earlier.connect_counts),
            connect_sum=max(0.0, self.connect_sum - earlier.connect_sum),
            attempts=_sub_map(self.attempts, earlier.attempts),
            flows=_sub(self.flows, earlier.flows),
            drops=_sub_map(self.drops, earlier.drops),
            requests=_sub_map(self.requests, earlier.requests),
            request_counts=_sub_seq(self.request_counts, earlier.request_counts),
            request_sum=max(0.0, self.request_sum - earlier.request_sum),
        )


@dataclass(frozen=True, slots=True)
class SliSnapshot:
    """Every service's cumulative SLI counts at ``time`` (epoch seconds)."""

    time: float
    connect_bounds: tuple[float, ...]  # upper bounds in seconds, without +Inf
    request_bounds: tuple[float, ...]
    services: dict[SliKey, ServiceSli]
    #: node -> its Hubble events (the lost-events gate); empty when nothing was counted
    nodes: dict[str, NodeEvents] = field(default_factory=dict)

    def minus(self, earlier: SliSnapshot) -> SliSnapshot:
        """The window between ``earlier`` and this snapshot."""
        empty = ServiceSli()
        return SliSnapshot(
            time=self.time,
            connect_bounds=self.connect_bounds,
            request_bounds=self.request_bounds,
            services={
                key: sli.minus(earlier.services.get(key, empty))
                for key, sli in self.services.items()
            },
            nodes={node: events.since(earlier.nodes.get(node))
                   for node, events in self.nodes.items()},
        )


def _sub(now: int, before: int) -> int:
    return now - before if now >= before else now


def _sub_map(now: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: _sub(v, before.get(k, 0)) for k, v in now.items()}


def _sub_seq(now: tuple[int, ...], before: tuple[int, ...]) -> tuple[int, ...]:
    if len(before) != len(now) or any(b > n for n, b in zip(now, before)):
        return now
    return tuple(n - b for n, b in zip(now, before))


def to_json(snapshot: SliSnapshot) -> dict[str, Any]:
    """A JSON-ready form of ``snapshot`` (served at ``/api/v1/snapshot``)."""
    return {
        "time": snapshot.time,
        "connect_bounds": list(snapshot.connect_bounds),
        "request_bounds": list(snapshot.request_bounds),
        "services": [
            {
                "namespace": key.namespace, "service": key.service, "datapath": key.datapath,
                "connect_counts": list(sli.connect_counts), "connect_sum": sli.connect_sum,
                "attempts": sli.attempts, "flows": sli.flows, "drops": sli.drops,
                "requests": sli.requests, "request_counts": list(sli.request_counts),
                "request_sum": sli.request_sum,
            }
            for key, sli in snapshot.services.items()
        ],
        "nodes": {node: list(events) for node, events in snapshot.nodes.items()},
    }


def from_json(data: dict[str, Any]) -> SliSnapshot:
    """The inverse of ``to_json``; raises ``ValueError`` on a malformed document."""
    try:
        services = {
            SliKey(str(s["namespace"]), str(s["service"]), str(s["datapath"])): ServiceSli(
                connect_counts=tuple(int(c) for c in s["connect_counts"]),
                connect_sum=float(s["connect_sum"]),
                attempts={str(k): int(v) for k, v in s["attempts"].items()},
                flows=int(s["flows"]),
                drops={str(k): int(v) for k, v in s["drops"].items()},
                requests={str(k): int(v) for k, v in s["requests"].items()},
                request_counts=tuple(int(c) for c in s["request_counts"]),
                request_sum=float(s["request_sum"]),
            )
            for s in data["services"]
        }
        return SliSnapshot(
            time=float(data["time"]),
            connect_bounds=tuple(float(b) for b in data["connect_bounds"]),
            request_bounds=tuple(float(b) for b in data["request_bounds"]),
            services=services,
            nodes={str(n): NodeEvents(*(int(v) for v in e))
                   for n, e in data.get("nodes", {}).items()},
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not an SLI snapshot document: {exc}") from exc
