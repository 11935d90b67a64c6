"""Flows towards a Service (by verdict) and drops (by reason).

Matrix: replies, trace-sock events, L7 records and unattributed drops are not
counted; aggregated flows count ``count`` times; unknown verdict and drop-reason
numbers stay numbers; drops take the dropping node's datapath and appear in
both metrics; attribution through ``source_service``; whole exposition.
"""

from __future__ import annotations

from exporter import model
from tests.sli.conftest import assert_exposition, replace, value


def test_replies_sock_and_l7_are_not_flows_of_the_service(make, examples):
    pipeline, registry = make()
    for i in ("05", "06", "07", "13"):
        pipeline.process(examples[i])
    pipeline.process(replace(examples["01"], is_reply=True))
    text_families = {m.name for m in registry.collect()}
    assert "kpr_service_flows" in text_families
    assert not any(
        s.value for m in registry.collect() if m.name == "kpr_service_flows" for s in m.samples
    )


def test_unattributed_drop_is_not_counted(make, examples):
    pipeline, registry = make()
    pipeline.process(replace(examples["12"], destination_service=None))
    assert [s for m in registry.collect() if m.name == "kpr_service_drops" for s in m.samples] == []


def test_aggregated_flows_count_several(make, examples):
    pipeline, registry = make()
    pipeline.process(replace(examples["01"], count=5))
    pipeline.process(replace(examples["12"], count=3))
    assert value(registry, "kpr_service_flows_total", namespace="shop", service="cart",
                 datapath="kube-proxy", verdict="FORWARDED") == 5
    assert value(registry, "kpr_service_drops_total", namespace="shop", service="empty",
                 datapath="ebpf", reason="SERVICE_BACKEND_NOT_FOUND") == 3


def test_unknown_numbers_stay_numbers(make, examples):
    pipeline, registry = make()
    pipeline.process(replace(examples["12"], drop_reason=206))
    pipeline.process(replace(examples["01"], verdict=42))
    assert value(registry, "kpr_service_drops_total", namespace="shop", service="empty",
                 datapath="ebpf", reason="206") == 1
    assert value(registry, "kpr_service_flows_total", namespace="shop", service="cart",
                 datapath="kube-proxy", verdict="42") == 1


def test_drop_takes_the_dropping_nodes_datapath(make, examples):
    pipeline, registry = make()
    pipeline.process(replace(examples["12"], node_name="node-a"))
    pipeline.process(replace(examples["12"], node_name="node-z"))
    for datapath in ("kube-proxy", "unknown"):
        assert value(registry, "kpr_service_drops_total", namespace="shop", service="empty",
                     datapath=datapath, reason="SERVICE_BACKEND_NOT_FOUND") == 1


def test_dropped_reply_attributed_through_source_service(make, examples):
    pipeline, registry = make()
    drop = replace(examples["05"], verdict=model.DROPPED, drop_reason=151, is_reply=None)
    pipeline.process(drop)
    assert value(registry, "kpr_service_drops_total", namespace="shop", service="cart",
                 datapath="kube-proxy", reason="STALE_OR_UNROUTABLE_IP") == 1


def test_whole_exposition_of_the_examples(make, examples):
    pipeline, registry = make()
    for flow in examples.values():
        pipeline.process(flow)
    assert_exposition(registry, """\
# TYPE kpr_service_flows_total counter
kpr_service_flows_total{namespace="shop",service="cart",datapath="kube-proxy",verdict="FORWARDED"} 1
kpr_service_flows_total{namespace="shop",service="cart",datapath="ebpf",verdict="FORWARDED"} 1
kpr_service_flows_total{namespace="shop",service="empty",datapath="ebpf",verdict="DROPPED"} 1
# TYPE kpr_service_drops_total counter
kpr_service_drops_total{namespace="shop",service="empty",datapath="ebpf",reason="SERVICE_BACKEND_NOT_FOUND"} 1
""")
