"""Settings of the frozen pre-switch baseline (section ``baseline``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.config_constraints import at_least, not_empty, positive

FILE = "file"
CONFIGMAP = "configmap"
STORE_KINDS = (FILE, CONFIGMAP)


@dataclass(frozen=True)
class BaselineConfigMapSettings:
    """Where the ConfigMap store keeps the baseline."""

    namespace: str = field(
        default="kube-system", metadata={"help": "Namespace of the baseline ConfigMap.",
                                         "check": not_empty()},
    )
    name: str = field(
        default="kpr-exporter-baseline", metadata={"help": "Name of the baseline ConfigMap.",
                                                   "check": not_empty()},
    )


@dataclass(frozen=True)
class BaselineSettings:
    """How the pre-switch baseline is collected, frozen and kept."""

    window_seconds: float = field(
        default=3600.0,
        metadata={"help": "How much all-kube-proxy traffic before the first switch the baseline "
                          "covers (seconds).", "check": positive()},
    )
    min_connections: int = field(
        default=100,
        metadata={"help": "Handshakes a service needs in the window to get a baseline (or "
                          "min_flows flows).", "check": at_least(1)},
    )
    min_flows: int = field(
        default=100,
        metadata={"help": "Flows a service needs in the window to get a baseline (or "
                          "min_connections handshakes).", "check": at_least(1)},
    )
    store: str = field(
        default=FILE,
        metadata={"help": "Where the frozen baseline is persisted.", "choices": STORE_KINDS},
    )
    file: str = field(
        default="kpr-baseline.json",
        metadata={"help": "Baseline file of the file store (JSON, replaced atomically)."},
    )
    configmap: BaselineConfigMapSettings = field(default_factory=BaselineConfigMapSettings)
    exporter_url: str = field(
        default="",
        metadata={"help": "The running exporter `baseline capture` reads the snapshot from "
                          "(empty: web.listen_address of this configuration, on this machine).",
                  "flag": "--baseline.exporter-url"},
    )

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.store == FILE and not self.file:
            found.append("baseline.file must name a file when baseline.store is file")
        if self.exporter_url and not self.exporter_url.startswith(("http://", "https://")):
            found.append(f"baseline.exporter_url {self.exporter_url!r} is not an http:// or "
                         "https:// URL")
        return found
