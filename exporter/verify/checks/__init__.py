"""The check registry: one function per check of the fixed vocabulary.

A check is ``async def check(ctx: ProbeContext) -> list[CheckResult]``: one result per
target it probed (none when it has nothing to probe, e.g. no load-balancer address).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from exporter.verify import results as r
from exporter.verify.checks import reach, semantics
from exporter.verify.checks.context import Limits, ProbeContext
from exporter.verify.checks.longlived import long_lived_connection

Check = Callable[[ProbeContext], Awaitable[list[r.CheckResult]]]

REGISTRY: Final[Mapping[str, Check]] = {
    r.CLUSTERIP_POD: reach.clusterip_pod,
    r.CLUSTERIP_HOST: reach.clusterip_host,
    r.NODEPORT_LOCAL: reach.nodeport_local,
    r.NODEPORT_REMOTE: reach.nodeport_remote,
    r.NODEPORT_LOOPBACK: reach.nodeport_loopback,
    r.LOADBALANCER: reach.loadbalancer,
    r.ETP_LOCAL_SOURCE_IP: semantics.etp_local_source_ip,
    r.ETP_LOCAL_HEALTHCHECK: semantics.etp_local_healthcheck,
    r.SESSION_AFFINITY: semantics.session_affinity,
    r.NO_ENDPOINTS_REJECT: semantics.no_endpoints_reject,
    r.HOSTPORT: reach.hostport,
    r.APISERVER_FROM_HOST: reach.apiserver_from_host,
    r.LONG_LIVED_CONNECTION: long_lived_connection,
}
assert tuple(REGISTRY) == r.CHECKS, "the registry must hold exactly the vocabulary, in order"

__all__ = ["REGISTRY", "Check", "Limits", "ProbeContext"]
