"""Dropped flows attributed to a Service, by drop reason.

The reason is the Hubble ``DropReason`` name, or the decimal number when this
version does not know it (proto3 enums are open). The ``datapath`` is that of
the dropping node. Aggregated flows count ``count`` times. Example::

    kpr_service_drops_total{namespace="shop",service="empty",datapath="ebpf",reason="SERVICE_BACKEND_NOT_FOUND"} 47
"""

from __future__ import annotations

from exporter.metrics_contract import DROP_REASON_NAMES, SERVICE_DROPS, drop_reason_name
from exporter.model import DROPPED, L3_L4, Flow
from exporter.sli.handler import SliHandler
from exporter.sli.settings import SliSettings

#: Unknown reason numbers remembered as strings, at most this many.
_MAX_EXTRA_REASONS = 256


class Drops(SliHandler):
    name = "drops"

    def setup(self, settings: SliSettings) -> None:
        self._vec = self.counter(
            SERVICE_DROPS, "Dropped flows attributed to the service, by Hubble drop reason."
        )
        self._reasons = dict(DROP_REASON_NAMES)  # drop_reason_name() as a dict, for the hot path
        self._known = len(self._reasons)

    def process(self, flow: Flow) -> None:
        if flow.verdict != DROPPED or flow.type != L3_L4:
            return
        ctx = self._ctx
        svc = ctx.dropped(flow)
        if svc is None:
            return
        reason = self._reasons.get(flow.drop_reason)
        if reason is None:
            reason = self._reason_number(flow.drop_reason)
        self._vec.add(svc, (ctx.datapath(flow), reason), flow.count)

    def _reason_number(self, number: int) -> str:
        text = drop_reason_name(number)
        if len(self._reasons) - self._known < _MAX_EXTRA_REASONS:
            self._reasons[number] = text
        return text

    def status(self) -> str:
        return "drops: dropped L3/L4 flows attributed to a Service, by reason"
