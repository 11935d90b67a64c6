"""Scrape every kube-proxy's own ``/metrics`` (port 10249): process CPU, rule sync duration,
last sync time and network programming latency, per node.

``KubeProxyScraper`` is the agent scraper (``exporter.sources.agents``) reading kube-proxy's
families: the same concurrency, per-target timeout and body limit, the body streamed
through an ``ExpositionFilter`` in a worker thread, the last good snapshot kept per node
with whether the last attempt worked and why not. Targets come from an injected
``discover()``: the static ``--kube-proxy.static`` list or the kube-proxy pods.

``ServiceDatapathCollector`` (``exporter.sources.kube_proxy_collector``) turns the last
scrapes of kube-proxy and of the agents into the per-node CPU and programming latency of
the node's Service datapath.
"""

from __future__ import annotations

from exporter.sources.agents import AgentScraper, static_discovery
from exporter.sources.kube_proxy_collector import ServiceDatapathCollector
from exporter.sources.kube_proxy_settings import KubeProxySettings
from exporter.sources.kube_proxy_text import (
    KUBE_PROXY_FAMILIES,
    KubeProxyScrapeError,
    KubeProxySnapshot,
    parse_kube_proxy_metrics,
)

__all__ = [
    "KubeProxyScrapeError", "KubeProxyScraper", "KubeProxySettings", "KubeProxySnapshot",
    "ServiceDatapathCollector", "parse_kube_proxy_metrics", "static_discovery",
]


class KubeProxyScraper(AgentScraper):
    """Scrapes all kube-proxies once per ``scrape_once()``; ``run()`` repeats it."""

    component = "kube-proxy"
    components = "kube-proxies"

    families = KUBE_PROXY_FAMILIES
