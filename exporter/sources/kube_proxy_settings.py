"""Settings of the kube-proxy metrics scraper (section ``kube_proxy``).

Like the agents': a static ``node=URL`` list, or the Kubernetes discovery of the kube-proxy
pods (``selector`` in ``namespace``; they run on the host network, so the pod IP is the
node's and ``port``/``path`` complete the URL). kube-proxy binds its metrics to
``127.0.0.1:10249`` unless its configuration sets ``metricsBindAddress: 0.0.0.0:10249``;
with the default, discovered targets cannot be reached from another pod and show as
``connect`` errors. Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.config_constraints import dns_label, http_path, not_empty, port, positive
from exporter.sources.agents_settings import target_problems, target_url


@dataclass(frozen=True)
class KubeProxySettings:
    enabled: bool = field(
        default=True,
        metadata={"help": "Scrape kube-proxy's own metrics (process CPU, rule sync duration, "
                          "network programming latency). Off: no kube-proxy scrape at all."},
    )
    static: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "help": "Comma list of node=URL kube-proxy metrics endpoints, for running without "
            "Kubernetes (e.g. worker-1=http://10.0.0.11:10249/metrics). Empty: discover the "
            "kube-proxy pods through the Kubernetes API.",
            "flag": "--kube-proxy.static",
        },
    )
    port: int = field(
        default=10249,
        metadata={"help": "Port of kube-proxy's /metrics on discovered pods (kube-proxy's "
                          "metricsBindAddress must not be 127.0.0.1 for a remote scrape).",
                  "check": port()},
    )
    path: str = field(
        default="/metrics", metadata={"help": "HTTP path of kube-proxy's metrics.",
                                      "check": http_path()}
    )
    interval_seconds: float = field(
        default=15.0, metadata={"help": "Seconds between two scrapes of every kube-proxy.",
                                "check": positive()}
    )
    timeout_seconds: float = field(
        default=5.0, metadata={"help": "Per-kube-proxy request timeout in seconds (body included).",
                               "check": positive()}
    )
    max_body_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata={"help": "Largest accepted (decompressed) kube-proxy /metrics body.",
                  "check": positive()},
    )
    max_series: int = field(
        default=500,
        metadata={"help": "Most series kept from one kube-proxy scrape (a real one has about "
                          "200 of the read families: two histograms per IP family).",
                  "check": positive()},
    )
    concurrency: int = field(
        default=64, metadata={"help": "At most this many kube-proxies are scraped at once.",
                              "check": positive()}
    )
    selector: str = field(
        default="k8s-app=kube-proxy",
        metadata={"help": "Label selector of the kube-proxy pods (discovery).",
                  "check": not_empty("e.g. k8s-app=kube-proxy")},
    )
    namespace: str = field(
        default="kube-system", metadata={"help": "Namespace of the kube-proxy pods (discovery).",
                                         "check": dns_label()}
    )
    node_name: str = field(
        default="",
        metadata={"help": "Discover only the kube-proxy on this node (node mode)."},
    )

    def url_for(self, host: str) -> str:
        """The metrics URL of a discovered kube-proxy at ``host`` (IPv6 is bracketed)."""
        return target_url(host, self.port, self.path)

    def problems(self) -> list[str]:
        return target_problems("kube_proxy", self)
