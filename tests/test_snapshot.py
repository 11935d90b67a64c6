"""SLI snapshots: windows by difference, counter resets, JSON round trip."""

import pytest

from exporter.snapshot import ServiceSli, SliKey, SliSnapshot, from_json, to_json

KEY = SliKey("shop", "cart", "ebpf")


def _snap(t, counts, attempts, drops):
    return SliSnapshot(t, (0.001, 0.01), (0.1,), {
        KEY: ServiceSli(connect_counts=counts, connect_sum=0.5, attempts=attempts,
                        flows=100 * t, drops=drops)})


def test_window_is_the_difference_of_two_snapshots():
    early = _snap(1, (1, 2, 0), {"established": 3}, {"SERVICE_BACKEND_NOT_FOUND": 1})
    late = _snap(3, (4, 5, 1), {"established": 10, "timeout": 1}, {"SERVICE_BACKEND_NOT_FOUND": 4})
    window = late.minus(early).services[KEY]
    assert window.connect_counts == (3, 3, 1)
    assert window.attempts == {"established": 7, "timeout": 1}
    assert window.drops == {"SERVICE_BACKEND_NOT_FOUND": 3}
    assert window.flows == 200


def test_a_counter_reset_yields_the_later_counts():
    early = _snap(5, (9, 9, 9), {"established": 50}, {})
    late = _snap(6, (1, 0, 0), {"established": 2}, {})
    window = late.minus(early).services[KEY]
    assert window.connect_counts == (1, 0, 0)
    assert window.attempts == {"established": 2}


def test_json_round_trip_and_malformed_documents():
    snap = _snap(2, (1, 2, 3), {"established": 6}, {"FIB_LOOKUP_FAILED": 2})
    assert from_json(to_json(snap)) == snap
    with pytest.raises(ValueError, match="not an SLI snapshot"):
        from_json({"time": 1})


def test_node_events_take_part_in_windows_and_json():
    from dataclasses import replace

    from exporter.snapshot import NodeEvents
    early = replace(_snap(1, (1, 2, 0), {"established": 3}, {}),
                    nodes={"node-a": NodeEvents(100, 2, 0)})
    late = replace(_snap(2, (1, 2, 0), {"established": 3}, {}),
                   nodes={"node-a": NodeEvents(150, 1, 7), "node-b": NodeEvents(9, 0, 0)})
    assert late.minus(early).nodes == {"node-a": (50, 1, 7), "node-b": (9, 0, 0)}
    assert from_json(to_json(late)) == late
