"""Settings of the probe results collector (section ``probes``).

The exporter reads the ``kpr_probe_*`` families of every ``kpr-exporter probe`` and serves
them again, so Prometheus, the alerts and ``kpr-exporter verify --exporter-url`` need one
place only. Targets are a static ``name=URL`` list (no Kubernetes needed), or, with
``enabled``, the probe pods found by ``selector`` in ``namespace``: two per node (one in the
pod network, one on the host network), each keyed by its pod name. A discovered pod's URL
uses its container port named ``metrics`` when it declares one, else ``port``.
Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.config_constraints import dns_label, http_path, not_empty, port, positive
from exporter.sources.agents_settings import target_problems, target_url

DEFAULT_SELECTOR = "app.kubernetes.io/name=kpr-exporter,app.kubernetes.io/component=probe"


@dataclass(frozen=True)
class ProbeSourceSettings:
    enabled: bool = field(
        default=False,
        metadata={"help": "Discover the probe pods through the Kubernetes API and collect "
                          "their results (a static list collects without it)."},
    )
    static: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "help": "Comma list of name=URL probe metrics endpoints, for running without "
            "Kubernetes (e.g. worker-1=http://10.0.0.11:9978/metrics,"
            "worker-1-host=http://10.0.0.11:9979/metrics). The name is the probe label of "
            "the re-exported series. Empty: discover the probe pods when enabled.",
            "flag": "--probes.static",
        },
    )
    port: int = field(
        default=9978,
        metadata={"help": "Port of a discovered probe's /metrics when its pod declares no "
                          "container port named metrics.", "check": port()},
    )
    path: str = field(default="/metrics", metadata={"help": "HTTP path of the probes' metrics.",
                                                    "check": http_path()})
    interval_seconds: float = field(
        default=15.0, metadata={"help": "Seconds between two scrapes of every probe.",
                                "check": positive()}
    )
    timeout_seconds: float = field(
        default=5.0, metadata={"help": "Per-probe request timeout in seconds (body included).",
                               "check": positive()}
    )
    max_body_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata={"help": "Largest accepted (decompressed) probe /metrics body.",
                  "check": positive()},
    )
    max_series: int = field(
        default=5000,
        metadata={"help": "Most kpr_probe_* series kept from one probe's scrape (a probe has "
                          "about checks x nodes x (results + buckets)); further ones are "
                          "dropped and counted in kpr_probes_series_dropped_total.",
                  "check": positive()},
    )
    concurrency: int = field(
        default=64, metadata={"help": "At most this many probes are scraped at once.",
                              "check": positive()}
    )
    selector: str = field(
        default=DEFAULT_SELECTOR,
        metadata={"help": "Label selector of the probe pods (discovery).",
                  "check": not_empty("e.g. " + DEFAULT_SELECTOR)},
    )
    namespace: str = field(
        default="kube-system", metadata={"help": "Namespace of the probe pods (discovery).",
                                         "check": dns_label()}
    )
    node_name: str = field(
        default="",
        metadata={"help": "Discover only the probes on this node (node mode)."},
    )

    @property
    def active(self) -> bool:
        """Whether probe results are collected at all."""
        return self.enabled or bool(self.static)

    def url_for(self, host: str, port: int | None = None) -> str:
        """The metrics URL of a discovered probe at ``host`` (IPv6 is bracketed)."""
        return target_url(host, port or self.port, self.path)

    def problems(self) -> list[str]:
        return target_problems("probes", self)
