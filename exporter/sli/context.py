"""The shared label context: datapath, Service attribution, metric storage and self-stats.

Every handler takes its label values from one ``FlowContext``, so names and
values cannot drift apart: ``namespace``, ``service``, ``datapath`` in that order
(``CONTEXT_LABELS``), then the handler's own labels. Attribution rules (see
docs/metrics.md, "How flows are attributed to a Service"):

* ``towards(flow)``: a non-reply flow's Service. Hubble's own
  ``destination_service`` first (kube-proxy: the pre-DNAT observation); else, for
  a flow leaving a local client endpoint, the KPR trace-sock link; else, on
  ``ebpf`` nodes only, the Service directory.
* ``dropped(flow)``: a drop's Service. ``destination_service``, ``source_service``,
  the trace-sock link, then the directory on any node (a drop is observed once,
  at the dropping node, so nothing is counted twice).
* ``answered(flow, datapath)``: the Service behind a reply (SYN-ACK, RST, L7
  response): ``source_service``, the link seen from the client's side, the
  directory on ``ebpf`` nodes.

Both per-flow lookups are memoised on the flow object, so several handlers
asking about the same flow pay once. Pure module.
"""

from __future__ import annotations

from collections.abc import Callable

from exporter.metrics_contract import Metric
from exporter.model import EBPF, Flow, ServiceRef
from exporter.roles import DatapathResolver, ServiceDirectory
from exporter.sli.links import SockLinks
from exporter.sli.series import CONTEXT_LABELS, CounterVec, HistogramVec, ServiceCap, Vec
from exporter.sli.settings import SliSettings

#: Tables whose size and evictions are exported.
TABLES = ("handshake", "sock_link")
#: (table, reason) pairs of ``kpr_connection_table_evictions_total``: why an entry left a
#: table without a judgement.
EVICTIONS = (
    ("handshake", "capacity"), ("handshake", "age"), ("handshake", "lost"),
    ("sock_link", "capacity"),
)


class SelfStats:
    """The engine's own counters, as plain dicts (exported by the pipeline)."""

    def __init__(self) -> None:
        self.overflow: dict[str, int] = {}  # metric -> folded samples
        self.errors: dict[str, int] = {}  # handler -> failed flows
        self.evictions: dict[tuple[str, str], int] = dict.fromkeys(EVICTIONS, 0)
        self.unattributed: dict[tuple[str, str], int] = {}  # (datapath, result) -> count
        self.entries: dict[str, Callable[[], int]] = {}  # table -> current size
        self.node_flows: dict[str, int] = {}  # node -> flows processed
        self.node_lost: dict[str, int] = {}  # node -> events Hubble reported lost there


class FlowContext:
    """Label values, attribution and metric storage shared by all handlers."""

    labels = CONTEXT_LABELS

    def __init__(
        self,
        settings: SliSettings,
        *,
        datapaths: DatapathResolver,
        directory: ServiceDirectory | None = None,
        stats: SelfStats | None = None,
    ) -> None:
        self.settings = settings
        self.stats = stats or SelfStats()
        self.links = SockLinks(
            ttl_seconds=settings.kpr_link_ttl_seconds,
            max_entries=settings.kpr_link_max_entries,
            evictions=self.stats.evictions,
        )
        self.stats.entries["sock_link"] = self.links.__len__
        self._resolver = datapaths
        self._directory = directory if settings.directory_fallback else None
        self.vecs: dict[str, Vec] = {}
        #: Wall-clock seconds of the last tick; stamps new table entries and services.
        self.stamp = 0.0
        self._dp_flow: Flow | None = None
        self._dp = ""
        self._to_flow: Flow | None = None
        self._to_svc: ServiceRef | None = None
        self._drop_flow: Flow | None = None
        self._drop_svc: ServiceRef | None = None

    # --- storage -----------------------------------------------------------------

    def counter(self, metric: Metric, help: str) -> CounterVec:
        """The storage of a flow-derived counter the metric contract declares."""
        vec = CounterVec(metric.name, help, metric.extra_labels, self._cap(metric.name))
        self.vecs[metric.name] = vec
        return vec

    def histogram(self, metric: Metric, help: str) -> HistogramVec:
        """The storage of a flow-derived histogram (the contract's buckets)."""
        vec = HistogramVec(metric.name, help, metric.extra_labels, self._cap(metric.name),
                           metric.buckets)
        self.vecs[metric.name] = vec
        return vec

    def _cap(self, name: str) -> ServiceCap:
        if name in self.vecs:
            raise ValueError(f"metric {name} is defined twice")
        cap = ServiceCap(name, self.settings.max_services_per_metric, self.stats.overflow)
        cap.stamp = self.stamp
        return cap

    def set_stamp(self, now: float) -> None:
        """A new tick: later samples and entries are stamped ``now``."""
        self.stamp = now
        for vec in self.vecs.values():
            vec.cap.stamp = now

    def expire_idle(self, idle_before: float) -> None:
        """Remove the series of every service quiet since ``idle_before``."""
        for vec in self.vecs.values():
            gone = vec.cap.expire(idle_before)
            if gone:
                vec.remove_services(gone)

    # --- labels --------------------------------------------------------------------

    def datapath(self, flow: Flow) -> str:
        """The datapath of the node that observed ``flow``."""
        if flow is not self._dp_flow:
            self._dp = self._resolver.datapath(flow.node_name)
            self._dp_flow = flow
        return self._dp

    def towards(self, flow: Flow) -> ServiceRef | None:
        """The Service a non-reply flow is headed to, or None."""
        if flow is self._to_flow:
            return self._to_svc
        svc = flow.destination_service
        if svc is None:
            src = flow.source
            if src is not None and src.endpoint_id:
                svc = self.links.lookup(
                    flow.node_name, flow.src_ip, flow.dst_ip, flow.dst_port, flow.time_ns
                )
                if svc is None and self._directory is not None and self.datapath(flow) == EBPF:
                    svc = self._from_directory(flow.dst_ip, flow.dst_port)
        self._to_flow = flow
        self._to_svc = svc
        return svc

    def dropped(self, flow: Flow) -> ServiceRef | None:
        """The Service a dropped flow belongs to, or None."""
        if flow is self._drop_flow:
            return self._drop_svc
        svc = flow.destination_service or flow.source_service
        if svc is None:
            svc = self.links.lookup(
                flow.node_name, flow.src_ip, flow.dst_ip, flow.dst_port, flow.time_ns
            )
            if svc is None and self._directory is not None:
                svc = self._from_directory(flow.dst_ip, flow.dst_port)
        self._drop_flow = flow
        self._drop_svc = svc
        return svc

    def answered(self, flow: Flow, datapath: str) -> ServiceRef | None:
        """The Service behind a reply flow (source = responder, destination = client)."""
        svc = flow.source_service
        if svc is None:
            svc = self.links.lookup(
                flow.node_name, flow.dst_ip, flow.src_ip, flow.src_port, flow.time_ns
            )
            if svc is None and self._directory is not None and datapath == EBPF:
                svc = self._from_directory(flow.src_ip, flow.src_port)
        return svc

    def reached(
        self, node: str, client_ip: str, dst_ip: str, dst_port: int, time_ns: int, datapath: str
    ) -> ServiceRef | None:
        """The Service a client reached at ``dst_ip:dst_port`` (no flow at hand, e.g. a timeout)."""
        svc = self.links.lookup(node, client_ip, dst_ip, dst_port, time_ns)
        if svc is None and self._directory is not None and datapath == EBPF:
            svc = self._from_directory(dst_ip, dst_port)
        return svc

    def _from_directory(self, ip: str, port: int) -> ServiceRef | None:
        directory = self._directory
        assert directory is not None
        return directory.service_for_frontend(ip, port) or directory.service_for_backend(ip, port)
