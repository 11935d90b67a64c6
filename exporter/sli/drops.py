"""Dropped flows attributed to a Service, by drop reason.

The reason is the Hubble ``DropReason`` name, or the decimal number when this
version does not know it (proto3 enums are open). The ``datapath`` is that of
the dropping node. Aggregated flows count ``count`` times. Example::

    kpr_service_drops_total{namespace="shop",service="empty",datapath="ebpf",reason="SERVICE_BACKEND_NOT_FOUND"} 47
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporter.model import DROP_REASON_NAMES, DROPPED, L3_L4, Flow, enum_name
from exporter.sli.context import FlowContext
from exporter.sli.series import VecCollector
from exporter.sli.settings import SliSettings

#: Unknown reason numbers remembered as strings, at most this many.
_MAX_EXTRA_REASONS = 256


class Drops:
    name = "drops"

    def __init__(
        self, settings: SliSettings, registry: CollectorRegistry, context: FlowContext
    ) -> None:
        self._ctx = context
        self._vec = context.counter(
            "kpr_service_drops_total",
            "Dropped flows attributed to the service, by Hubble drop reason.",
            ("reason",),
        )
        registry.register(VecCollector((self._vec,)))
        self._reasons = dict(DROP_REASON_NAMES)  # enum_name() as a dict, for the hot path
        self._known = len(self._reasons)

    def process(self, flow: Flow) -> None:
        if flow.verdict != DROPPED or flow.type != L3_L4:
            return
        ctx = self._ctx
        svc = ctx.dropped(flow)
        if svc is None:
            return
        vec = self._vec
        cap = vec.cap
        if cap.members.get(svc) != cap.stamp:
            svc = cap.admit(svc)
        reason = self._reasons.get(flow.drop_reason)
        if reason is None:
            reason = self._reason_number(flow.drop_reason)
        key = (svc, ctx.datapath(flow), reason)
        values = vec.values
        values[key] = values.get(key, 0) + flow.count

    def _reason_number(self, number: int) -> str:
        text = enum_name(DROP_REASON_NAMES, number)
        if len(self._reasons) - self._known < _MAX_EXTRA_REASONS:
            self._reasons[number] = text
        return text

    def status(self) -> str:
        return "drops: dropped L3/L4 flows attributed to a Service, by reason"
