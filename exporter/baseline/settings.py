"""Settings of the frozen pre-switch baseline (section ``baseline``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

FILE = "file"
CONFIGMAP = "configmap"
STORE_KINDS = (FILE, CONFIGMAP)


@dataclass(frozen=True)
class BaselineConfigMapSettings:
    """Where the ConfigMap store keeps the baseline."""

    namespace: str = field(
        default="kube-system", metadata={"help": "Namespace of the baseline ConfigMap."},
    )
    name: str = field(
        default="kpr-exporter-baseline", metadata={"help": "Name of the baseline ConfigMap."},
    )

    def problems(self) -> list[str]:
        found = []
        if not self.namespace:
            found.append("baseline.configmap.namespace must not be empty")
        if not self.name:
            found.append("baseline.configmap.name must not be empty")
        return found


@dataclass(frozen=True)
class BaselineSettings:
    """How the pre-switch baseline is collected, frozen and kept."""

    window_seconds: float = field(
        default=3600.0,
        metadata={"help": "How much all-kube-proxy traffic before the first switch the baseline "
                          "covers (seconds)."},
    )
    min_connections: int = field(
        default=100,
        metadata={"help": "Handshakes a service needs in the window to get a baseline (or "
                          "min_flows flows)."},
    )
    min_flows: int = field(
        default=100,
        metadata={"help": "Flows a service needs in the window to get a baseline (or "
                          "min_connections handshakes)."},
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

    def problems(self) -> list[str]:
        found: list[str] = []
        if not (math.isfinite(self.window_seconds) and self.window_seconds > 0):
            found.append(f"baseline.window_seconds must be positive, got {self.window_seconds}")
        if self.min_connections < 1:
            found.append("baseline.min_connections must be at least 1")
        if self.min_flows < 1:
            found.append("baseline.min_flows must be at least 1")
        if self.store not in STORE_KINDS:
            found.append(f"baseline.store {self.store!r} is not one of {', '.join(STORE_KINDS)}")
        if self.store == FILE and not self.file:
            found.append("baseline.file must name a file when baseline.store is file")
        if self.store == CONFIGMAP:
            found.extend(self.configmap.problems())
        return found
