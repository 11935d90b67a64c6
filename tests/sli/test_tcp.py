"""TCP handshake SLI: connect duration and attempt outcomes.

Matrix: server-side-only observations, SYN-ACK not delivered to the endpoint,
non-TCP; kube-proxy and KPR examples observed at every point on both nodes
(one sample each, whole exposition); relay reordering; retransmitted SYNs;
RST (refused, counted once); timeouts on flow time (sweep, late SYN-ACK, no
timeouts while the stream is silent); wall-clock age, capacity and lost-event
evictions; unattributed connections; late attribution through trace-sock and
the directory.
"""

from __future__ import annotations

from exporter import model
from exporter.model import LostEvents, ServiceRef
from exporter.sli import StaticServiceDirectory
from tests.sli.conftest import assert_exposition, replace, value

CART = {"namespace": "shop", "service": "cart"}
KP_ORDER = ("01", "02", "03", "04", "05")
KPR_ORDER = ("06", "07", "08", "09", "10", "11")
S = 1_000_000_000


def feed(pipeline, examples, ids):
    for i in ids:
        pipeline.process(examples[i])


def attempts(registry, result, datapath, **svc):
    return value(registry, "kpr_service_connect_attempts_total",
                 **(svc or CART), datapath=datapath, result=result)


def entries(registry):
    return value(registry, "kpr_connection_table_entries", table="handshake")


# --- what must not count -------------------------------------------------------------


def test_server_side_observations_alone_count_nothing(make, examples):
    pipeline, registry = make()
    feed(pipeline, examples, ("03", "04", "09", "10"))
    assert entries(registry) == 0
    assert registry.get_sample_value(
        "kpr_service_connect_duration_seconds_count",
        {**CART, "datapath": "kube-proxy"}) is None


def test_syn_ack_not_delivered_to_the_client_endpoint_does_not_complete(make, examples):
    pipeline, registry = make()
    feed(pipeline, examples, ("01", "04"))
    pipeline.process(replace(examples["05"], observation_point=model.TO_STACK))
    assert attempts(registry, "established", "kube-proxy") is None
    assert entries(registry) == 1


def test_non_tcp_is_ignored(make, examples):
    pipeline, registry = make()
    pipeline.process(replace(examples["01"], protocol=model.UDP))
    assert entries(registry) == 0


# --- one sample per connection ----------------------------------------------------------


def test_both_datapaths_every_observation_point_whole_exposition(make, examples):
    pipeline, registry = make()
    feed(pipeline, examples, KP_ORDER + KPR_ORDER)
    kp = 'namespace="shop",service="cart",datapath="kube-proxy"'
    eb = 'namespace="shop",service="cart",datapath="ebpf"'
    bounds = ["2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
              "0.01", "0.025", "0.1", "0.5", "1.5", "3.5", "7.5", "+Inf"]
    lines = ["# TYPE kpr_service_connect_duration_seconds histogram"]
    for labels, first in ((kp, "0.0025"), (eb, "0.001")):
        hit = bounds.index(first)
        lines += [f'kpr_service_connect_duration_seconds_bucket{{{labels},le="{b}"}} '
                  f'{int(i >= hit)}' for i, b in enumerate(bounds)]
        lines.append(f"kpr_service_connect_duration_seconds_count{{{labels}}} 1")
    lines.append(f"kpr_service_connect_duration_seconds_sum{{{kp}}} 0.002000094")
    lines.append(f"kpr_service_connect_duration_seconds_sum{{{eb}}} 0.000799894")
    lines.append("# TYPE kpr_service_connect_attempts_total counter")
    lines.append(f'kpr_service_connect_attempts_total{{{kp},result="established"}} 1')
    lines.append(f'kpr_service_connect_attempts_total{{{eb},result="established"}} 1')
    assert_exposition(registry, "\n".join(lines) + "\n")
    assert entries(registry) == 0


def test_relay_reordering_across_nodes_still_counts_once(make, examples):
    pipeline, registry = make()
    feed(pipeline, examples, ("03", "04", "01", "02", "05"))
    assert attempts(registry, "established", "kube-proxy") == 1
    assert value(registry, "kpr_service_connect_duration_seconds_sum",
                 **CART, datapath="kube-proxy") == 0.002000094


def test_retransmitted_syn_keeps_the_first_timestamp(make, examples):
    pipeline, registry = make()
    syn = examples["01"]
    pipeline.process(syn)
    pipeline.process(replace(syn, time_ns=syn.time_ns + S))  # RTO 1 s
    pipeline.process(replace(examples["05"], time_ns=examples["05"].time_ns + S))
    labels = {**CART, "datapath": "kube-proxy"}
    assert value(registry, "kpr_service_connect_duration_seconds_sum", **labels) == 1.002000094
    assert value(registry, "kpr_service_connect_duration_seconds_bucket", **labels, le="0.5") == 0
    assert value(registry, "kpr_service_connect_duration_seconds_bucket", **labels, le="1.5") == 1


def test_same_node_client_and_server(make, examples):
    pipeline, registry = make()
    first = examples["01"]
    server = model.Endpoint("shop", "cart-0", 30002, 105)
    at_server = replace(examples["02"], observation_point=model.TO_ENDPOINT,
                        time_ns=first.time_ns + 20_000, destination=server)
    from_server = replace(examples["05"], observation_point=model.TO_STACK, source=server,
                          time_ns=first.time_ns + 40_000)
    to_client = replace(examples["05"], time_ns=first.time_ns + 60_000)
    for flow in (first, at_server, from_server, to_client):
        pipeline.process(flow)
    assert attempts(registry, "established", "kube-proxy") == 1
    assert value(registry, "kpr_service_connect_duration_seconds_sum",
                 **CART, datapath="kube-proxy") == 0.00006


# --- refused and timeout ------------------------------------------------------------------


def rst_for(syn_ack: model.Flow, **changes) -> model.Flow:
    return replace(syn_ack, tcp_flags=model.RST | model.ACK, **changes)


def test_rst_answering_the_syn_is_refused_once(make, examples):
    pipeline, registry = make()
    pipeline.process(examples["01"])
    pipeline.process(rst_for(examples["04"]))  # the server's node sees it first: not judged there
    pipeline.process(rst_for(examples["05"]))
    pipeline.process(rst_for(examples["05"], observation_point=model.TO_STACK))
    assert attempts(registry, "refused", "kube-proxy") == 1
    assert attempts(registry, "established", "kube-proxy") is None
    assert entries(registry) == 0


def test_timeout_is_judged_on_flow_time(make, examples):
    pipeline, registry = make(connect_timeout_seconds=10)
    syn = examples["01"]
    pipeline.process(syn)
    later = replace(syn, src_port=40002, time_ns=syn.time_ns + 11 * S)
    pipeline.process(later)  # the node's flow time passed the timeout: judged
    assert attempts(registry, "timeout", "kube-proxy") == 1
    pipeline.process(replace(examples["05"], time_ns=syn.time_ns + 12 * S))  # too late
    assert attempts(registry, "established", "kube-proxy") is None
    assert entries(registry) == 1  # the second connection is still pending


def test_syn_ack_after_the_timeout_is_a_timeout(make, examples):
    pipeline, registry = make(connect_timeout_seconds=10)
    syn = examples["01"]
    pipeline.process(syn)
    pipeline.process(replace(syn, src_port=40002, time_ns=syn.time_ns + 9_500_000_000))
    pipeline.process(replace(examples["05"], time_ns=syn.time_ns + 10_200_000_000))
    assert attempts(registry, "timeout", "kube-proxy") == 1
    assert attempts(registry, "established", "kube-proxy") is None


def test_a_silent_stream_produces_no_timeouts_only_age_evictions(make, examples, clock):
    pipeline, registry = make(connect_timeout_seconds=10, table_max_age_seconds=120)
    pipeline.process(examples["01"])
    clock.advance(60)
    pipeline.tick(clock())
    assert attempts(registry, "timeout", "kube-proxy") is None
    assert entries(registry) == 1
    clock.advance(61)  # the scrape ticks the pipeline
    assert entries(registry) == 0
    assert value(registry, "kpr_connection_table_evictions_total",
                 table="handshake", reason="age") == 1
    assert attempts(registry, "timeout", "kube-proxy") is None


def test_capacity_evicts_the_oldest(make, examples):
    pipeline, registry = make(table_max_entries=2)
    syn = examples["01"]
    for port in (1001, 1002, 1003):
        pipeline.process(replace(syn, src_port=port, time_ns=syn.time_ns + port))
    assert entries(registry) == 2
    assert value(registry, "kpr_connection_table_evictions_total",
                 table="handshake", reason="capacity") == 1
    pipeline.process(replace(examples["05"], dst_port=1001))  # evicted: nothing to pair
    pipeline.process(replace(examples["05"], dst_port=1003))
    assert attempts(registry, "established", "kube-proxy") == 1


def test_lost_events_drop_the_nodes_pending_entries_unjudged(make, examples):
    pipeline, registry = make()
    pipeline.process(examples["01"])
    pipeline.process(examples["08"])  # node-b
    pipeline.handle(LostEvents("node-a", source=3, count=7))
    pipeline.process(examples["05"])
    assert attempts(registry, "established", "kube-proxy") is None
    assert entries(registry) == 1
    assert value(registry, "kpr_connection_table_evictions_total",
                 table="handshake", reason="lost") == 1


# --- attribution -----------------------------------------------------------------------------


def test_unattributed_connection_is_counted_not_guessed(make, examples):
    directory = StaticServiceDirectory(backends={("10.0.2.21", 8080): ServiceRef("shop", "cart")})
    pipeline, registry = make(directory=directory)
    # A direct pod-to-pod connection on a kube-proxy node: no Service anywhere, and the
    # directory is not consulted there (it would turn pod traffic into Service traffic).
    pipeline.process(examples["02"])
    pipeline.process(replace(examples["05"], source_service=None, src_ip="10.0.2.21"))
    assert value(registry, "kpr_unattributed_connections_total",
                 datapath="kube-proxy", result="established") == 1
    assert attempts(registry, "established", "kube-proxy") is None


def test_kpr_without_trace_sock_or_directory_is_unattributed(make, examples):
    pipeline, registry = make()
    feed(pipeline, examples, ("08", "09", "10", "11"))
    assert value(registry, "kpr_unattributed_connections_total",
                 datapath="ebpf", result="established") == 1
    assert attempts(registry, "established", "ebpf") is None


def test_kpr_attributed_through_the_directory_fallback(make, examples):
    directory = StaticServiceDirectory(backends={("10.0.1.22", 8080): ServiceRef("shop", "cart")})
    pipeline, registry = make(directory=directory)
    feed(pipeline, examples, ("08", "09", "10", "11"))
    assert attempts(registry, "established", "ebpf") == 1


def test_kpr_trace_sock_after_the_syn_attributes_at_completion(make, examples):
    pipeline, registry = make()
    feed(pipeline, examples, ("08", "06", "07", "09", "10", "11"))
    assert attempts(registry, "established", "ebpf") == 1


def test_kpr_timeout_attributed_from_the_remembered_destination(make, examples):
    pipeline, registry = make(connect_timeout_seconds=1, table_max_age_seconds=5)
    feed(pipeline, examples, ("08", "06", "07"))  # the SYN had no Service yet
    nudge = replace(examples["08"], src_port=41002, time_ns=examples["08"].time_ns + 2 * S)
    pipeline.process(nudge)
    assert attempts(registry, "timeout", "ebpf") == 1


def test_capacity_takes_from_another_node_when_the_inserting_one_is_empty(make, examples):
    pipeline, registry = make(table_max_entries=1)
    pipeline.process(examples["01"])  # node-a
    pipeline.process(examples["08"])  # node-b: node-a's entry goes
    pipeline.process(examples["05"])
    assert attempts(registry, "established", "kube-proxy") is None
    assert entries(registry) == 1


def test_to_endpoint_known_only_from_the_trace_sub_type(make, examples):
    # Older agents leave trace_observation_point unset; trace sub-type 0 is TO_ENDPOINT.
    pipeline, registry = make()
    pipeline.process(examples["01"])
    pipeline.process(replace(examples["05"], observation_point=model.UNKNOWN_POINT,
                             event_type=model.EVENT_TRACE, event_sub_type=3,  # TO_STACK
                             time_ns=examples["05"].time_ns - 500_000))
    pipeline.process(replace(examples["05"], observation_point=model.UNKNOWN_POINT,
                             event_type=model.EVENT_TRACE, event_sub_type=0))
    assert attempts(registry, "established", "kube-proxy") == 1
    assert value(registry, "kpr_service_connect_duration_seconds_sum",
                 **CART, datapath="kube-proxy") == 0.002000094
