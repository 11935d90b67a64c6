"""One probe's rounds: its own node plus a rotating sample of others, every check, results
fed to the metrics. The glue a ``kpr-exporter probe`` process runs on a timer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from exporter.verify import results as r
from exporter.verify.checks import Limits, ProbeContext
from exporter.verify.metrics import ProbeMetrics
from exporter.verify.net import Dialer
from exporter.verify.runner import run_checks
from exporter.verify.sampling import sample
from exporter.verify.targets import Targets


@dataclass
class Probe:
    """The probe on ``node``. ``targets`` and ``datapath`` are read at each round (the
    cluster changes under it); ``k`` other nodes are sampled per round."""

    node: str
    host: Dialer
    pod: Dialer
    targets: Callable[[], Targets]
    datapath: Callable[[], str]
    k: int = 3
    limits: Limits = field(default_factory=Limits)
    metrics: ProbeMetrics | None = None
    rounds: int = 0
    last: list[r.CheckResult] = field(default_factory=list)

    async def run_round(self, checks: Iterable[str] = r.CHECKS) -> list[r.CheckResult]:
        targets = self.targets()
        ctx = ProbeContext(node=self.node, datapath=self.datapath(), host=self.host,
                           pod=self.pod, targets=targets,
                           sample=sample(list(targets.nodes), self.node, self.k, self.rounds),
                           limits=self.limits, datapath_now=self.datapath)
        self.last = await run_checks(ctx, checks)
        self.rounds += 1
        if self.metrics is not None:
            self.metrics.observe(self.last)
        return self.last
