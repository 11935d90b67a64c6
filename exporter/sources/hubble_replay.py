"""Resuming the Hubble stream after a reconnect without delivering a flow twice.

A new GetFlows call asks again for flows from ``resume_overlap_seconds`` before the
newest flow seen (Relay's ordering is approximate, so a flow slightly older than the
newest may not have arrived yet). Flows at or before that newest time may therefore
come twice; they are dropped by uuid. Uuids are remembered in two generations of
``memory / 2`` each, so memory stays bounded and the newest uuids are always kept.

Pure bookkeeping: no I/O, no gRPC.
"""

from __future__ import annotations

_NS = 1_000_000_000


class ReplayFilter:
    """Tracks the newest flow time and recent uuids; see the module docstring."""

    def __init__(self, memory: int, overlap_seconds: float) -> None:
        self.memory = memory
        self.overlap_ns = int(overlap_seconds * _NS)
        self.last_ns = 0  # newest flow time seen, for resuming
        self._replay_until = 0  # flows at or before this time may be duplicates
        self._half = max(1, memory // 2)
        self._seen: dict[str, None] = {}
        self._seen_old: dict[str, None] = {}

    def resume_since(self) -> int | None:
        """Start of a new call: the ``since`` to ask for (ns), or None before any flow."""
        self._replay_until = self.last_ns
        if not self.last_ns:
            return None
        return max(0, self.last_ns - self.overlap_ns)

    def admit(self, time_ns: int, uuid: str) -> bool:
        """True for a flow not delivered before; remembers it."""
        memory = self.memory
        if time_ns <= self._replay_until and (
            not memory or not uuid or uuid in self._seen or uuid in self._seen_old
        ):
            return False  # delivered before the reconnect
        if time_ns > self.last_ns:
            self.last_ns = time_ns
        if memory and uuid:
            seen = self._seen
            seen[uuid] = None
            if len(seen) >= self._half:
                self._seen_old, self._seen = seen, {}
        return True
