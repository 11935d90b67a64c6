"""Reading the families this project uses from kube-proxy's own ``/metrics`` (port 10249).

The same streaming ``ExpositionFilter`` as the agents' (``exporter.sources.agent_text``),
given kube-proxy's families: the process CPU, the rule sync duration histogram, the time of
the last successful sync and the network programming latency histogram. iptables, IPVS and
nftables modes all export these (``reference`` kube-proxy metrics); since Kubernetes 1.33
they carry an ``ip_family`` label (``IPv4``/``IPv6``, one series each on a dual-stack
node), before that none. Mode-specific families (``..._iptables_total``,
``..._nftables_sync_failures_total``) are not read.

Histograms are kept bucket by bucket as kube-proxy reported them; one whose buckets are
not cumulative fails the scrape with ``KubeProxyScrapeError("parse")``, as does a body
without any ``kubeproxy_`` sample. When the series cap cut the body short, a histogram
left incomplete by it is left out instead (the cap's counter says why). Pure module: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exporter.sources.agent_text import ExpositionFilter, Families, ScrapeError, Series
from exporter.sources.histogram_text import Histogram, InvalidHistogram, histograms

CPU_NAME = "process_cpu_seconds_total"
SYNC_DURATION_NAME = "kubeproxy_sync_proxy_rules_duration_seconds"
LAST_SYNC_NAME = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
PROGRAMMING_NAME = "kubeproxy_network_programming_duration_seconds"
WANTED = (
    CPU_NAME, LAST_SYNC_NAME,
    f"{SYNC_DURATION_NAME}_bucket", f"{SYNC_DURATION_NAME}_sum",
    f"{PROGRAMMING_NAME}_bucket", f"{PROGRAMMING_NAME}_sum",
)
IP_FAMILY = "ip_family"


class KubeProxyScrapeError(ScrapeError):
    """One kube-proxy could not be scraped; ``kind`` is one of ``ERROR_KINDS`` (or
    ``internal``)."""


@dataclass(frozen=True, slots=True)
class KubeProxySnapshot:
    """What one good scrape of kube-proxy said. Absent families are None / empty, not zero."""

    cpu_seconds: float | None  # process_cpu_seconds_total
    sync_duration: tuple[Histogram, ...]  # one per ip_family ("" before Kubernetes 1.33)
    programming: tuple[Histogram, ...]  # one per ip_family
    last_sync: dict[str, float]  # ip_family -> unix seconds of the last successful sync
    series_dropped: int = 0
    duplicates: int = 0


def _snapshot(series: Series, dropped: int, duplicates: int) -> KubeProxySnapshot:
    cpu = [value for (name, _), value in series.items() if name == CPU_NAME]
    if cpu and not (math.isfinite(cpu[0]) and cpu[0] >= 0):
        raise KubeProxyScrapeError("parse", f"{CPU_NAME} is {cpu[0]}, not a CPU time")
    try:
        sync = histograms(series, SYNC_DURATION_NAME, skip_invalid=dropped > 0)
        programming = histograms(series, PROGRAMMING_NAME, skip_invalid=dropped > 0)
    except InvalidHistogram as exc:
        raise KubeProxyScrapeError("parse", str(exc)) from None
    last_sync = {dict(labels).get(IP_FAMILY, ""): value
                 for (name, labels), value in series.items() if name == LAST_SYNC_NAME}
    return KubeProxySnapshot(
        cpu_seconds=cpu[0] if cpu else None, sync_duration=sync, programming=programming,
        last_sync=last_sync, series_dropped=dropped, duplicates=duplicates)


#: kube-proxy's read families, for ``ExpositionFilter(families=...)``.
KUBE_PROXY_FAMILIES = Families(
    WANTED, marker="kubeproxy_", missing="no kube-proxy metrics in the body",
    build=_snapshot, error=KubeProxyScrapeError)


def parse_kube_proxy_metrics(text: str, *, max_series: int = 2000) -> KubeProxySnapshot:
    """Read a whole exposition text at once (the incremental path's reference)."""
    reader = ExpositionFilter(max_series=max_series, families=KUBE_PROXY_FAMILIES)
    reader.feed(text.encode())
    snapshot: KubeProxySnapshot = reader.finish()
    return snapshot
