"""The standard exporter metrics: build information, process and platform.

``kpr_exporter_build_info{version, revision, python_version} 1`` plus
prometheus_client's process collector (``process_*``: CPU, memory, file
descriptors, start time) and platform collector (``python_info``), so the usual
exporter alerts (memory, restarts, file descriptors) work. The revision is set
when the image is built (``KPR_BUILD_REVISION``); it is never read from git.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector

from exporter import __version__

REVISION_ENV = "KPR_BUILD_REVISION"


def revision(environ: Mapping[str, str] | None = None) -> str:
    """The source revision recorded at build time, or ``unknown``."""
    env = os.environ if environ is None else environ
    return env.get(REVISION_ENV, "").strip() or "unknown"


def register(registry: CollectorRegistry, environ: Mapping[str, str] | None = None) -> None:
    """Add the build info gauge and the process and platform collectors to ``registry``."""
    info = Gauge("kpr_exporter_build_info",
                 "Always 1; the labels name the running build.",
                 ["version", "revision", "python_version"], registry=registry)
    info.labels(__version__, revision(environ), platform.python_version()).set(1)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
