"""What the demo prints every interval: phase, flows/s per node, handshake p50/p99 per
datapath, the judge's verdicts, the alerts and the rollback state.

A rollback plan is printed when it changes, not at every summary; with the real stack the
summary shows which rollback alerts Prometheus has pending or firing and how Alertmanager's
deliveries to the webhook went.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from exporter.demo.localstack import LocalStack
from exporter.demo.processes import LocalStackError
from exporter.demo.text import INCONCLUSIVE_LEGEND, gloss, merged_counts
from exporter.judge.histogram import histogram_quantile
from exporter.judge.verdict import CANARY_VS_CONTROL, WORSE
from exporter.metrics_contract import HUBBLE_RECONNECTS, WEBHOOK_REQUESTS
from exporter.model import DATAPATHS
from exporter.snapshot import SliSnapshot


class Summary:
    """The summary of one demo: ``exporter`` and ``simulator`` are the demo's, ``elapsed``
    its seconds since start on the demo's clock."""

    def __init__(self, exporter: Any, simulator: Any, *, interval: float,
                 elapsed: Callable[[], float]) -> None:
        self.exporter = exporter
        self.simulator = simulator
        self.interval = interval
        self.elapsed = elapsed
        self._accepted_seen = 0.0
        self._plan_shown: tuple[str, float] | None = None  # (plan text, when it was printed)

    def render(self, window: SliSnapshot, flows: Counter[str],
               alert_lines: list[str] | None = None) -> str:
        reader_status = self.exporter.source.status()
        reconnects = self.exporter.registry.get_sample_value(HUBBLE_RECONNECTS.name) or 0
        rates = "  ".join(f"{node} {count / self.interval:6.0f}/s"
                          for node, count in sorted(flows.items()))
        lines = [
            f"[{self.elapsed():6.0f}s] scenario t={self.simulator.scenario_time():6.0f}s  "
            f"phase={self.exporter.tracker.phase:<11} "
            f"hubble={'up' if reader_status.up else 'DOWN'}  reconnects={reconnects:.0f}",
            f"  flows   {rates or '(none yet)'}",
            "  handshake   datapath      p50        p99    connections",
        ]
        for datapath in DATAPATHS:
            counts = merged_counts(window, datapath)
            total = sum(counts)
            if not total:
                continue
            p50 = histogram_quantile(0.5, window.connect_bounds, counts)
            p99 = histogram_quantile(0.99, window.connect_bounds, counts)
            lines.append(f"              {datapath:<10} {p50 * 1e3:7.2f}ms  {p99 * 1e3:7.2f}ms  "
                         f"{total:8d}")
        lines.extend(self.verdict_lines())
        lines.extend(alert_lines or ())
        lines.extend(self.rollback_lines())
        return "\n".join(lines) + "\n"

    def verdict_lines(self) -> list[str]:
        judge = self.exporter.judge
        if not judge.verdicts:
            return ["  verdicts    (none yet)"]
        symbol = {WORSE: "WORSE", "not_worse": "ok", "inconclusive": "?"}
        by_service: dict[tuple[str, str], list[str]] = {}
        for v in judge.verdicts:
            if v.comparison != CANARY_VS_CONTROL:
                continue
            word = "better" if v.better else symbol.get(v.outcome, v.outcome)
            by_service.setdefault((v.namespace, v.service), []).append(f"{v.sli}={word}")
        note = f"  ({judge.problem})" if judge.problem else ""
        if self.exporter.tracker.phase == "before" and self.simulator.scenario.switches:
            first = min(sw.at_s for sw in self.simulator.scenario.switches)
            note += f"  (no node on eBPF yet; the first switches at scenario t={first:.0f}s)"
        lines = ["  verdicts    canary-vs-control" + note]
        for (ns, svc), parts in sorted(by_service.items()):
            lines.append(f"              {ns}/{svc:<14} " + "  ".join(parts))
        if any(part.endswith("=?") for parts in by_service.values() for part in parts):
            lines.append(f"              {INCONCLUSIVE_LEGEND}")
        return lines

    def rollback_lines(self) -> list[str]:
        runner = self.exporter.rollback.runner
        if runner.last_result is None:
            return [f"  rollback    none ({self.exporter.settings.rollback.mode})"]
        lines = [f"  rollback    {runner.last_result.status}: {runner.last_result.message}"]
        if runner.last_plan is None:
            return lines
        plan = "\n".join(runner.last_plan.render().splitlines()[:12])
        if self._plan_shown is not None and self._plan_shown[0] == plan:
            lines.append(f"              (plan unchanged since [{self._plan_shown[1]:6.0f}s])")
            return lines
        self._plan_shown = (plan, self.elapsed())
        lines.extend("              " + line for line in plan.splitlines())
        return lines

    async def prometheus_lines(self, stack: LocalStack) -> list[str]:
        """Which rollback alerts the real Prometheus has firing (and pending)."""
        try:
            alerts = await stack.rollback_alerts()
        except LocalStackError as exc:
            return [f"  prometheus  cannot read alerts: {exc}"]
        by_state: dict[str, list[str]] = {"firing": [], "pending": []}
        for alert in alerts:
            labels = alert.get("labels", {})
            where = "/".join(x for x in (labels.get("namespace"), labels.get("service")) if x)
            where = where or labels.get("node", "")
            name = labels.get("alertname", "?") + (f" ({where})" if where else "")
            by_state.setdefault(alert.get("state", "?"), []).append(name)
        firing, pending = sorted(set(by_state["firing"])), sorted(set(by_state["pending"]))
        lines = [f"  prometheus  rollback alerts firing: {len(firing)}, pending: {len(pending)}"]
        lines.extend(f"              FIRING  {name}" for name in firing[:8])
        lines.extend(f"              pending {name}" for name in pending[:4])
        return lines

    def webhook_lines(self) -> list[str]:
        """Alertmanager's deliveries to the exporter's webhook, by outcome; news when one is
        accepted."""
        counts = self._webhook_counts()
        if not counts:
            return ["  webhook     no delivery from Alertmanager yet"]
        lines = ["  webhook     Alertmanager deliveries: "
                 + "  ".join(f"{k}={v:.0f}{gloss(k)}" for k, v in sorted(counts.items()))]
        accepted = counts.get("accepted", 0.0)
        if accepted > self._accepted_seen:
            self._accepted_seen = accepted
            lines.append("  >> Alertmanager delivered a firing rollback alert; "
                         "the webhook accepted it")
        return lines

    def _webhook_counts(self) -> dict[str, float]:
        counts = {}
        for metric in self.exporter.registry.collect():
            if metric.name != WEBHOOK_REQUESTS.family:
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.value:
                    counts[sample.labels["outcome"]] = sample.value
        return counts
