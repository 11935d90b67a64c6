"""Which echo endpoints are new and since when (pure): the slice's trigger time, else its
metadata; nothing new at the first listing, stale news not measured; the chase's latency
and its timeout."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.verify.programming import (
    TRIGGER_ANNOTATION, Chase, EndpointTracker, NewEndpoint, change_time, parse_time,
    ready_pods,
)

T = 1_764_000_000.0  # 2025-11-24T16:00:00Z
STAMP = "2025-11-24T16:00:00"


def slice_(name: str, pods: dict[str, bool | None], *, trigger: str | None = None,
           managed: tuple[str, ...] = (), created: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "kpr-verify",
                            "labels": {"kubernetes.io/service-name": "echo"}}
    if trigger is not None:
        meta["annotations"] = {TRIGGER_ANNOTATION: trigger}
    if managed:
        meta["managedFields"] = [{"manager": "endpointslice-controller", "time": t}
                                 for t in managed]
    if created is not None:
        meta["creationTimestamp"] = created
    endpoints = []
    for pod, ready in pods.items():
        conditions = {} if ready is None else {"ready": ready}
        endpoints.append({"addresses": ["10.0.0.1"], "conditions": conditions,
                          "targetRef": {"kind": "Pod", "name": pod, "namespace": "kpr-verify"}})
    return {"metadata": meta, "endpoints": endpoints}


def test_times_are_read_to_the_microsecond_whatever_the_zone() -> None:
    assert parse_time(f"{STAMP}Z") == T
    assert parse_time(f"{STAMP}.123456789Z") == pytest.approx(T + 0.123456)
    assert parse_time("2025-11-24T17:00:00.5+01:00") == pytest.approx(T + 0.5)
    assert parse_time(STAMP) is None  # no zone: unknown, never guessed
    assert parse_time("yesterday") is None and parse_time(None) is None and parse_time("") is None


def test_the_trigger_time_comes_first_then_the_latest_write_then_the_creation() -> None:
    both = slice_("a", {}, trigger=f"{STAMP}.25Z", managed=(f"{STAMP}Z",))
    assert change_time(both) == pytest.approx(T + 0.25)
    managed = slice_("a", {}, managed=("2025-11-24T15:59:00Z", "2025-11-24T16:00:01Z"),
                     created="2025-11-24T15:00:00Z")
    assert change_time(managed) == T + 1
    assert change_time(slice_("a", {}, created=f"{STAMP}Z")) == T
    assert change_time(slice_("a", {}, trigger="garbage")) is None


def test_ready_pods_are_the_ready_or_unset_pod_endpoints() -> None:
    s = slice_("a", {"p1": True, "p2": False, "p3": None})
    s["endpoints"].append({"addresses": ["10.0.0.9"], "conditions": {"ready": True}})  # no ref
    s["endpoints"].append({"addresses": ["10.0.0.8"], "targetRef": {"kind": "Node", "name": "n"}})
    assert ready_pods(s) == {"p1", "p3"}


def test_new_endpoints_are_the_pods_that_become_ready_after_the_first_listing() -> None:
    tracker = EndpointTracker(max_age=30.0)
    assert tracker.sync([slice_("a", {"p1": True}, trigger=f"{STAMP}Z"),
                         slice_("b", {"p2": True})], now=T) == []
    # p3 added (not ready yet), p1 unchanged: nothing new
    assert tracker.update(slice_("a", {"p1": True, "p3": False}, trigger=f"{STAMP}Z"),
                          now=T + 1) == []
    # p3 becomes ready: new, since the slice's trigger time
    assert tracker.update(slice_("a", {"p1": True, "p3": True}, trigger=f"{STAMP}.5Z"),
                          now=T + 2) == [NewEndpoint("p3", T + 0.5)]
    # p2 moves to slice a: already an endpoint, not new
    assert tracker.update(slice_("a", {"p1": True, "p2": True, "p3": True},
                                 trigger=f"{STAMP}.6Z"), now=T + 3) == []
    tracker.delete(slice_("b", {}))
    tracker.update(slice_("a", {"p1": True}, trigger=f"{STAMP}Z"), now=T + 4)
    assert tracker.known() == {"p1"}
    # a pod that comes back (same name) is new again
    assert tracker.update(slice_("a", {"p1": True, "p2": True}, trigger="2025-11-24T16:00:05Z"),
                          now=T + 5.2) == [NewEndpoint("p2", T + 5)]


def test_stale_news_and_news_without_a_time_are_not_measured() -> None:
    tracker = EndpointTracker(max_age=30.0)
    tracker.sync([slice_("a", {"p1": True})], now=T)
    # a relist after a lost watch finds p2, added 60 s ago: too old to measure
    assert tracker.sync([slice_("a", {"p1": True, "p2": True}, trigger=f"{STAMP}Z")],
                        now=T + 60) == []
    assert tracker.known() == {"p1", "p2"}
    # a relist finding p3 added a moment ago measures it
    assert tracker.sync([slice_("a", {"p1": True, "p2": True, "p3": True},
                                trigger="2025-11-24T16:01:00Z")], now=T + 61) == [
        NewEndpoint("p3", T + 60)]
    assert tracker.update(slice_("a", {"p1": True, "p2": True, "p3": True, "p4": True}),
                          now=T + 62) == []  # no time at all: nothing to measure from
    assert "p4" in tracker.known()


def test_the_chase_measures_from_the_change_and_times_out_from_the_news() -> None:
    chase = Chase(timeout=10.0)
    chase.add(NewEndpoint("p1", T), now=T + 0.2)
    chase.add(NewEndpoint("p2", T + 1), now=T + 1.1)
    assert chase.reached("p0", T + 1.5) is None  # an old endpoint answered
    assert chase.reached("p1", T + 1.5) == pytest.approx(1.5)
    assert chase.reached("p1", T + 1.6) is None  # measured once
    assert chase.expired(T + 11.0) == []
    assert chase.expired(T + 11.2) == ["p2"] and chase.pending == {}
    chase.add(NewEndpoint("p5", T + 20), now=T + 19.9)  # the API server's clock runs ahead
    assert chase.reached("p5", T + 19.95) == 0.0
