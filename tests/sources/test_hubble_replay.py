"""ReplayFilter: the resume point and the duplicate filter after a reconnect, without a server."""

from __future__ import annotations

from exporter.sources.hubble_replay import ReplayFilter

S = 1_000_000_000
T0 = 1_764_000_000 * S


def test_no_since_before_the_first_flow_then_newest_minus_overlap() -> None:
    replay = ReplayFilter(memory=16, overlap_seconds=2)
    assert replay.resume_since() is None
    assert replay.admit(T0 + 5 * S, "b") and replay.admit(T0 + 3 * S, "a")  # out of order
    assert replay.last_ns == T0 + 5 * S
    assert replay.resume_since() == T0 + 3 * S


def test_replayed_flows_are_dropped_by_uuid_and_new_ones_pass() -> None:
    replay = ReplayFilter(memory=16, overlap_seconds=2)
    for i in range(1, 4):
        assert replay.admit(T0 + i, f"f{i}")
    replay.resume_since()  # reconnect: flows up to T0 + 3 may come again
    assert [replay.admit(T0 + i, f"f{i}") for i in (2, 1, 3)] == [False, False, False]
    assert replay.admit(T0 + 2, "late")  # never seen, inside the overlap: delivered once
    assert not replay.admit(T0 + 2, "late")
    assert replay.admit(T0 + 4, "f4") and replay.admit(T0 + 4, "f4")  # after the overlap: no check


def test_without_uuid_memory_everything_in_the_overlap_is_dropped() -> None:
    replay = ReplayFilter(memory=0, overlap_seconds=2)
    assert replay.admit(T0 + 1, "f1")
    replay.resume_since()
    assert not replay.admit(T0, "other") and not replay.admit(T0 + 1, "")
    assert replay.admit(T0 + 2, "f2")


def test_memory_is_two_bounded_generations_keeping_the_newest() -> None:
    replay = ReplayFilter(memory=4, overlap_seconds=0)
    for i in range(1, 6):  # generations of 2: f1,f2 rotate out when f3,f4 fill the next
        replay.admit(T0 + i, f"f{i}")
    replay.resume_since()
    assert len(replay._seen) + len(replay._seen_old) <= 4
    assert not replay.admit(T0 + 4, "f4") and not replay.admit(T0 + 5, "f5")
    assert replay.admit(T0 + 1, "f1")  # forgotten: the memory is bounded
