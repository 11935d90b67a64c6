"""The keeper: collect while all kube-proxy, freeze once at the first switch, never overwrite.

Matrix: freeze on before -> canary (window, kube-proxy rows only, min-traffic filter);
later switches and a rollback to before keep it; clear then the next switch freezes anew;
unknown phases are ignored; a switch seen without history freezes nothing; a restart in the
canary phase freezes nothing; capture by hand replaces.
"""

from __future__ import annotations

import pytest

from exporter.baseline.keeper import BaselineKeeper
from exporter.baseline.model import AUTO, MANUAL
from exporter.baseline.settings import BaselineSettings
from tests.judge.samples import Feed, counts_at, sli

KP = ("shop", "cart", "kube-proxy")
KP_QUIET = ("shop", "quiet", "kube-proxy")
EB = ("shop", "cart", "ebpf")
SETTINGS = BaselineSettings(window_seconds=600.0, min_connections=100, min_flows=100)


def _kp_step(n: int = 20, seconds: float = 0.001) -> dict:
    return {KP: sli(counts_at(n, seconds), refused=1, flows=50, drops={"POLICY_DENIED": 1}),
            KP_QUIET: sli(counts_at(1, 0.001), flows=2)}


def _collect(keeper: BaselineKeeper, feed: Feed, steps: int, phase: str = "before", **kw) -> None:
    for _ in range(steps):
        assert keeper.observe(feed.step(30.0, _kp_step(**kw)), phase) is None


def test_freezes_the_pre_switch_window_at_the_first_switch(clock):
    keeper, feed = BaselineKeeper(SETTINGS, clock=clock), Feed()
    _collect(keeper, feed, 40)  # 20 minutes; the window is 10
    switch_snapshot = feed.step(30.0, {**_kp_step(seconds=0.2), EB: sli(counts_at(500, 0.2))})
    frozen = keeper.observe(switch_snapshot, "canary")
    assert frozen is not None and keeper.baseline is frozen
    assert frozen.source == AUTO and frozen.captured_at == clock.now
    assert frozen.window_end == feed.time - 30.0  # the last all-kube-proxy snapshot
    assert 600.0 <= frozen.window_end - frozen.window_start <= 600.0 + 30.0
    cohort = frozen.cohort("shop", "cart")
    steps = round((frozen.window_end - frozen.window_start) / 30.0)
    assert cohort.connections == 20 * steps  # only the window, only kube-proxy, none of 0.2 s
    assert (cohort.attempts, cohort.established, cohort.drops) == (21 * steps, 20 * steps, steps)
    assert frozen.cohort("shop", "quiet") is None  # too little traffic to keep


def test_never_overwritten_by_later_switches_or_a_rollback(clock):
    keeper, feed = BaselineKeeper(SETTINGS, clock=clock), Feed()
    _collect(keeper, feed, 25)
    first = keeper.observe(feed.step(30.0, _kp_step()), "canary")
    assert first is not None
    clock.now += 1000
    for phase in ("after", "rolled-back", "before"):
        keeper.observe(feed.step(30.0, _kp_step(seconds=0.01)), phase)
    _collect(keeper, feed, 25, seconds=0.01)
    assert keeper.observe(feed.step(30.0, _kp_step(seconds=0.01)), "canary") is None
    assert keeper.baseline is first


def test_clear_lets_the_next_switch_freeze_again(clock):
    keeper, feed = BaselineKeeper(SETTINGS, clock=clock), Feed()
    _collect(keeper, feed, 25)
    keeper.observe(feed.step(30.0, _kp_step()), "canary")
    keeper.clear()
    assert keeper.baseline is None
    assert keeper.observe(feed.step(30.0, _kp_step()), "canary") is None  # no phase change
    _collect(keeper, feed, 25, phase="rolled-back", seconds=0.004)
    again = keeper.observe(feed.step(30.0, _kp_step()), "after")
    assert again is not None
    assert again.quantile("shop", "cart", 0.5) == pytest.approx(0.00375)  # in (2.5, 5 ms]


def test_unknown_phase_is_ignored(clock):
    keeper, feed = BaselineKeeper(SETTINGS, clock=clock), Feed()
    _collect(keeper, feed, 25)
    assert keeper.observe(feed.step(30.0, _kp_step()), "unknown") is None
    assert keeper.observe(feed.step(30.0, _kp_step()), "canary") is not None


@pytest.mark.parametrize("history", [0, 1])
def test_a_switch_without_pre_switch_history_freezes_nothing(clock, history):
    keeper, feed = BaselineKeeper(SETTINGS, clock=clock), Feed()
    _collect(keeper, feed, history)
    assert keeper.observe(feed.step(30.0, _kp_step()), "canary") is None
    assert keeper.baseline is None
    assert "switched" in keeper.status


def test_starting_mid_migration_freezes_nothing(clock):
    keeper, feed = BaselineKeeper(SETTINGS, clock=clock), Feed()
    for _ in range(5):
        assert keeper.observe(feed.step(30.0, {**_kp_step(), EB: sli(counts_at(500, 0.001))}),
                              "canary") is None
    assert keeper.baseline is None


def test_no_service_with_enough_traffic_freezes_nothing(clock):
    keeper, feed = BaselineKeeper(SETTINGS, clock=clock), Feed()
    for _ in range(5):
        keeper.observe(feed.step(30.0, {KP_QUIET: sli(counts_at(1, 0.001), flows=2)}), "before")
    assert keeper.observe(feed.step(30.0, {KP_QUIET: sli(flows=2)}), "canary") is None
    assert "no service had enough" in keeper.status


def test_capture_by_hand_replaces(clock):
    keeper, feed = BaselineKeeper(SETTINGS, clock=clock), Feed()
    _collect(keeper, feed, 25)
    auto = keeper.observe(feed.step(30.0, _kp_step()), "canary")
    earlier = feed.step(30.0, _kp_step())
    later = feed.step(300.0, _kp_step(n=200))
    manual = keeper.capture(later, earlier)
    assert manual is not auto and keeper.baseline is manual
    assert manual.source == MANUAL
    assert (manual.window_start, manual.window_end) == (earlier.time, later.time)
    assert manual.cohort("shop", "cart").connections == 200
    everything = keeper.capture(later)
    assert everything.window_start == 0.0
    assert everything.cohort("shop", "cart").connections == later.services[
        next(k for k in later.services if k.service == "cart")].attempts["established"]
