"""Checks that an address answers with an echo: ClusterIP (pod and host network),
NodePort (own node, sampled remote nodes, loopback), load balancer, hostPort, API server."""

from __future__ import annotations

from dataclasses import replace

from exporter.verify import results as r
from exporter.verify.checks.context import ProbeContext
from exporter.verify.net import Dialer
from exporter.verify.targets import Endpoint

ECHO = "an answer from an echo pod"
HANDSHAKE = "a completed handshake"


async def _echo(ctx: ProbeContext, check: str, dialer: Dialer, endpoint: Endpoint,
                target: str = "") -> r.CheckResult:
    seen = await dialer.line(endpoint, ctx.limits.timeout)
    ok = seen.answered and bool((seen.reply or {}).get("pod"))
    return ctx.result(check, endpoint, ok, ECHO, seen, target=target)


async def _extra(ctx: ProbeContext, check: str, dialer: Dialer) -> list[r.CheckResult]:
    """The user's Services (``targets.extra``): they speak their own protocol, so a
    completed handshake passes; the result's address names the Service."""
    out = []
    for svc in ctx.targets.extra:
        seen = await dialer.connect_only(svc.endpoint, ctx.limits.timeout)
        res = ctx.result(check, svc.endpoint, seen.answered, HANDSHAKE, seen)
        out.append(replace(res, address=svc.describe()))
    return out


async def clusterip_pod(ctx: ProbeContext) -> list[r.CheckResult]:
    """The echo's ClusterIP, then each of the user's Services, from the pod network."""
    return [await _echo(ctx, r.CLUSTERIP_POD, ctx.pod, ctx.targets.cluster_ip),
            *await _extra(ctx, r.CLUSTERIP_POD, ctx.pod)]


async def clusterip_host(ctx: ProbeContext) -> list[r.CheckResult]:
    """The echo's ClusterIP, then each of the user's Services, from the host."""
    return [await _echo(ctx, r.CLUSTERIP_HOST, ctx.host, ctx.targets.cluster_ip),
            *await _extra(ctx, r.CLUSTERIP_HOST, ctx.host)]


async def nodeport_local(ctx: ProbeContext) -> list[r.CheckResult]:
    own = ctx.targets.nodes[ctx.node]
    return [await _echo(ctx, r.NODEPORT_LOCAL, ctx.host, (addr, ctx.targets.node_port), own.name)
            for addr in own.addresses]


async def nodeport_remote(ctx: ProbeContext) -> list[r.CheckResult]:
    """Every address of each sampled remote node (each IP family it has)."""
    return [await _echo(ctx, r.NODEPORT_REMOTE, ctx.host, (addr, ctx.targets.node_port),
                        node.name)
            for node in ctx.sampled(remote_only=True) for addr in node.addresses]


async def nodeport_loopback(ctx: ProbeContext) -> list[r.CheckResult]:
    """The NodePort on the loopback address, from the loopback address, as a node-local
    client (an ingress controller on the host, a hostNetwork agent) connects."""
    endpoint = (ctx.targets.loopback, ctx.targets.node_port)
    dialer = ctx.host.rebound(ctx.targets.loopback)
    return [await _echo(ctx, r.NODEPORT_LOOPBACK, dialer, endpoint, ctx.node)]


async def loadbalancer(ctx: ProbeContext) -> list[r.CheckResult]:
    """Skipped (no result) when the cluster assigns no load-balancer address."""
    if ctx.targets.loadbalancer is None:
        return []
    return [await _echo(ctx, r.LOADBALANCER, ctx.pod, ctx.targets.loadbalancer)]


async def hostport(ctx: ProbeContext) -> list[r.CheckResult]:
    return [await _echo(ctx, r.HOSTPORT, ctx.host, (node.addresses[0], ctx.targets.hostport),
                        node.name)
            for node in ctx.sampled() if node.hostport and node.addresses]


async def apiserver_from_host(ctx: ProbeContext) -> list[r.CheckResult]:
    """The ``kubernetes`` ClusterIP from the host: a completed handshake (TLS is the
    API server's business, reachability the datapath's)."""
    endpoint = ctx.targets.apiserver
    seen = await ctx.host.connect_only(endpoint, ctx.limits.timeout)
    return [ctx.result(r.APISERVER_FROM_HOST, endpoint, seen.answered, "a completed handshake",
                       seen)]
