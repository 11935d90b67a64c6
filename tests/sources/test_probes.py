"""The probe results collector: every probe's ``kpr_probe_*`` families scraped over HTTP
(real probe expositions on 127.0.0.1) and served again with a ``probe`` label.

Matrix: two probes counting results against the same node stay apart (label ``probe``)
with their values as reported; the exporter's exposition reads back to the same matrix as
the probes read directly; a probe that answers 404, a body that is not a probe's, a
negative count and a histogram whose buckets are not cumulative each fail that probe's
scrape (``kpr_probes_up 0``, the error kind counted, none of its series served) while the
other probe keeps being served; the series cap drops and counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from exporter.model import EBPF, KUBE_PROXY
from exporter.sources.probes import ProbeCollector, ProbeScraper, parse_probe_metrics
from exporter.sources.probes_settings import ProbeSourceSettings
from exporter.verify import readback as rb
from exporter.verify import results as r
from exporter.verify.measure_metrics import MeasureMetrics
from exporter.verify.metrics import ProbeMetrics, ProbeStatus
from tests.sources.agent_harness import counters

DATAPATHS = {"worker-1": EBPF, "worker-2": KUBE_PROXY}


class Probe:
    """One probe's real metrics objects; ``text()`` is its /metrics body."""

    def __init__(self, node: str) -> None:
        self.registry = CollectorRegistry()
        self.metrics = ProbeMetrics(self.registry)
        self.status = ProbeStatus(node, self.registry)
        self.node = node

    def round(self, *results: r.CheckResult, at: float = 1000.0) -> None:
        self.metrics.observe(results)
        self.status.round_done(at, 1, {}, DATAPATHS)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def remote(probe: str, outcome: str = r.PASS, seconds: float = 0.0004) -> r.CheckResult:
    """``probe``'s NodePort check against worker-1 (counted against worker-1)."""
    return r.CheckResult(r.NODEPORT_REMOTE, probe, DATAPATHS[probe], "worker-1",
                         "10.0.0.1:30080", outcome, "an answer", "an answer", seconds, EBPF)


def local(probe: str) -> r.CheckResult:
    return r.CheckResult(r.CLUSTERIP_POD, probe, DATAPATHS[probe], "", "10.96.0.10:80", r.PASS,
                         "an answer", "an answer", 0.0009)


class Server:
    """A loopback HTTP server answering /<name>/metrics with a body made per request."""

    def __init__(self) -> None:
        self.bodies: dict[str, Callable[[], web.Response]] = {}
        self.runner: web.AppRunner | None = None
        self.port = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}/metrics"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}/metrics", self._route)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def _route(self, request: web.Request) -> web.Response:
        body = self.bodies.get(request.match_info["name"])
        if body is None:
            raise web.HTTPNotFound()
        return body()


def text(make: Callable[[], str]) -> Callable[[], web.Response]:
    return lambda: web.Response(text=make(), content_type="text/plain")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    await srv.start()
    yield srv
    assert srv.runner is not None
    await srv.runner.cleanup()


async def scrape(server: Server, names: list[str], **settings) -> tuple[ProbeScraper, str]:
    """One round of scrapes of ``names``; the exporter's exposition of it."""
    targets = {name: server.url(name) for name in names}
    conf = ProbeSourceSettings(static=targets, **settings)

    async def discover() -> dict[str, str]:
        return dict(targets)

    scraper = ProbeScraper(settings=conf, discover=discover, clock=lambda: 1000.0)
    registry = CollectorRegistry()
    registry.register(ProbeCollector(scraper))
    try:
        await scraper.scrape_once()
    finally:
        await scraper.aclose()
    return scraper, generate_latest(registry).decode()


async def test_two_probes_on_one_node_stay_apart_and_read_back_as_the_probes(server) -> None:
    pod_net, host_net = Probe("worker-2"), Probe("worker-2")
    pod_net.round(remote("worker-2"), remote("worker-2"), local("worker-2"))
    host_net.round(remote("worker-2", r.FAIL, 0.004))
    server.bodies = {"kpr-probe-a": text(pod_net.text), "kpr-probe-h": text(host_net.text)}

    _, exported = await scrape(server, ["kpr-probe-a", "kpr-probe-h"])

    checks = counters(exported, "kpr_probe_checks_total")
    key = (("check", r.NODEPORT_REMOTE), ("datapath", EBPF), ("node", "worker-1"))
    assert checks[(*key, ("probe", "kpr-probe-a"), ("result", r.PASS))] == 2
    assert checks[(*key, ("probe", "kpr-probe-h"), ("result", r.FAIL))] == 1
    buckets = counters(exported, "kpr_probe_duration_seconds_bucket")
    assert buckets[tuple(sorted((*key, ("le", "+Inf"), ("probe", "kpr-probe-h"))))] == 1
    rounds = counters(exported, "kpr_probe_rounds_total")
    assert rounds == {(("probe", "kpr-probe-a"), ("probe_node", "worker-2")): 1,
                      (("probe", "kpr-probe-h"), ("probe_node", "worker-2")): 1}
    assert set(counters(exported, "kpr_probes_up").values()) == {1.0}

    direct = rb.merged([rb.parse(pod_net.text(), "a"), rb.parse(host_net.text(), "h")])
    via = rb.parse(exported, "http://exporter")
    assert rb.to_matrix(via) == rb.to_matrix(direct)
    assert via.counts == direct.counts and via.buckets == direct.buckets
    assert sorted(via.probes) == [("kpr-probe-a", "worker-2"), ("kpr-probe-h", "worker-2")]


NOT_CUMULATIVE = """\
kpr_probe_duration_seconds_bucket{check="hostport",node="w",datapath="ebpf",le="0.001"} 5
kpr_probe_duration_seconds_bucket{check="hostport",node="w",datapath="ebpf",le="+Inf"} 3
kpr_probe_duration_seconds_sum{check="hostport",node="w",datapath="ebpf"} 0.01
"""


async def test_the_load_and_programming_measurements_are_served_as_reported(server) -> None:
    probe = Probe("worker-2")
    probe.round(local("worker-2"))
    measures = MeasureMetrics(probe.registry)
    for _ in range(3):
        measures.connection("worker-2", KUBE_PROXY, r.PASS, 0.0004)
    measures.connection("worker-2", KUBE_PROXY, r.FAIL, None)
    measures.stream("worker-2", KUBE_PROXY, r.PASS, 1_310_720, 5.0)
    measures.programmed("worker-2", KUBE_PROXY, 1.3)
    measures.missed("worker-2", KUBE_PROXY)
    server.bodies = {"kpr-probe-a": text(probe.text)}

    _, exported = await scrape(server, ["kpr-probe-a"])

    me = (("datapath", KUBE_PROXY), ("node", "worker-2"), ("probe", "kpr-probe-a"))
    connections = counters(exported, "kpr_probe_load_connections_total")
    assert connections == {(*me, ("result", r.PASS)): 3, (*me, ("result", r.FAIL)): 1}
    assert counters(exported, "kpr_probe_load_bytes_total") == {me: 1_310_720}
    assert counters(exported, "kpr_probe_load_seconds_total") == {me: 5.0}
    assert counters(exported, "kpr_probe_load_streams_total") == {(*me, ("result", r.PASS)): 1}
    assert counters(exported, "kpr_probe_programming_missed_total") == {me: 1}
    latency = counters(exported, "kpr_probe_programming_latency_seconds_bucket")
    assert latency[tuple(sorted((*me, ("le", "1.0"))))] == 0
    assert latency[tuple(sorted((*me, ("le", "2.5"))))] == 1
    assert counters(exported, "kpr_probe_programming_latency_seconds_sum") == {me: 1.3}
    assert counters(exported, "kpr_probe_load_connect_duration_seconds_count") == {me: 3}


MEASURE_NOT_CUMULATIVE = NOT_CUMULATIVE.replace("kpr_probe_duration_seconds",
                                                "kpr_probe_programming_latency_seconds")


@pytest.mark.parametrize("body, kind", [
    (None, "http"),
    ("cilium_version{version=\"1.17.0\"} 1\n", "parse"),
    ('kpr_probe_checks_total{check="hostport",node="w",datapath="ebpf",result="pass"} -1\n',
     "parse"),
    (NOT_CUMULATIVE, "parse"),
    (MEASURE_NOT_CUMULATIVE, "parse"),
], ids=["404", "not-a-probe", "negative-count", "not-cumulative", "measure-not-cumulative"])
async def test_a_bad_probe_fails_alone(server, body: str | None, kind: str) -> None:
    good = Probe("worker-2")
    good.round(local("worker-2"))
    server.bodies = {"good": text(good.text)}
    if body is not None:
        server.bodies["bad"] = text(lambda: body)

    scraper, exported = await scrape(server, ["good", "bad"])

    assert scraper.states()["bad"].error_kind == kind
    assert counters(exported, "kpr_probes_up") == {(("probe", "bad"),): 0.0,
                                                    (("probe", "good"),): 1.0}
    assert counters(exported, "kpr_probes_scrape_errors_total")[
        (("kind", kind), ("probe", "bad"))] == 1
    served = {dict(labels)["probe"] for labels in counters(exported, "kpr_probe_checks_total")}
    assert served == {"good"}
    assert set(scraper.snapshots()) == {"good"}


async def test_series_past_the_cap_are_dropped_and_counted(server) -> None:
    probe = Probe("worker-2")
    probe.round(local("worker-2"), remote("worker-2"))
    server.bodies = {"p": text(probe.text)}

    scraper, exported = await scrape(server, ["p"], max_series=3)

    assert scraper.states()["p"].up
    assert counters(exported, "kpr_probes_series_dropped_total")[(("probe", "p"),)] > 0
    assert len(counters(exported, "kpr_probe_checks_total")) <= 3


def test_parse_keeps_the_probe_values_as_reported() -> None:
    probe = Probe("worker-2")
    probe.round(remote("worker-2"), remote("worker-2", r.FAIL), local("worker-2"))
    snap = parse_probe_metrics(probe.text())
    assert snap.counts == {(r.NODEPORT_REMOTE, "worker-1", EBPF, r.PASS): 1.0,
                           (r.NODEPORT_REMOTE, "worker-1", EBPF, r.FAIL): 1.0,
                           (r.CLUSTERIP_POD, "worker-2", KUBE_PROXY, r.PASS): 1.0}
    [hist] = [h for h in snap.durations if h.label("check") == r.CLUSTERIP_POD]
    assert hist.count == 1 and hist.sum == pytest.approx(0.0009)
