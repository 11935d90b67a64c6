"""Cardinality bounds: per-metric service caps, overflow, idle expiry (injected clock).

Matrix: services beyond the cap fold into ``__other__`` (namespace kept) and
count in ``kpr_label_overflow_total``; quiet services lose their series after
the idle time and free their place; an active service survives; the
``__other__`` group expires too.
"""

from __future__ import annotations

from exporter.model import ServiceRef
from tests.sli.conftest import replace, value


def flow_to(examples, namespace, name, **changes):
    return replace(examples["01"], destination_service=ServiceRef(namespace, name), **changes)


def flows(registry, namespace, service):
    return value(registry, "kpr_service_flows_total", namespace=namespace, service=service,
                 datapath="kube-proxy", verdict="FORWARDED")


def test_services_beyond_the_cap_fold_into_other(make, examples):
    pipeline, registry = make(max_services_per_metric=2)
    for name in ("a", "b", "c", "d"):
        pipeline.process(flow_to(examples, "shop", name))
    pipeline.process(flow_to(examples, "blog", "e"))
    assert flows(registry, "shop", "a") == 1
    assert flows(registry, "shop", "b") == 1
    assert flows(registry, "shop", "c") is None
    assert flows(registry, "shop", "__other__") == 2
    assert flows(registry, "blog", "__other__") == 1
    assert value(registry, "kpr_label_overflow_total", metric="kpr_service_flows_total") == 3
    assert value(registry, "kpr_label_overflow_total", metric="kpr_service_drops_total") == 0


def test_quiet_services_expire_and_free_their_place(make, examples, clock):
    pipeline, registry = make(max_services_per_metric=1, idle_seconds=600)
    pipeline.process(flow_to(examples, "shop", "a"))
    pipeline.process(flow_to(examples, "shop", "b"))  # folded
    clock.advance(300)
    pipeline.tick(clock())
    assert flows(registry, "shop", "a") == 1  # not idle yet
    clock.advance(400)
    pipeline.tick(clock())
    assert flows(registry, "shop", "a") is None
    assert flows(registry, "shop", "__other__") is None
    pipeline.process(flow_to(examples, "shop", "b"))
    assert flows(registry, "shop", "b") == 1


def test_an_active_service_is_kept(make, examples, clock):
    pipeline, registry = make(idle_seconds=600)
    for _ in range(4):
        pipeline.process(flow_to(examples, "shop", "a"))
        clock.advance(300)
        pipeline.tick(clock())
    assert flows(registry, "shop", "a") == 4


def test_expiry_runs_from_a_busy_stream_alone(make, examples, clock):
    pipeline, registry = make(idle_seconds=60)
    pipeline.process(flow_to(examples, "shop", "quiet"))
    clock.advance(120)
    for i in range(3000):  # the pipeline looks at the clock every so many flows
        pipeline.process(flow_to(examples, "shop", "busy", src_port=1000 + i))
    services = {s.labels["service"] for m in registry.collect()
                if m.name == "kpr_service_flows" for s in m.samples}
    assert services == {"busy"}
