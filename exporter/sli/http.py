"""L7 HTTP: request latency and responses by status class, from Hubble response flows.

Only HTTP ``RESPONSE`` records count (``l7.latency_ns`` is non-zero only there),
and only those of the configured reporter: the client-side proxy (traffic
direction EGRESS, the default) or the server-side one (INGRESS). When L7 policy
applies on both ends each request is reported twice; keeping one reporter
counts it once. Latency 0 means "unknown" (no X-Request-Id, evicted request) and
is not observed; the response is still counted. Responses swap source and
destination, so the Service is the response's ``source_service``. Examples::

    kpr_service_request_duration_seconds_bucket{namespace="shop",service="cart",datapath="ebpf",protocol="http",le="0.005"} 977
    kpr_service_requests_total{namespace="shop",service="cart",datapath="ebpf",protocol="http",code_class="5xx"} 12
"""

from __future__ import annotations

from exporter.metrics_contract import SERVICE_REQUEST_DURATION, SERVICE_REQUESTS
from exporter.model import EGRESS, INGRESS, L7_RESPONSE, Flow
from exporter.sli.handler import SliHandler
from exporter.sli.settings import SliSettings

PROTOCOL = "http"
#: code // 100 -> code_class; anything else is "other".
_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


class Http(SliHandler):
    name = "http"

    def setup(self, settings: SliSettings) -> None:
        self._direction = EGRESS if settings.l7_reporter == "client" else INGRESS
        self._reporter = settings.l7_reporter
        self._duration = self.histogram(
            SERVICE_REQUEST_DURATION,
            "L7 request latency from Hubble response flows (l7.latency_ns).",
        )
        self._requests = self.counter(SERVICE_REQUESTS, "L7 responses, by status class.")

    def process(self, flow: Flow) -> None:
        l7 = flow.l7
        if l7 is None or l7.type != L7_RESPONSE or l7.protocol != PROTOCOL:
            return
        if flow.traffic_direction != self._direction:
            return
        ctx = self._ctx
        datapath = ctx.datapath(flow)
        svc = ctx.answered(flow, datapath)
        if svc is None:
            return
        count = flow.count
        code_class = _CLASSES.get(l7.code // 100, "other")
        self._requests.add(svc, (datapath, PROTOCOL, code_class), count)
        if l7.latency_ns > 0:
            self._duration.observe(svc, (datapath, PROTOCOL), l7.latency_ns / 1e9, count)

    def status(self) -> str:
        return f"http: L7 HTTP responses reported by the {self._reporter}-side proxy"
