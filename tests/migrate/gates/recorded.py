"""A recorded node-mode fleet for the judge gate, good or bad: three exporters, 25 minutes.

Every 60 s each exporter (one per node) adds seeded traffic for three services. node-a
stays on kube-proxy, node-b runs eBPF throughout (migrated earlier), node-c is the batch:
it switches to eBPF at ``SWITCH``. With ``bad`` the eBPF datapath makes shop/cart's
handshakes twice as slow with "Service backend not found" drops (worse); without, eBPF is
the same as kube-proxy (not worse). web/sparse has two handshakes a minute (never judged).
The series go to Prometheus through ``tests.judge_prom.fleet.openmetrics``.
"""

from __future__ import annotations

from collections.abc import Iterator

from exporter.snapshot import ServiceSli, SliSnapshot
from tests.judge.samples import lognormal, sli
from tests.judge_prom import fleet
from tests.judge_prom.fleet import STEP, STEPS, SWITCH, T0

END = T0 + STEP * STEPS
SERVICES = (("shop", "cart"), ("pay", "ledger"), ("web", "sparse"))


def _traffic(svc: str, dp: str, seed: int, bad: bool) -> ServiceSli:
    if svc == "sparse":
        return sli(lognormal(seed, 2), flows=4)
    worse = bad and svc == "cart" and dp == "ebpf"
    drops = {"SERVICE_BACKEND_NOT_FOUND": 6, "POLICY_DENIED": 1} if worse else {"POLICY_DENIED": 1}
    return sli(lognormal(seed, 300, scale=2.0 if worse else 1.0), refused=6 if worse else 1,
               flows=1200, drops=drops)


def history(bad: bool) -> Iterator[tuple[float, dict[str, SliSnapshot]]]:
    """``(time, {node: cumulative snapshot})`` at every scrape, oldest first."""
    return fleet.history(lambda _ns, svc, dp, seed: _traffic(svc, dp, seed, bad), SERVICES)


__all__ = ["END", "SERVICES", "SWITCH", "T0", "history"]
