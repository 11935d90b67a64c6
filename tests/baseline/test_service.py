"""The baseline service with its pre-switch window read elsewhere (node mode: Prometheus).

Matrix: all kube-proxy, then a switch -> the window ending at the last all-kube-proxy
snapshot is read once and frozen and saved; a read that fails is retried with the next
snapshot until it works (the switch is not forgotten), the status says why; starting mid-
migration reads nothing; a frozen baseline is never read again; the local snapshots are
not used.
"""

from __future__ import annotations

from pathlib import Path

from exporter.baseline.keeper import BaselineKeeper
from exporter.baseline.service import BaselineService
from exporter.baseline.settings import BaselineSettings
from exporter.baseline.store import FileStore
from exporter.judge.history import Cohort, Window
from exporter.snapshot import SliKey
from tests.judge.samples import BOUNDS, lognormal, snap

SETTINGS = BaselineSettings(window_seconds=600.0)
KP = SliKey("shop", "cart", "kube-proxy")


class Remote:
    """Answers ``window_at(end, seconds)`` with one kube-proxy service, or fails."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[float, float]] = []

    async def __call__(self, end: float, seconds: float) -> Window:
        self.calls.append((end, seconds))
        if self.failures:
            self.failures -= 1
            raise OSError("Prometheus unreachable: connection refused")
        counts = lognormal(5, 400)
        cohort = Cohort(counts, sum(counts), sum(counts), 1600, 2, 0)
        return Window.of_cohorts(end - seconds, end, BOUNDS, {KP: cohort})


def service(tmp_path: Path, clock, remote: Remote) -> BaselineService:
    return BaselineService(BaselineKeeper(SETTINGS, clock=clock),
                           FileStore(tmp_path / "baseline.json"), clock=clock, remote=remote)


async def test_the_switch_reads_the_pre_switch_window_and_freezes_it(tmp_path, clock):
    remote = Remote()
    svc = service(tmp_path, clock, remote)
    await svc.start()
    for t in (100.0, 160.0, 220.0):
        assert await svc.observe(snap(t, {}), "before") is None  # local snapshots: empty
    frozen = await svc.observe(snap(280.0, {}), "canary")
    assert remote.calls == [(220.0, 600.0)]
    assert frozen is not None and set(frozen.services) == {("shop", "cart")}
    assert (frozen.window_start, frozen.window_end) == (-380.0, 220.0)
    assert await FileStore(tmp_path / "baseline.json").load() == frozen
    assert await svc.observe(snap(340.0, {}), "after") is None
    assert remote.calls == [(220.0, 600.0)]  # frozen: never read again


async def test_a_failed_read_is_retried_until_it_works(tmp_path, clock):
    remote = Remote(failures=2)
    svc = service(tmp_path, clock, remote)
    await svc.start()
    await svc.observe(snap(100.0, {}), "rolled-back")
    assert await svc.observe(snap(160.0, {}), "canary") is None
    assert "could not be read yet: Prometheus unreachable" in svc.keeper.status
    assert await svc.observe(snap(220.0, {}), "canary") is None
    frozen = await svc.observe(snap(280.0, {}), "canary")
    assert frozen is not None
    assert remote.calls == [(100.0, 600.0)] * 3  # the same pre-switch window each time
    assert svc.baseline is frozen


async def test_starting_mid_migration_reads_nothing(tmp_path, clock):
    remote = Remote()
    svc = service(tmp_path, clock, remote)
    await svc.start()
    assert await svc.observe(snap(100.0, {}), "canary") is None
    assert remote.calls == [] and svc.baseline is None
    assert "already switched" in svc.keeper.status
