"""Checks of Service semantics beyond reachability: externalTrafficPolicy=Local (client
address and health check), session affinity, and the refusal of a Service without
endpoints."""

from __future__ import annotations

from dataclasses import replace

from exporter.verify import results as r
from exporter.verify.checks.context import ProbeContext
from exporter.verify.net import REFUSED, Outcome


async def etp_local_source_ip(ctx: ProbeContext) -> list[r.CheckResult]:
    """From the host to the eTP=Local NodePort of sampled remote nodes that run a local
    endpoint: the echo must have seen this node's address. When the sample has none, the
    first such remote node in name order."""
    nodes = [n for n in ctx.sampled(remote_only=True) if n.etp_local_endpoints > 0]
    if not nodes:
        nodes = [n for name, n in sorted(ctx.targets.nodes.items())
                 if name != ctx.node and n.etp_local_endpoints > 0][:1]
    want = ctx.host.source
    out = []
    for node in nodes:
        endpoint = (node.addresses[0], ctx.targets.etp_local_node_port)
        seen = await ctx.host.line(endpoint, ctx.limits.timeout)
        got = (seen.reply or {}).get("client_ip")
        observed: Outcome | str = seen if not seen.answered else f"the echo saw {got}"
        ok = seen.answered and got == want
        out.append(ctx.result(r.ETP_LOCAL_SOURCE_IP, endpoint, ok, f"the echo sees {want}",
                              observed, target=node.name))
        if isinstance(observed, str):  # keep the handshake time of an answered exchange
            out[-1] = _with_connect(out[-1], seen)
    return out


async def etp_local_healthcheck(ctx: ProbeContext) -> list[r.CheckResult]:
    """``healthCheckNodePort/healthz`` of each sampled node: 200 exactly when the node has
    a ready local endpoint, and ``localEndpoints`` equal to their number."""
    out = []
    for node in ctx.sampled():
        endpoint = (node.addresses[0], ctx.targets.health_check_node_port)
        seen = await ctx.host.http_get(endpoint, "/healthz", ctx.limits.timeout)
        want_status = 200 if node.etp_local_endpoints else 503
        count = (seen.reply or {}).get("localEndpoints")
        ok = seen.answered and seen.status == want_status and count == node.etp_local_endpoints
        expected = f"HTTP {want_status} with localEndpoints {node.etp_local_endpoints}"
        out.append(ctx.result(r.ETP_LOCAL_HEALTHCHECK, endpoint, ok, expected, seen,
                              target=node.name))
    return out


async def session_affinity(ctx: ProbeContext) -> list[r.CheckResult]:
    """N requests from one client to the ``sessionAffinity: ClientIP`` Service: one backend."""
    endpoint, n = ctx.targets.affinity, ctx.limits.affinity_requests
    pods: list[str] = []
    first: Outcome | None = None
    for _ in range(n):
        seen = await ctx.pod.line(endpoint, ctx.limits.timeout)
        first = first or seen
        if not seen.answered:
            return [ctx.result(r.SESSION_AFFINITY, endpoint, False,
                               f"{n} answers from one pod", seen)]
        pods.append(str((seen.reply or {}).get("pod")))
    distinct = sorted(set(pods))
    observed = f"{n} answers from {len(distinct)} pod(s): {', '.join(distinct)}"
    res = ctx.result(r.SESSION_AFFINITY, endpoint, len(distinct) == 1,
                     f"{n} answers from one pod", observed)
    return [_with_connect(res, first)]


async def no_endpoints_reject(ctx: ProbeContext) -> list[r.CheckResult]:
    """A Service without endpoints must refuse at once (REJECT), not let clients hang."""
    endpoint = ctx.targets.no_endpoints
    seen = await ctx.pod.connect_only(endpoint, ctx.limits.timeout)
    return [ctx.result(r.NO_ENDPOINTS_REJECT, endpoint, seen.kind == REFUSED,
                       "refused at once", seen)]


def _with_connect(res: r.CheckResult, seen: Outcome | None) -> r.CheckResult:
    return replace(res, connect_seconds=seen.connect_seconds if seen else None)
