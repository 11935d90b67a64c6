"""The baseline keeper: collects while every node runs kube-proxy, freezes at the first switch.

Fed periodic ``SliSnapshot``s with the migration phase. While the cluster is all kube-proxy
(``before``, or ``rolled-back``) it keeps a compact history covering ``window_seconds``.
When the phase moves on to ``canary`` or ``after`` (a node switched) and no baseline is
frozen, it freezes one from the kube-proxy datapath over that window. A frozen baseline is
never replaced automatically: a rollback and a later switch keep it; only ``capture`` (by
hand) or ``clear`` change it. ``unknown`` phases (tracker not synced) are ignored. Pure: the
clock is injected and persistence is the caller's (``exporter.baseline.service``).

Where the counts live elsewhere (node mode: the collectors' series in Prometheus), ``due``
applies the same phase rules without keeping any history and says which window to read;
``freeze`` turns that window into the baseline.
"""

from __future__ import annotations

from typing import Final

from exporter.baseline.model import AUTO, MANUAL, Baseline
from exporter.baseline.settings import BaselineSettings
from exporter.cilium import AFTER, BEFORE, CANARY, ROLLED_BACK
from exporter.judge.history import CompactSnapshot, SnapshotHistory, Window
from exporter.model import KUBE_PROXY
from exporter.roles import Clock
from exporter.snapshot import SliKey, SliSnapshot

ALL_KUBE_PROXY: Final = frozenset({BEFORE, ROLLED_BACK})
SWITCHED: Final = frozenset({CANARY, AFTER})


def _kube_proxy(key: SliKey) -> bool:
    return key.datapath == KUBE_PROXY


class BaselineKeeper:
    """Holds the frozen baseline (or none) and the pre-switch history it is frozen from."""

    def __init__(self, settings: BaselineSettings, *, clock: Clock,
                 baseline: Baseline | None = None) -> None:
        self.settings = settings
        self._clock = clock
        self.baseline = baseline
        self.history = SnapshotHistory(settings.window_seconds,
                                       resolution=settings.window_seconds / 20.0,
                                       keep=_kube_proxy)
        self._last_phase: str | None = None
        self._last_all_kube_proxy = 0.0  # when the phase was last seen all kube-proxy
        self.status = "frozen" if baseline else "waiting for an all-kube-proxy phase"

    def observe(self, snapshot: SliSnapshot, phase: str) -> Baseline | None:
        """Record one snapshot; returns the baseline when this call froze it (to persist)."""
        if phase in ALL_KUBE_PROXY:
            self._last_phase = phase
            if self.baseline is None:  # nothing to freeze into otherwise
                self.history.add(snapshot)
                self.status = f"collecting: {self._covered():.0f} s of kube-proxy traffic"
            return None
        if phase not in SWITCHED:
            return None  # unknown: neither collect nor freeze
        previous, self._last_phase = self._last_phase, phase
        window = self.history.window(self.settings.window_seconds)
        self.history.clear()
        if not self._switched_from(previous, phase):
            return None
        if window is None:
            self.status = "a node switched before any pre-switch window was collected"
            return None
        return self.freeze(window, f"the switch from {previous} to {phase}")

    def due(self, phase: str, now: float) -> float | None:
        """The same phase rules with the counts kept elsewhere (Prometheus, in node mode):
        the end of the pre-switch window when a baseline is to be frozen now (the last time
        the cluster was seen all kube-proxy), else None. ``freeze`` finishes it."""
        if phase in ALL_KUBE_PROXY:
            self._last_phase, self._last_all_kube_proxy = phase, now
            if self.baseline is None:
                self.status = "collecting: the kube-proxy traffic is kept in Prometheus"
            return None
        if phase not in SWITCHED:
            return None
        previous, self._last_phase = self._last_phase, phase
        if not self._switched_from(previous, phase):
            return None
        return self._last_all_kube_proxy

    def freeze(self, window: Window, why: str) -> Baseline | None:
        """Freeze the kube-proxy rows of ``window`` (None when no service had enough)."""
        frozen = Baseline.from_window(window, captured_at=self._clock(),
                                      min_connections=self.settings.min_connections,
                                      min_flows=self.settings.min_flows, source=AUTO)
        if not frozen.services:
            self.status = ("a node switched, but no service had enough kube-proxy traffic "
                           "in the pre-switch window")
            return None
        self.baseline = frozen
        self.status = f"frozen at {why}"
        return frozen

    def _switched_from(self, previous: str | None, phase: str) -> bool:
        """Whether this switch freezes a baseline (none yet, and from all kube-proxy)."""
        if self.baseline is not None:
            return False
        if previous is None:
            self.status = (f"the cluster was already switched ({phase}) when collection started: "
                           "no pre-switch window; capture a baseline by hand if needed")
            return False
        return previous in ALL_KUBE_PROXY

    def capture(self, later: SliSnapshot, earlier: SliSnapshot | None = None) -> Baseline:
        """Capture a baseline by hand from ``later`` minus ``earlier``; without ``earlier``,
        everything counted up to ``later`` (the window then starts at 0, "since the counters
        began"). Replaces any frozen baseline."""
        newest = CompactSnapshot.of(later, _kube_proxy)
        if earlier is None:
            window = newest.minus(None)
            window = Window(0.0, window.end, window.bounds, window.index, window.data)
        else:
            window = newest.minus(CompactSnapshot.of(earlier, _kube_proxy))
        self.baseline = Baseline.from_window(window, captured_at=self._clock(),
                                             min_connections=self.settings.min_connections,
                                             min_flows=self.settings.min_flows, source=MANUAL)
        self.status = "captured by hand"
        return self.baseline

    def load(self, baseline: Baseline | None) -> None:
        """Adopt a persisted baseline (at start)."""
        self.baseline = baseline
        if baseline is not None:
            self.status = "frozen (loaded)"

    def clear(self) -> None:
        """Forget the baseline; the next switch from an all-kube-proxy phase freezes anew."""
        self.baseline = None
        self.status = "cleared"

    def _covered(self) -> float:
        newest, oldest = self.history.newest, self.history.oldest
        return 0.0 if newest is None or oldest is None else newest.time - oldest.time
