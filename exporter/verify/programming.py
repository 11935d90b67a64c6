"""Programming latency measured actively (pure): which echo endpoints are new, since when,
and how long the datapath took to serve them.

The probe follows the echo Service's EndpointSlices (``programming_watch``). An endpoint is
*new* when a pod becomes a ready endpoint of the Service (in any of its slices) that was
not one before. Its change time is the slice's
``endpoints.kubernetes.io/last-change-trigger-time`` annotation (the time of the pod or
Service change that triggered the update, the same reference kube-proxy's
``network_programming_duration_seconds`` starts from), else the latest ``managedFields``
time of the slice, else its ``creationTimestamp``. The probe then connects to the ClusterIP
until the new pod answers; the latency is the time of that answer minus the change time.

What is known at the first listing is not new (nothing was measured), nor is news older
than the chase timeout when it arrives (a relist after a lost watch). A new endpoint not
reached within the timeout is *missed*.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    pod: str
    changed_at: float  # unix seconds


def parse_time(text: Any) -> float | None:
    """RFC 3339 (``Z`` or an offset; fractions up to nanoseconds) -> unix seconds."""
    if not isinstance(text, str) or not text:
        return None
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = value.partition(".")
    if dot:  # datetime reads at most microseconds: cut the fraction to six digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp.timestamp() if stamp.tzinfo is not None else None


def change_time(slice_: Mapping[str, Any]) -> float | None:
    """When the slice's last change was triggered (see the module's text); None if unknown."""
    meta = slice_.get("metadata") or {}
    trigger = parse_time((meta.get("annotations") or {}).get(TRIGGER_ANNOTATION))
    if trigger is not None:
        return trigger
    managed = [t for t in (parse_time(m.get("time")) for m in meta.get("managedFields") or []
                           if isinstance(m, Mapping)) if t is not None]
    return max(managed) if managed else parse_time(meta.get("creationTimestamp"))


def ready_pods(slice_: Mapping[str, Any]) -> set[str]:
    """Names of the pods that are ready endpoints of the slice (``ready`` unset = ready)."""
    found = set()
    for endpoint in slice_.get("endpoints") or []:
        ref = endpoint.get("targetRef") or {}
        ready = (endpoint.get("conditions") or {}).get("ready")
        if ref.get("kind", "Pod") == "Pod" and ref.get("name") and ready is not False:
            found.add(str(ref["name"]))
    return found


def _name(slice_: Mapping[str, Any]) -> str:
    return str((slice_.get("metadata") or {}).get("name", ""))


@dataclass
class EndpointTracker:
    """The Service's ready pods per slice; turns slice events into ``NewEndpoint``s.
    ``max_age``: news older than this when it arrives is not measured."""

    max_age: float
    slices: dict[str, set[str]] = field(default_factory=dict)
    synced: bool = False

    def known(self) -> set[str]:
        return set().union(*self.slices.values()) if self.slices else set()

    def sync(self, slices: Iterable[Mapping[str, Any]], now: float) -> list[NewEndpoint]:
        """A full listing replaces the state; the first one reports nothing new."""
        before, first = self.known(), not self.synced
        listed = list(slices)
        self.slices = {_name(s): ready_pods(s) for s in listed}
        self.synced = True
        if first:
            return []
        return [n for s in listed for n in self._news(s, before, now)]

    def update(self, slice_: Mapping[str, Any], now: float) -> list[NewEndpoint]:
        before = self.known()
        self.slices[_name(slice_)] = ready_pods(slice_)
        return self._news(slice_, before, now)

    def delete(self, slice_: Mapping[str, Any]) -> None:
        self.slices.pop(_name(slice_), None)

    def _news(self, slice_: Mapping[str, Any], before: set[str], now: float) -> list[NewEndpoint]:
        changed = change_time(slice_)
        if changed is None or now - changed > self.max_age:
            return []
        return [NewEndpoint(pod, changed) for pod in sorted(ready_pods(slice_) - before)]


@dataclass
class Chase:
    """New endpoints waiting for their first answer; ``timeout`` from when they were
    learnt."""

    timeout: float
    pending: dict[str, tuple[float, float]] = field(default_factory=dict)  # changed, learnt

    def add(self, new: NewEndpoint, now: float) -> None:
        self.pending.setdefault(new.pod, (new.changed_at, now))

    def reached(self, pod: str, now: float) -> float | None:
        """The latency if ``pod`` was waiting (it no longer is), else None."""
        if pod not in self.pending:
            return None
        changed, _ = self.pending.pop(pod)
        return max(0.0, now - changed)

    def expired(self, now: float) -> list[str]:
        """Pods not reached within the timeout, dropped from the chase."""
        gone = sorted(p for p, (_, learnt) in self.pending.items() if now - learnt > self.timeout)
        for pod in gone:
            del self.pending[pod]
        return gone
