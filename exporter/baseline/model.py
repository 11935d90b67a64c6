"""The frozen pre-switch baseline and its JSON document.

A ``Baseline`` holds, per service, the kube-proxy datapath's counts over one window before
the first node switched (handshake bucket counts, attempts, flows, drops), so the judge can
compare whole distributions and rates later. Derived figures (p50/p90/p99, ratios) are
computed from the counts and written into the document for people; loading ignores them.
Pure module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.judge.histogram import histogram_quantile
from exporter.judge.history import Cohort, Window
from exporter.model import KUBE_PROXY

KIND: Final = "kpr-exporter/baseline"
VERSION: Final = 1
QUANTILES: Final = (0.5, 0.9, 0.99)

AUTO: Final = "auto"  # frozen when the first node switched
MANUAL: Final = "manual"  # captured by hand (kpr-exporter baseline capture)


class BaselineFormatError(ValueError):
    """A stored baseline document cannot be read."""


@dataclass(frozen=True)
class Baseline:
    """Per-service kube-proxy counts over ``window_start``..``window_end``, frozen at
    ``captured_at`` (epoch seconds)."""

    captured_at: float
    window_start: float
    window_end: float
    connect_bounds: tuple[float, ...]
    services: Mapping[tuple[str, str], Cohort] = field(default_factory=dict)
    source: str = AUTO
    datapath: str = KUBE_PROXY

    # --- what the judge reads (exporter.judge.driver.BaselineView) ----------------------

    def cohort(self, namespace: str, service: str) -> Cohort | None:
        return self.services.get((namespace, service))

    def service_names(self) -> Iterable[tuple[str, str]]:
        return self.services.keys()

    # --- derived figures -----------------------------------------------------------------

    def quantile(self, namespace: str, service: str, q: float) -> float:
        """Interpolated handshake quantile (NaN without handshakes or without the service)."""
        cohort = self.services.get((namespace, service))
        if cohort is None:
            return math.nan
        return histogram_quantile(q, self.connect_bounds, cohort.connect_counts)

    @staticmethod
    def ratios(cohort: Cohort) -> dict[str, float]:
        """Connect-failure, drop and KPR-sensitive drop ratios (NaN without exposure)."""
        flows = cohort.flow_exposure
        return {
            "connect_failure_ratio": cohort.failures / cohort.attempts if cohort.attempts else math.nan,
            "drop_ratio": cohort.drops / flows if flows else math.nan,
            "kpr_sensitive_drop_ratio": cohort.kpr_drops / flows if flows else math.nan,
        }

    # --- building --------------------------------------------------------------------------

    @classmethod
    def from_window(cls, window: Window, *, captured_at: float, min_connections: int,
                    min_flows: int, source: str = AUTO) -> Baseline:
        """The kube-proxy services of ``window`` with enough traffic to be worth keeping."""
        services: dict[tuple[str, str], Cohort] = {}
        for key in window.keys():
            if key.datapath != KUBE_PROXY or key.service == "__other__":
                continue
            cohort = window.cohort(key)
            if cohort is None:
                continue
            if cohort.connections >= min_connections or cohort.flows >= min_flows:
                services[(key.namespace, key.service)] = cohort
        return cls(captured_at, window.start, window.end, tuple(window.bounds), services, source)

    # --- document --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "version": VERSION,
            "source": self.source,
            "datapath": self.datapath,
            "captured_at": self.captured_at,
            "window": {"start": self.window_start, "end": self.window_end,
                       "seconds": self.window_end - self.window_start},
            "connect_bounds": list(self.connect_bounds),
            "services": [self._service_doc(ns, svc, c)
                         for (ns, svc), c in sorted(self.services.items())],
        }

    def _service_doc(self, namespace: str, service: str, cohort: Cohort) -> dict[str, Any]:
        quantiles = {str(q): _finite(histogram_quantile(q, self.connect_bounds,
                                                         cohort.connect_counts))
                     for q in QUANTILES}
        return {
            "namespace": namespace,
            "service": service,
            "connect_counts": list(cohort.connect_counts),
            "attempts": cohort.attempts,
            "established": cohort.established,
            "flows": cohort.flows,
            "drops": cohort.drops,
            "kpr_sensitive_drops": cohort.kpr_drops,
            # derived, for people; ignored when loading
            "connections": cohort.connections,
            "connect_duration_quantiles": quantiles,
            **{k: _finite(v) for k, v in self.ratios(cohort).items()},
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Baseline:
        try:
            if not isinstance(doc, Mapping) or doc.get("kind") != KIND:
                raise BaselineFormatError(f"not a baseline document (kind must be {KIND!r})")
            if doc.get("version") != VERSION:
                raise BaselineFormatError(f"unsupported baseline version {doc.get('version')!r}")
            bounds = tuple(float(b) for b in doc["connect_bounds"])
            services: dict[tuple[str, str], Cohort] = {}
            for item in doc["services"]:
                counts = tuple(int(c) for c in item["connect_counts"])
                if len(counts) != len(bounds) + 1:
                    raise BaselineFormatError(
                        f"{item['namespace']}/{item['service']}: {len(counts)} bucket counts "
                        f"for {len(bounds)} bounds")
                services[(str(item["namespace"]), str(item["service"]))] = Cohort(
                    counts, int(item["attempts"]), int(item["established"]), int(item["flows"]),
                    int(item["drops"]), int(item["kpr_sensitive_drops"]))
            window = doc["window"]
            return cls(float(doc["captured_at"]), float(window["start"]), float(window["end"]),
                       bounds, services, str(doc.get("source", AUTO)),
                       str(doc.get("datapath", KUBE_PROXY)))
        except BaselineFormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineFormatError(f"malformed baseline document: {exc!r}") from exc


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
