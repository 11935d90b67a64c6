"""Which nodes a probe checks in a round, so the cost grows with nodes, not nodes² (pure).

Every probe checks its own node and ``k`` other nodes per round. With the ``n`` node
names in sorted order and the probe's node at index ``i``, round ``r`` targets the
nodes at offsets

    o_j = 1 + ((r * k + j) mod (n - 1)),   j = 0 .. min(k, n - 1) - 1

from ``i`` (indices mod ``n``). The window of offsets slides by ``k`` each round, so:

* one probe runs ``1 + min(k, n - 1)`` node targets per round;
* the cluster runs ``n * (1 + min(k, n - 1))`` node targets per round, each with the
  per-target checks, plus ``n`` times the checks that aim at a shared address
  (ClusterIP, load balancer, API server):

      checks per round = n * ((1 + min(k, n - 1)) * c_node + c_shared)

  linear in ``n`` for a fixed ``k``;
* each node is the remote target of exactly ``min(k, n - 1)`` probes per round (each
  offset maps every node to one distinct prober), so no node is hammered;
* every probe has checked every other node after

      rounds to full coverage = ceil((n - 1) / k)   (1 when n <= 1 + k)

  rounds, i.e. ``interval * ceil((n - 1) / k)`` seconds.

Example: 500 nodes, k = 3, 4 per-target and 6 shared checks, 30 s rounds:
500 * (4 * 4 + 6) = 11 000 checks per round cluster-wide (22 per probe), full pairwise
coverage in ceil(499 / 3) = 167 rounds = 83.5 minutes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


class SamplingError(ValueError):
    """Invalid sampling input (no such node, k below 1, ...)."""


@dataclass(frozen=True, slots=True)
class SamplingPlan:
    nodes: int
    k: int
    targets_per_probe: int
    checks_per_round: int
    rounds_to_full_coverage: int
    seconds_to_full_coverage: float


def sample(nodes: Sequence[str], own: str, k: int, round_no: int) -> tuple[str, ...]:
    """The nodes the probe on ``own`` checks in round ``round_no``: its own node first."""
    if k < 1:
        raise SamplingError(f"k must be at least 1, got {k}")
    ordered = sorted(set(nodes))
    if own not in ordered:
        raise SamplingError(f"node {own!r} is not among the {len(ordered)} known nodes")
    n = len(ordered)
    i = ordered.index(own)
    others = n - 1
    picked = [ordered[(i + 1 + (round_no * k + j) % others) % n]
              for j in range(min(k, others))] if others else []
    return (own, *picked)


def rounds_to_full_coverage(n: int, k: int) -> int:
    """Rounds until every probe has checked every other node."""
    if k < 1:
        raise SamplingError(f"k must be at least 1, got {k}")
    return 1 if n <= 1 + k else math.ceil((n - 1) / k)


def plan(n: int, k: int, *, per_target_checks: int, shared_checks: int,
         interval_seconds: float) -> SamplingPlan:
    """Cost and coverage of sampling ``k`` other nodes per round on ``n`` nodes."""
    if n < 1:
        raise SamplingError(f"a cluster has at least one node, got {n}")
    rounds = rounds_to_full_coverage(n, k)
    per_probe = 1 + min(k, n - 1)
    return SamplingPlan(
        nodes=n, k=k, targets_per_probe=per_probe,
        checks_per_round=n * (per_probe * per_target_checks + shared_checks),
        rounds_to_full_coverage=rounds,
        seconds_to_full_coverage=rounds * interval_seconds,
    )
