"""L7 HTTP SLI: request duration and responses by status class.

Matrix: request records, DNS, the other reporter's copy, unattributed
responses are not counted; latency 0 counts the response but observes nothing;
status classes incl. "other"; reporter "server"; aggregated responses; KPR
response attributed through the port-less trace-sock link; whole exposition.
"""

from __future__ import annotations

from exporter import model
from exporter.model import L7Http
from tests.sli.conftest import assert_exposition, replace, value

LABELS = {"namespace": "shop", "service": "cart", "datapath": "kube-proxy", "protocol": "http"}


def response(flow, **l7):
    record = flow.l7
    return replace(flow, l7=L7Http(**{
        "type": record.type, "latency_ns": record.latency_ns, "code": record.code,
        "method": record.method, "protocol": record.protocol, **l7,
    }))


def requests(registry, code_class, **labels):
    return value(registry, "kpr_service_requests_total", **{**LABELS, **labels},
                 code_class=code_class)


def test_requests_dns_and_the_other_reporter_are_not_counted(make, examples):
    pipeline, registry = make()
    l7 = examples["13"]
    pipeline.process(response(l7, type=model.L7_REQUEST, latency_ns=0, code=0))
    pipeline.process(response(l7, protocol="dns"))
    pipeline.process(replace(l7, traffic_direction=model.INGRESS))  # server-side proxy copy
    pipeline.process(replace(l7, source_service=None))  # nothing attributes it
    assert [s for m in registry.collect() if m.name.startswith("kpr_service_request")
            for s in m.samples] == []


def test_unknown_latency_counts_the_response_only(make, examples):
    pipeline, registry = make()
    pipeline.process(response(examples["13"], latency_ns=0, code=503))
    assert requests(registry, "5xx") == 1
    assert value(registry, "kpr_service_request_duration_seconds_count", **LABELS) is None


def test_status_classes(make, examples):
    pipeline, registry = make()
    for code in (101, 204, 302, 404, 500, 0, 600):
        pipeline.process(response(examples["13"], code=code))
    for cls in ("1xx", "2xx", "3xx", "4xx", "5xx"):
        assert requests(registry, cls) == 1
    assert requests(registry, "other") == 2


def test_server_reporter_counts_the_ingress_copy_only(make, examples):
    pipeline, registry = make(l7_reporter="server")
    l7 = examples["13"]
    pipeline.process(l7)
    pipeline.process(replace(l7, traffic_direction=model.INGRESS, node_name="node-b"))
    assert requests(registry, "2xx", datapath="ebpf") == 1
    assert requests(registry, "2xx") is None


def test_aggregated_responses(make, examples):
    pipeline, registry = make()
    pipeline.process(replace(examples["13"], count=4))
    assert requests(registry, "2xx") == 4
    assert value(registry, "kpr_service_request_duration_seconds_count", **LABELS) == 4
    assert value(registry, "kpr_service_request_duration_seconds_sum", **LABELS) == 0.02


def test_kpr_response_attributed_through_the_trace_sock_link(make, examples):
    pipeline, registry = make()
    pipeline.process(examples["06"])
    pipeline.process(examples["07"])
    kpr = replace(examples["13"], node_name="node-b", source_service=None,
                  src_ip="10.0.1.22", dst_ip="10.0.2.5", time_ns=examples["07"].time_ns + 1000)
    pipeline.process(kpr)
    assert requests(registry, "2xx", datapath="ebpf") == 1


def test_whole_exposition(make, examples):
    pipeline, registry = make()
    pipeline.process(examples["12"])
    pipeline.process(examples["13"])
    labels = 'namespace="shop",service="cart",datapath="kube-proxy",protocol="http"'
    bounds = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
              "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]
    buckets = "".join(
        f'kpr_service_request_duration_seconds_bucket{{{labels},le="{b}"}} {int(i >= 3)}\n'
        for i, b in enumerate(bounds)
    )
    assert_exposition(registry, f"""\
# TYPE kpr_service_request_duration_seconds histogram
{buckets}kpr_service_request_duration_seconds_count{{{labels}}} 1
kpr_service_request_duration_seconds_sum{{{labels}}} 0.005
# TYPE kpr_service_requests_total counter
kpr_service_requests_total{{{labels},code_class="2xx"}} 1
""")
