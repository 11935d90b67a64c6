"""Settings of the judge (section ``judge``): windows, significance, traffic guards, thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from exporter.config_constraints import at_least, between, non_negative, positive
from exporter.judge.source_settings import PrometheusSourceSettings

#: Where the evidence comes from (``exporter.judge.evidence``).
SOURCES = ("in-process", "prometheus")


@dataclass(frozen=True)
class JudgeSettings:
    """How the judge compares eBPF nodes with kube-proxy nodes and with the frozen baseline.

    A service is "worse" on an SLI only when the difference is statistically significant,
    larger than the relative threshold *and* the absolute floor, and that holds in both the
    short and the long window.
    """

    short_window_seconds: float = field(
        default=300.0,
        metadata={"help": "Short comparison window (seconds); catches a regression quickly.",
                  "check": positive()},
    )
    long_window_seconds: float = field(
        default=1800.0,
        metadata={"help": "Long comparison window (seconds); must agree with the short one "
                          "before a verdict is worse, so a blip never rolls back.",
                  "check": positive()},
    )
    evaluation_interval_seconds: float = field(
        default=30.0, metadata={"help": "Seconds between two evaluations of every service.",
                                "check": positive()},
    )
    stale_after_seconds: float = field(
        default=90.0,
        metadata={"help": "The newest SLI snapshot older than this makes every verdict "
                          "inconclusive (the pipeline or its source stopped).",
                  "check": positive()},
    )
    alpha: float = field(
        default=0.0001,
        metadata={"help": "Significance level of each one-sided test (the latency SLI splits it "
                          "between its location and tail tests). Small on purpose: every "
                          "service is tested every interval, and a rollback needs "
                          "overwhelming evidence.", "check": between(0, 0.5, exclusive=True)},
    )
    min_connections: int = field(
        default=100,
        metadata={"help": "Handshakes (latency) or connection attempts (failures) each side "
                          "needs in a window before it is judged.", "check": at_least(1)},
    )
    min_flows: int = field(
        default=100, metadata={"help": "Flows each side needs in a window before drops are judged.",
                               "check": at_least(1)},
    )
    min_events: int = field(
        default=5,
        metadata={"help": "Drops or failed handshakes the eBPF side needs before a rise is "
                          "called worse (fewer is inconclusive).", "check": at_least(1)},
    )
    relative_threshold: float = field(
        default=0.10,
        metadata={"help": "Latency: smallest relative change that matters (0.10 = +10 % of the "
                          "control's median shift or p99).", "check": non_negative()},
    )
    absolute_floor_seconds: float = field(
        default=0.00025,
        metadata={"help": "Latency: smallest absolute change of a quantile that matters, in "
                          "seconds (0.3 ms -> 0.4 ms is harmless).", "check": non_negative()},
    )
    ratio_relative_threshold: float = field(
        default=0.5,
        metadata={"help": "Drops and connect failures: smallest relative rise of the ratio that "
                          "matters (0.5 = rate ratio 1.5).", "check": non_negative()},
    )
    drop_ratio_floor: float = field(
        default=0.002,
        metadata={"help": "Drops: smallest absolute rise of drops per flow that matters "
                          "(0.002 = 0.2 percentage points).", "check": non_negative()},
    )
    kpr_sensitive_drop_ratio_floor: float = field(
        default=0.001,
        metadata={"help": "KPR-sensitive drops (Service backend not found, ...): smallest "
                          "absolute rise of drops per flow that matters.", "check": non_negative()},
    )
    connect_failure_ratio_floor: float = field(
        default=0.002,
        metadata={"help": "Connect failures: smallest absolute rise of refused + timed-out "
                          "attempts per attempt that matters.", "check": non_negative()},
    )
    max_lost_share: float = field(
        default=0.01,
        metadata={"help": "Lost-events gate: a node whose Hubble lost more than this share of "
                          "its events in a window (lost / (lost + flows received)) leaves that "
                          "window's comparison, and the verdict names it (0.01 = 1 %).",
                  "check": between(0, 1)},
    )

    source: str = field(
        default="in-process",
        metadata={"help": "Where the judge reads its counts: in-process (this exporter's own "
                          "SLI snapshots; relay mode) or prometheus (the exporters' series summed "
                          "in Prometheus; node mode). The statistics are the same.",
                  "choices": SOURCES},
    )
    prometheus: PrometheusSourceSettings = field(default_factory=PrometheusSourceSettings)

    @property
    def history_seconds(self) -> float:
        """How much snapshot history the long window needs."""
        return self.long_window_seconds + 2 * self.evaluation_interval_seconds

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.long_window_seconds < self.short_window_seconds:
            found.append("judge.long_window_seconds must not be shorter than short_window_seconds")
        if self.source == "prometheus" and not self.prometheus.url:
            found.append("judge.source prometheus needs judge.prometheus.url")
        return found

    def statistics(self) -> dict[str, float]:
        """The settings every verdict depends on (not where the counts came from)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("source", "prometheus")}
