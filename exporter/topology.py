"""What one exporter process does (``web.role``): the two deployment topologies.

* relay mode: one instance with role ``all`` reads Hubble Relay and every agent, judges its
  own snapshots, keeps the baseline, answers the webhook and rolls back;
* node mode: one ``collector`` per node reads its node's Hubble and agent and exports the
  SLIs, nothing else; a small ``central`` Deployment reads no Hubble and scrapes no agent,
  judges the collectors' series in Prometheus, keeps the baseline, answers the webhook and
  runs the rollback executor (its replicas share the rollback Lease).

Pure module: the composition root asks ``duties(role)`` what to build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROLE_ALL, ROLE_COLLECTOR, ROLE_CENTRAL = ROLES = ("all", "collector", "central")


@dataclass(frozen=True)
class Duties:
    """What an instance of one role runs."""

    #: read Hubble, scrape the agents and kube-proxies, watch Services for attribution
    collects: bool
    #: judge, keep the baseline, answer the webhook, resume and guard rollbacks
    decides: bool


def duties(role: str) -> Duties:
    """The duties of ``role`` (one of ``ROLES``; validated by the settings)."""
    return Duties(collects=role != ROLE_CENTRAL, decides=role != ROLE_COLLECTOR)


def problems(settings: Any) -> list[str]:
    """Settings that contradict the role (rules spanning the web, judge and rollback sections)."""
    role = settings.web.role
    found = []
    if role == ROLE_CENTRAL and settings.judge.source != "prometheus":
        found.append("web.role central reads no Hubble: it judges the collectors' series, so it "
                     "needs judge.source prometheus (and judge.prometheus.url)")
    if role == ROLE_COLLECTOR and settings.rollback.mode == "enforce":
        found.append("web.role collector answers no webhook and never rolls back: "
                     "rollback.mode enforce belongs on the central instance")
    return found
