"""Proof on the datapath that a node runs the kube-proxy replacement (the mirror of the
rollback's proof in :mod:`exporter.rollback.prove`).

A migrated node counts only when it shows, itself:

* ``agent-ready``: a ready Cilium agent pod started after the label (the restart waits
  for it);
* ``kpr-on``: that agent's feature gauge
  ``cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled`` reads 1 (agents
  before Cilium 1.17 export none: configuration decides, ``ok`` None);
* ``kube-proxy-gone``: no kube-proxy pod left on the node;
* ``kpr-health``: the KPR health endpoint (``kube-proxy-replacement-healthz-bind-address``,
  the same ``/healthz`` answer as kube-proxy's) answers with a fresh ``lastUpdated`` —
  with kube-proxy gone from the node, only Cilium can answer there.
"""

from __future__ import annotations

from typing import Final

from exporter.rollback.prove import NO_GAUGE, DatapathProver, Proof

KPR_ON: Final = "kpr-on"
KPR_HEALTH: Final = "kpr-health"
KUBE_PROXY_GONE: Final = "kube-proxy-gone"


class MigrationProver(DatapathProver):
    """The rollback's prover, asked the other way round."""

    async def kpr_health(self, node: str, address: str) -> Proof:
        proof = await self.kube_proxy(node, address)
        return Proof(node, KPR_HEALTH, proof.ok, proof.detail)

    async def kpr_on(self, node: str, metrics_url: str) -> Proof:
        gauge = await self.kpr_gauge(metrics_url)
        if gauge.problem:
            return Proof(node, KPR_ON, False, gauge.problem)
        if gauge.enabled is None:
            return Proof(node, KPR_ON, None, NO_GAUGE)
        if not gauge.enabled:
            return Proof(node, KPR_ON, False, "the agent reports kube-proxy replacement off")
        return Proof(node, KPR_ON, True, "the agent reports kube-proxy replacement on")


def proven(proofs: list[Proof]) -> tuple[bool, str]:
    """All proofs hold (None defers to configuration, verified before)."""
    return (all(p.ok is not False for p in proofs),
            "; ".join(f"{p.check}: {p.detail}" for p in proofs))
