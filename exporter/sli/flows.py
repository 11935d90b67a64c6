"""Flows towards each Service, by verdict: the denominator of drop ratios.

Counts L3/L4 flows that are not replies and that the context attributes to a
Service (drops through the drop rule, so every drop in ``kpr_service_drops_total``
is also here under ``verdict="DROPPED"``). Aggregated flows count ``count`` times.
Example::

    kpr_service_flows_total{namespace="shop",service="cart",datapath="kube-proxy",verdict="FORWARDED"} 52311
"""

from __future__ import annotations

from exporter.metrics_contract import SERVICE_FLOWS
from exporter.model import DROPPED, L3_L4, VERDICT_NAMES, Flow
from exporter.sli.handler import SliHandler
from exporter.sli.settings import SliSettings

#: Verdict names remembered, unknown numbers included (bounds the dict).
_MAX_VERDICTS = 64


class Flows(SliHandler):
    name = "flows"

    def setup(self, settings: SliSettings) -> None:
        self._vec = self.counter(SERVICE_FLOWS, "Flows towards the service, by Hubble verdict.")
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
        verdict = self._verdicts.get(flow.verdict)
        if verdict is None:
            verdict = str(flow.verdict)
            if len(self._verdicts) < _MAX_VERDICTS:
                self._verdicts[flow.verdict] = verdict
        self._vec.add(svc, (ctx.datapath(flow), verdict), flow.count)

    def status(self) -> str:
        return "flows: L3/L4 flows towards a Service, by verdict"
