"""The SLI engine: Hubble flows in, per-service SLIs (plain-dict accounting) out.

Pure core: no I/O, no gRPC/aiohttp/Kubernetes imports; prometheus_client is
used only for metric families at scrape time. Entry point::

    pipeline = Pipeline(settings.sli, registry, datapaths=resolver, directory=directory)
    pipeline.process(flow)          # per flow, synchronous
    pipeline.snapshot(now)          # SliSnapshot for the judge and the baseline

Handlers (``HANDLERS``): ``flows``, ``drops``, ``tcp``, ``http``; the metric
contract they implement is docs/metrics.md.
"""

from exporter.sli.errors import SliConfigError, SliError, UnknownHandlerError
from exporter.sli.handler import Handler
from exporter.sli.pipeline import Pipeline
from exporter.sli.registry import HANDLERS
from exporter.sli.settings import SliSettings
from exporter.sli.static import StaticDatapathResolver, StaticServiceDirectory

__all__ = [
    "HANDLERS",
    "Handler",
    "Pipeline",
    "SliConfigError",
    "SliError",
    "SliSettings",
    "StaticDatapathResolver",
    "StaticServiceDirectory",
    "UnknownHandlerError",
]
