"""Pure rollback decision: notification + policy + situation + memory -> Decision.

No I/O, no clock reads, no aiohttp or kubernetes: the caller passes ``now``. The
rules, in the order they are applied:

1. only ``firing`` alerts carrying every ``match_labels`` pair count (else IGNORE);
2. alerts already acted on, keyed by (fingerprint, startsAt, status), are dropped
   (all dropped -> DUPLICATE);
3. the kill switch refuses (REFUSE);
4. a phase of ``unknown`` (tracker not synced) defers (DEFER: the receiver answers 503
   so Alertmanager retries);
5. the scope: the nodes named by the ``node`` label, else ``kpr_scope`` = cluster |
   canary, else canary (the eBPF nodes) in the canary phase and the whole cluster in
   the after phase; no eBPF (or unknown) node in scope -> NOTHING_TO_DO. The shipped
   baseline comparisons carry no ``kpr_scope`` (they fire in the canary phase too), so
   while the cluster is mixed any regression rolls back only the eBPF nodes; only an
   alert that names ``cluster`` on purpose widens it;
6. a rollback already running defers (DEFER);
7. cooldown since the last rollback (COOLDOWN: intended, not an error), then the cap
   per window (REFUSE);
8. otherwise ROLLBACK, in the configured mode (dry-run or enforce).

Only a ROLLBACK is remembered (``Memory.remember``): its alerts become duplicates and
its time counts for cooldown and cap. Every Decision carries a human reason.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from exporter.cilium import AFTER, CANARY, PHASE_UNKNOWN
from exporter.metrics_contract import ROLLBACK_ALERT_LABELS
from exporter.model import EBPF, KUBE_PROXY, UNKNOWN
from exporter.rollback.roles import DRY_RUN, MODES, ClusterView, Scope
from exporter.webhook.payload import Alert, Notification

# Decision actions.
ROLLBACK: Final = "rollback"
IGNORE: Final = "ignore"
DUPLICATE: Final = "duplicate"
NOTHING_TO_DO: Final = "nothing-to-do"
REFUSE: Final = "refuse"
DEFER: Final = "defer"
COOLDOWN: Final = "cooldown"
ACTIONS: Final = (ROLLBACK, IGNORE, DUPLICATE, NOTHING_TO_DO, REFUSE, DEFER, COOLDOWN)

SCOPE_CLUSTER: Final = "cluster"
SCOPE_CANARY: Final = "canary"


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules a decision applies; built from the webhook and rollback settings."""

    mode: str = DRY_RUN
    match_labels: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(ROLLBACK_ALERT_LABELS))
    )
    node_label: str = "node"
    scope_label: str = "kpr_scope"
    cooldown_seconds: float = 3600.0
    max_per_window: int = 1
    window_seconds: float = 86400.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    @classmethod
    def from_settings(cls, webhook: object, rollback: object) -> Policy:
        """From ``WebhookSettings`` and ``RollbackSettings`` (duck-typed to stay pure)."""
        return cls(
            mode=rollback.mode,  # type: ignore[attr-defined]
            match_labels=MappingProxyType(dict(webhook.match_labels)),  # type: ignore[attr-defined]
            node_label=webhook.node_label,  # type: ignore[attr-defined]
            scope_label=webhook.scope_label,  # type: ignore[attr-defined]
            cooldown_seconds=rollback.cooldown_seconds,  # type: ignore[attr-defined]
            max_per_window=rollback.max_per_window,  # type: ignore[attr-defined]
            window_seconds=rollback.window_seconds,  # type: ignore[attr-defined]
        )


@dataclass(frozen=True, slots=True)
class Situation:
    """The world at decision time, as plain values."""

    phase: str
    nodes_by_datapath: Mapping[str, frozenset[str]]
    rollback_in_progress: bool = False
    kill_switch: bool = False

    @classmethod
    def observe(cls, view: ClusterView, *, in_progress: bool, kill_switch: bool) -> Situation:
        by_dp = {dp: frozenset(nodes) for dp, nodes in view.nodes_by_datapath().items()}
        return cls(view.phase(), MappingProxyType(by_dp), in_progress, kill_switch)

    def nodes(self, datapath: str) -> frozenset[str]:
        return self.nodes_by_datapath.get(datapath, frozenset())


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about one notification, and why (``reason`` is for humans)."""

    action: str
    reason: str
    mode: str
    scope: Scope | None = None
    alerts: tuple[Alert, ...] = ()  # the new, matching, firing alerts behind it

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(a.fingerprint for a in self.alerts)

    @property
    def retry_wanted(self) -> bool:
        return self.action == DEFER


class Memory:
    """Bounded dedup keys and the end times of finished rollbacks."""

    def __init__(self, capacity: int = 10000, history: Iterable[float] = ()) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._keys: OrderedDict[tuple[str, float, str], None] = OrderedDict()
        self._history: deque[float] = deque(sorted(history), maxlen=1000)

    def __len__(self) -> int:
        return len(self._keys)

    def seen(self, alert: Alert) -> bool:
        return alert.dedup_key() in self._keys

    def remember(self, decision: Decision, now: float) -> None:
        """Record a ROLLBACK decision's alerts (other actions are not kept). The rollback
        itself counts for cooldown and cap once it finished (``record_rollback``): one that
        was refused or never ran must not hold the next alert back."""
        if decision.action != ROLLBACK:
            return
        for alert in decision.alerts:
            key = alert.dedup_key()
            self._keys[key] = None
            self._keys.move_to_end(key)
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)

    def record_rollback(self, at: float) -> None:
        """Count a rollback that finished at ``at`` (also used to seed from persisted history)."""
        self._history.append(at)

    def last_rollback(self) -> float | None:
        return max(self._history) if self._history else None

    def rollbacks_since(self, since: float) -> int:
        return sum(1 for t in self._history if t >= since)

    @property
    def history(self) -> tuple[float, ...]:
        return tuple(self._history)


def decide(
    notification: Notification,
    policy: Policy,
    situation: Situation,
    memory: Memory,
    now: float,
) -> Decision:
    """Apply the rules of the module docstring. Pure: reads ``memory``, never changes it."""
    mode = policy.mode
    matching = [a for a in notification.alerts if a.firing and _matches(a, policy.match_labels)]
    if not matching:
        return Decision(IGNORE, _ignore_reason(notification, policy), mode)
    fresh = tuple(a for a in matching if not memory.seen(a))
    if not fresh:
        return Decision(DUPLICATE, f"already acted on {_describe(matching)}", mode,
                        alerts=tuple(matching))
    about = _describe(fresh)
    if situation.kill_switch:
        return Decision(REFUSE, f"kill switch is on; not acting on {about}", mode, alerts=fresh)
    if situation.phase == PHASE_UNKNOWN:
        return Decision(DEFER, f"migration phase not known yet (datapath tracker not synced); "
                               f"asking Alertmanager to retry {about}", mode, alerts=fresh)
    scope, why, bad_input = _scope(fresh, policy, situation)
    if scope is None:
        return Decision(REFUSE if bad_input else NOTHING_TO_DO, f"{why}; alerts: {about}",
                        mode, alerts=fresh)
    if situation.rollback_in_progress:
        return Decision(DEFER, f"a rollback is already running; asking Alertmanager to retry {about}",
                        mode, scope, fresh)
    last = memory.last_rollback()
    if last is not None and now - last < policy.cooldown_seconds:
        return Decision(
            COOLDOWN,
            f"cooldown: last rollback {now - last:.0f}s ago, cooldown {policy.cooldown_seconds:.0f}s; "
            f"not acting on {about}",
            mode, scope, fresh,
        )
    recent = memory.rollbacks_since(now - policy.window_seconds)
    if recent >= policy.max_per_window:
        return Decision(
            REFUSE,
            f"cap reached: {recent} rollback(s) in the last {policy.window_seconds:.0f}s "
            f"(max {policy.max_per_window}); not acting on {about}",
            mode, scope, fresh,
        )
    verb = "would roll back" if mode == DRY_RUN else "rolling back"
    return Decision(ROLLBACK, f"{verb} {scope.describe()} ({why}) for {about}; mode {mode}",
                    mode, scope, fresh)


def _matches(alert: Alert, wanted: Mapping[str, str]) -> bool:
    labels = alert.labels
    return all(labels.get(name) == value for name, value in wanted.items())


def _scope(
    alerts: Collection[Alert], policy: Policy, situation: Situation
) -> tuple[Scope | None, str, bool]:
    """``(scope, how it was chosen, False)``, or ``(None, why not, bad_input)``."""
    ebpf = situation.nodes(EBPF)
    unknown = situation.nodes(UNKNOWN)
    kube_proxy = situation.nodes(KUBE_PROXY)
    candidates = ebpf | unknown
    named = {v for a in alerts if (v := a.labels.get(policy.node_label, ""))}
    if named:
        targets = named & candidates
        if not targets:
            known = sorted(named & kube_proxy)
            stranger = sorted(named - kube_proxy - candidates)
            parts = []
            if known:
                parts.append(f"node(s) {', '.join(known)} already use kube-proxy")
            if stranger:
                parts.append(f"node(s) {', '.join(stranger)} are not known to the datapath tracker")
            return None, "; ".join(parts), False
        return Scope.of_nodes(targets), f"nodes named by label {policy.node_label}", False
    if not candidates:
        return None, f"every node already uses kube-proxy (phase {situation.phase})", False
    asked = {v for a in alerts if (v := a.labels.get(policy.scope_label, ""))}
    strange = asked - {SCOPE_CLUSTER, SCOPE_CANARY}
    if strange:
        return None, (f"label {policy.scope_label}={','.join(sorted(strange))} is not "
                      f"{SCOPE_CLUSTER} or {SCOPE_CANARY}"), True
    if SCOPE_CLUSTER in asked:
        return Scope.cluster(candidates), f"{policy.scope_label}={SCOPE_CLUSTER}", False
    if SCOPE_CANARY in asked:
        if not ebpf:
            return None, "canary scope asked but no node is known to run eBPF", False
        return Scope.of_nodes(ebpf), f"{policy.scope_label}={SCOPE_CANARY}", False
    if situation.phase == AFTER:
        return Scope.cluster(candidates), "phase after: every node was switched", False
    if ebpf:
        label = "canary" if situation.phase == CANARY else f"phase {situation.phase}"
        return Scope.of_nodes(ebpf), f"{label}: the eBPF nodes", False
    return (Scope.cluster(candidates),
            f"phase {situation.phase}: datapath of every candidate unknown", False)


def _describe(alerts: Collection[Alert]) -> str:
    shown = [f"{a.labels.get('alertname', '?')}[{a.fingerprint}]" for a in list(alerts)[:5]]
    more = f" and {len(alerts) - 5} more" if len(alerts) > 5 else ""
    return f"{len(alerts)} alert(s) " + ", ".join(shown) + more


def _ignore_reason(notification: Notification, policy: Policy) -> str:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(policy.match_labels.items()))
    firing = sum(1 for a in notification.alerts if a.firing)
    text = (f"no firing alert carries {wanted} ({len(notification.alerts)} alert(s), "
            f"{firing} firing)")
    if notification.truncated_alerts:
        text += f"; {notification.truncated_alerts} alert(s) truncated by max_alerts were not seen"
    return text


__all__ = [
    "ACTIONS", "COOLDOWN", "DEFER", "DUPLICATE", "IGNORE", "NOTHING_TO_DO", "REFUSE", "ROLLBACK",
    "Decision", "Memory", "Policy", "Situation", "decide",
]
