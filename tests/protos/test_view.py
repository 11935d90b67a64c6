"""``hubbleview`` (the hot-path read view) stays wire-compatible with the real
messages: every view field has the number, name and a compatible wire type of
its counterpart (message <-> bytes, enum <-> int32)."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor as FD

from exporter._gen.flow import flow_pb2
from exporter._gen.hubbleview import hubbleview_pb2
from exporter._gen.observer import observer_pb2

PAIRS = [
    (hubbleview_pb2.Response, observer_pb2.GetFlowsResponse),
    (hubbleview_pb2.Flow, flow_pb2.Flow),
    (hubbleview_pb2.Layer4, flow_pb2.Layer4),
    (hubbleview_pb2.TCP, flow_pb2.TCP),
    (hubbleview_pb2.Ports, flow_pb2.UDP),
    (hubbleview_pb2.Ports, flow_pb2.SCTP),
    (hubbleview_pb2.Layer7, flow_pb2.Layer7),
    (hubbleview_pb2.HTTP, flow_pb2.HTTP),
]


def _compatible(view: FD, real: FD) -> bool:
    if view.type == FD.TYPE_BYTES:
        return real.type in (FD.TYPE_MESSAGE, FD.TYPE_BYTES)
    if view.type == FD.TYPE_INT32:
        return real.type in (FD.TYPE_ENUM, FD.TYPE_INT32)
    if view.type == FD.TYPE_MESSAGE:
        return real.type == FD.TYPE_MESSAGE
    return view.type == real.type


@pytest.mark.parametrize(("view", "real"), PAIRS, ids=lambda m: m.DESCRIPTOR.full_name)
def test_view_fields_match_real_fields(view, real) -> None:
    real_fields = real.DESCRIPTOR.fields_by_number
    for field in view.DESCRIPTOR.fields:
        counterpart = real_fields.get(field.number)
        assert counterpart is not None, f"{field.full_name}: no field {field.number}"
        assert counterpart.name == field.name, field.full_name
        assert _compatible(field, counterpart), field.full_name


def test_view_reads_what_the_real_message_wrote() -> None:
    flow = flow_pb2.Flow(uuid="u", verdict=flow_pb2.DROPPED, drop_reason_desc=158,
                         socket_cookie=7)
    flow.l4.TCP.source_port = 1234
    flow.source.pod_name = "p"
    view = hubbleview_pb2.Response.FromString(
        observer_pb2.GetFlowsResponse(flow=flow).SerializeToString())
    assert (view.flow.uuid, view.flow.verdict, view.flow.drop_reason_desc) == ("u", 2, 158)
    assert view.flow.l4.TCP.source_port == 1234 and view.flow.socket_cookie == 7
    assert flow_pb2.Endpoint.FromString(view.flow.source).pod_name == "p"
