"""The committed ``exporter._gen`` matches a fresh generation, and the
generated API has the wire facts Hubble clients rely on.

Matrix: regeneration == committed files; no top-level ``flow``/``observer``/
``relay`` imports; method paths; field numbers of the fields we read; open
enums (unknown numbers survive a round trip); enum gaps (TO_ENDPOINT=101).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from exporter.protos import generate as gen

COMMITTED = Path(gen.__file__).resolve().parent.parent / "_gen"


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_committed_output_matches_regeneration(tmp_path: Path) -> None:
    gen.generate(tmp_path)
    fresh, committed = _tree(tmp_path), _tree(COMMITTED)
    assert sorted(fresh) == sorted(committed), "run `make protos` and commit exporter/_gen"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"out of date (run `make protos`): {stale}"


def test_generate_removes_stale_modules(tmp_path: Path) -> None:
    stale = tmp_path / "flow" / "old_pb2.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("x = 1\n")
    gen.generate(tmp_path)
    assert not stale.exists()


def test_rewrite_imports_only_touches_proto_packages() -> None:
    src = "from flow import flow_pb2 as f\nfrom google.protobuf import any_pb2\n"
    assert gen.rewrite_imports(src) == (
        "from exporter._gen.flow import flow_pb2 as f\nfrom google.protobuf import any_pb2\n"
    )


def test_no_top_level_proto_packages_needed() -> None:
    for path in COMMITTED.rglob("*.py"):
        for line in path.read_text().splitlines():
            assert not line.startswith(("from flow ", "from observer ", "from relay ")), path
    import exporter._gen.observer.observer_pb2_grpc  # noqa: F401

    assert "flow" not in sys.modules and "observer" not in sys.modules


def test_service_and_method_paths() -> None:
    from exporter._gen.observer import observer_pb2

    service = observer_pb2.DESCRIPTOR.services_by_name["Observer"]
    assert service.full_name == "observer.Observer"
    assert {m.name for m in service.methods} == {
        "GetFlows", "GetAgentEvents", "GetDebugEvents", "GetNodes", "GetNamespaces",
        "ServerStatus",
    }
    assert service.methods_by_name["GetFlows"].server_streaming


@pytest.mark.parametrize(
    ("message", "field", "number"),
    [
        ("Flow", "time", 1), ("Flow", "verdict", 2), ("Flow", "drop_reason", 3),
        ("Flow", "IP", 5), ("Flow", "l4", 6), ("Flow", "source", 8), ("Flow", "destination", 9),
        ("Flow", "Type", 10), ("Flow", "node_name", 11), ("Flow", "l7", 15), ("Flow", "reply", 16),
        ("Flow", "event_type", 19), ("Flow", "source_service", 20),
        ("Flow", "destination_service", 21), ("Flow", "traffic_direction", 22),
        ("Flow", "trace_observation_point", 24), ("Flow", "drop_reason_desc", 25),
        ("Flow", "is_reply", 26), ("Flow", "sock_xlate_point", 31), ("Flow", "socket_cookie", 32),
        ("Flow", "cgroup_id", 33), ("Flow", "uuid", 34), ("Flow", "trace_reason", 36),
        ("Flow", "aggregate", 21007), ("Flow", "Summary", 100000),
        ("Endpoint", "workloads", 6), ("Layer4", "SCTP", 5), ("Layer7", "http", 101),
        ("Layer7", "latency_ns", 2), ("LostEvent", "num_events_lost", 2),
        ("FlowFilter", "drop_reason_desc", 33), ("FlowFilter", "experimental", 999),
    ],
)
def test_flow_field_numbers(message: str, field: str, number: int) -> None:
    from exporter._gen.flow import flow_pb2

    assert flow_pb2.DESCRIPTOR.message_types_by_name[message].fields_by_name[field].number == number


def test_request_and_response_field_numbers() -> None:
    from exporter._gen.observer import observer_pb2

    req = observer_pb2.GetFlowsRequest.DESCRIPTOR.fields_by_name
    assert {n: req[n].number for n in ("number", "follow", "blacklist", "whitelist", "since",
                                      "until", "first", "field_mask")} == {
        "number": 1, "follow": 3, "blacklist": 5, "whitelist": 6, "since": 7, "until": 8,
        "first": 9, "field_mask": 10,
    }
    resp = observer_pb2.GetFlowsResponse.DESCRIPTOR.fields_by_name
    assert [resp[n].number for n in ("flow", "node_status", "lost_events", "node_name", "time")] \
        == [1, 2, 3, 1000, 1001]


def test_enums_are_open_and_keep_gaps() -> None:
    from exporter._gen.flow import flow_pb2

    assert flow_pb2.TO_ENDPOINT == 101
    assert flow_pb2.DROP_FRAG_NOT_FOUND_WORLD == 207
    wire = flow_pb2.Flow(drop_reason_desc=206, verdict=42).SerializeToString()
    back = flow_pb2.Flow.FromString(wire)
    assert (back.drop_reason_desc, back.verdict) == (206, 42)
