"""Flows towards each Service, by verdict: the denominator of drop ratios.

Counts L3/L4 flows that are not replies and that the context attributes to a
Service (drops through the drop rule, so every drop in ``kpr_service_drops_total``
is also here under ``verdict="DROPPED"``). Aggregated flows count ``count`` times.
Example::

    kpr_service_flows_total{namespace="shop",service="cart",datapath="kube-proxy",verdict="FORWARDED"} 52311
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporter.model import DROPPED, L3_L4, VERDICT_NAMES, Flow
from exporter.sli.context import FlowContext
from exporter.sli.series import VecCollector
from exporter.sli.settings import SliSettings

#: Verdict names remembered, unknown numbers included (bounds the dict).
_MAX_VERDICTS = 64


class Flows:
    name = "flows"

    def __init__(
        self, settings: SliSettings, registry: CollectorRegistry, context: FlowContext
    ) -> None:
        self._ctx = context
        self._vec = context.counter(
            "kpr_service_flows_total",
            "Flows towards the service, by Hubble verdict.",
            ("verdict",),
        )
        registry.register(VecCollector((self._vec,)))
        self._verdicts = dict(VERDICT_NAMES)

    def process(self, flow: Flow) -> None:
        if flow.type != L3_L4:
            return
        ctx = self._ctx
        if flow.verdict == DROPPED:
            svc = ctx.dropped(flow)
        elif flow.is_reply:
            return
        else:
            svc = ctx.towards(flow)
        if svc is None:
            return
        vec = self._vec
        cap = vec.cap
        if cap.members.get(svc) != cap.stamp:
            svc = cap.admit(svc)
        verdict = self._verdicts.get(flow.verdict)
        if verdict is None:
            verdict = str(flow.verdict)
            if len(self._verdicts) < _MAX_VERDICTS:
                self._verdicts[flow.verdict] = verdict
        key = (svc, ctx.datapath(flow), verdict)
        values = vec.values
        values[key] = values.get(key, 0) + flow.count

    def status(self) -> str:
        return "flows: L3/L4 flows towards a Service, by verdict"
