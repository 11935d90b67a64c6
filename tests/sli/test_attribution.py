"""Service attribution shared by the handlers (``FlowContext`` and the trace-sock links).

Matrix: kube-proxy pre-DNAT observation counted once (post-DNAT and server-side
observations not again, directory or not); KPR trace-sock pairing in either
order, per node and cookie, TTL; PRE without a Service; the directory fallback
only on eBPF nodes for flows, on any node for drops; port-less lookups (L7) and
ambiguous port-less links; link table capacity.
"""

from __future__ import annotations

from exporter.model import ServiceRef
from exporter.sli import StaticServiceDirectory
from tests.sli.conftest import replace, value

CART = ServiceRef("shop", "cart")
S = 1_000_000_000


def flows(registry, datapath, service="cart", verdict="FORWARDED"):
    return value(registry, "kpr_service_flows_total", namespace="shop", service=service,
                 datapath=datapath, verdict=verdict)


def test_kube_proxy_counts_the_pre_dnat_observation_only(make, examples):
    directory = StaticServiceDirectory(backends={("10.0.2.21", 8080): CART})
    pipeline, registry = make(directory=directory)
    for i in ("01", "02", "03", "04", "05"):
        pipeline.process(examples[i])
    assert flows(registry, "kube-proxy") == 1
    assert flows(registry, "ebpf") is None


def test_kpr_trace_sock_links_the_backend_to_the_service(make, examples):
    pipeline, registry = make()
    for i in ("06", "07", "08", "09", "10", "11"):
        pipeline.process(examples[i])
    assert flows(registry, "ebpf") == 1  # the client's SYN; not the server-side observation
    assert value(registry, "kpr_connection_table_entries", table="sock_link") == 1


def test_trace_sock_events_pair_in_either_order(make, examples):
    pipeline, registry = make()
    for i in ("07", "06", "08"):
        pipeline.process(examples[i])
    assert flows(registry, "ebpf") == 1


def test_trace_sock_pairs_only_the_same_cookie_on_the_same_node(make, examples):
    pipeline, registry = make()
    pipeline.process(examples["06"])
    pipeline.process(replace(examples["07"], socket_cookie=90002))
    pipeline.process(replace(examples["07"], node_name="node-c"))
    pipeline.process(examples["08"])
    assert flows(registry, "ebpf") is None


def test_pre_translation_without_a_service_links_nothing(make, examples):
    pipeline, registry = make()
    pipeline.process(replace(examples["06"], destination_service=None))
    pipeline.process(examples["07"])
    pipeline.process(examples["08"])
    assert flows(registry, "ebpf") is None


def test_links_expire_after_their_ttl(make, examples):
    pipeline, registry = make(kpr_link_ttl_seconds=5)
    pipeline.process(examples["06"])
    pipeline.process(examples["07"])
    syn = examples["08"]
    pipeline.process(replace(syn, time_ns=syn.time_ns + 4 * S))
    pipeline.process(replace(syn, src_port=41002, time_ns=syn.time_ns + 6 * S))
    assert flows(registry, "ebpf") == 1


def test_directory_fallback_on_ebpf_nodes_only(make, examples):
    directory = StaticServiceDirectory(
        backends={("10.0.1.22", 8080): CART, ("10.0.2.21", 8080): CART}
    )
    pipeline, registry = make(directory=directory)
    pipeline.process(examples["08"])  # eBPF client, no trace-sock: the directory attributes
    pipeline.process(examples["02"])  # kube-proxy post-DNAT: never the directory
    assert flows(registry, "ebpf") == 1
    assert flows(registry, "kube-proxy") is None


def test_directory_fallback_can_be_switched_off(make, examples):
    directory = StaticServiceDirectory(backends={("10.0.1.22", 8080): CART})
    pipeline, registry = make(directory=directory, directory_fallback=False)
    pipeline.process(examples["08"])
    assert flows(registry, "ebpf") is None


def test_drops_use_the_directory_on_any_node(make, examples):
    directory = StaticServiceDirectory(backends={("10.0.2.21", 8080): CART})
    pipeline, registry = make(directory=directory)
    drop = replace(examples["02"], verdict=2, drop_reason=133, is_reply=None)
    pipeline.process(drop)
    assert value(registry, "kpr_service_drops_total", namespace="shop", service="cart",
                 datapath="kube-proxy", reason="POLICY_DENIED") == 1


def test_portless_lookup_and_ambiguous_backends(make, examples):
    pipeline, _ = make()
    links = pipeline.context.links
    t = examples["08"].time_ns
    links.link("node-b", "10.0.2.5", "10.0.1.22", 8080, CART, t)
    assert links.lookup("node-b", "10.0.2.5", "10.0.1.22", 0, t) == CART
    links.link("node-b", "10.0.2.5", "10.0.1.22", 9090, ServiceRef("shop", "admin"), t)
    assert links.lookup("node-b", "10.0.2.5", "10.0.1.22", 0, t) is None
    assert links.lookup("node-b", "10.0.2.5", "10.0.1.22", 9090, t) == ServiceRef("shop", "admin")


def test_link_table_is_bounded(make, examples):
    pipeline, registry = make(kpr_link_max_entries=2)
    pre, post = examples["06"], examples["07"]
    for cookie in range(1, 5):
        pipeline.process(replace(pre, socket_cookie=cookie, src_ip=f"10.0.2.{cookie}"))
        pipeline.process(replace(post, socket_cookie=cookie, src_ip=f"10.0.2.{cookie}"))
    assert value(registry, "kpr_connection_table_entries", table="sock_link") <= 4
    assert value(registry, "kpr_connection_table_evictions_total",
                 table="sock_link", reason="capacity") >= 2


def test_a_repeated_trace_sock_event_waits_for_its_partner(make, examples):
    pipeline, registry = make()
    for i in ("06", "06", "07", "08"):
        pipeline.process(examples[i])
    assert flows(registry, "ebpf") == 1
