"""The verification probes' results in the exporter (part of the composition root).

``ProbeResults`` scrapes every probe (``exporter.sources.probes``), serves their families
again from the exporter's ``/metrics``, and hands their results to the judge as the
``kpr-probe`` pseudo-services (``exporter.judge.probes``). Targets: the static
``--probes.static`` list, or with ``probes.enabled`` the probe pods from the Kubernetes
API (``exporter.probe_pods``), keyed by pod name (a node runs two probes).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry

from exporter import probe_pods
from exporter.judge.probes import ProbeReading, ProbeTotals, with_probes
from exporter.kube.client import KubeClient
from exporter.roles import Clock
from exporter.snapshot import SliSnapshot
from exporter.sources.probe_text import ProbeSnapshot
from exporter.sources.probes import ProbeCollector, ProbeScraper, static_discovery
from exporter.sources.probes_settings import ProbeSourceSettings

log = logging.getLogger(__name__)


class ProbeResults:
    """The probe scraper, its collector and the judge's running totals."""

    def __init__(self, settings: ProbeSourceSettings, *, kube: KubeClient | None,
                 registry: CollectorRegistry, clock: Clock,
                 sleep: Callable[[float], Awaitable[Any]]) -> None:
        self.settings = settings
        self._kube = kube
        discover = static_discovery(settings.static) if settings.static else self.discover
        self.scraper = ProbeScraper(settings=settings, discover=discover, clock=clock,
                                    sleep=sleep)
        registry.register(ProbeCollector(self.scraper))
        self._totals: ProbeTotals | None = None

    @classmethod
    def build(cls, settings: ProbeSourceSettings, *, kube: KubeClient | None, collects: bool,
              **kwargs: Any) -> ProbeResults | None:
        """The collector when this instance collects and has probes to read, else None."""
        if not collects or not settings.active:
            return None
        if not settings.static and kube is None:
            log.warning("probes.enabled without Kubernetes access and without probes.static: "
                        "no probe results are collected")
            return None
        return cls(settings, kube=kube, **kwargs)

    async def discover(self) -> dict[str, str]:
        """Running probe pods -> {pod name: metrics URL} (``exporter.probe_pods``)."""
        assert self._kube is not None
        return await probe_pods.discover(self._kube, self.settings)

    def judge_snapshot(self, snapshot: SliSnapshot) -> SliSnapshot:
        """``snapshot`` with the probes' results so far as ``kpr-probe`` pseudo-services."""
        if self._totals is None or self._totals.bounds != tuple(snapshot.connect_bounds):
            self._totals = ProbeTotals(snapshot.connect_bounds)
        states = self.scraper.states()
        readings = {name: reading(snap) for name, snap in self.scraper.snapshots().items()}
        self._totals.observe(readings, known=states.keys())
        return with_probes(snapshot, self._totals.services())


def reading(snapshot: ProbeSnapshot) -> ProbeReading:
    """What the judge reads of one probe's scrape."""
    buckets = {(h.label("check"), h.label("node"), h.label("datapath")):
               tuple((float(le), count) for le, count in h.buckets) for h in snapshot.durations}
    return ProbeReading(dict(snapshot.counts), buckets)
