"""Simulated Cilium agents' ``/metrics``, consistent with the flows released so far (aiohttp).

``GET /nodes`` answers the node names as a JSON list; ``GET /nodes/<node>/metrics``
answers that agent's Prometheus text (``reference/cilium-metrics-kpr.md`` §1.2,
§1.8), rendered from the timeline's per-node counters at the current scenario time:

* ``cilium_drop_count_total{direction,reason}`` / ``cilium_drop_bytes_total``: the
  node's dropped flows, ``reason`` in Cilium's words ("Service backend not found");
* ``cilium_forward_count_total{direction}`` / ``cilium_forward_bytes_total``: the
  node's forwarded L3/L4 flows;
* ``cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled`` 0/1 and
  ``cilium_feature_adv_connect_and_lb_cilium_node_config_enabled``, following the
  node's datapath as Cilium >= 1.17 reports it; ``cilium_version``;
* ``cilium_process_cpu_seconds_total`` and, on eBPF nodes,
  ``cilium_service_implementation_delay`` (``exporter.simulator.kube_proxy``).

``GET /nodes/<node>/kube-proxy/metrics`` answers that node's kube-proxy text, or 404 on
a node running eBPF (no kube-proxy runs there).

``render_agent_metrics`` is pure; ``agents_app`` wraps it in an aiohttp application::

    cilium_drop_count_total{direction="EGRESS",reason="Service backend not found"} 31
    cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled 1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from aiohttp import web

from exporter.metrics_contract import drop_reason_text
from exporter.model import EBPF
from exporter.simulator.kube_proxy import agent_process_metrics, kube_proxy_metrics
from exporter.simulator.timeline import NodeCounters, Timeline

CILIUM_VERSION: Final = "1.18.4"
BYTES_PER_PACKET: Final = 66
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

__all__ = ["drop_reason_text", "render_agent_metrics"]


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def render_agent_metrics(counters: NodeCounters, *, kpr_enabled: bool, node_config: bool,
                         version: str = CILIUM_VERSION) -> str:
    """One agent's ``/metrics`` text."""
    lines: list[str] = []
    drops = sorted((direction, drop_reason_text(code), n)
                   for (code, direction), n in counters.drops.items())
    for name, scale, help_text in (
        ("cilium_drop_bytes_total", BYTES_PER_PACKET,
         "Total dropped bytes, tagged by drop reason and ingress/egress direction"),
        ("cilium_drop_count_total", 1,
         "Total dropped packets, tagged by drop reason and ingress/egress direction"),
    ):
        _family(lines, name, "counter", help_text)
        lines.extend(f'{name}{{direction="{d}",reason="{r}"}} {n * scale}' for d, r, n in drops)
    forwards = sorted(counters.forwards.items())
    for name, scale, help_text in (
        ("cilium_forward_bytes_total", BYTES_PER_PACKET,
         "Total forwarded bytes, tagged by ingress/egress direction"),
        ("cilium_forward_count_total", 1,
         "Total forwarded packets, tagged by ingress/egress direction"),
    ):
        _family(lines, name, "counter", help_text)
        lines.extend(f'{name}{{direction="{d}"}} {n * scale}' for d, n in forwards)
    _family(lines, "cilium_feature_adv_connect_and_lb_cilium_node_config_enabled", "gauge",
            "Cilium Node Config enabled on the agent")
    lines.append(f"cilium_feature_adv_connect_and_lb_cilium_node_config_enabled {int(node_config)}")
    _family(lines, "cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled", "gauge",
            "KubeProxyReplacement enabled on the agent")
    lines.append("cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled "
                 f"{int(kpr_enabled)}")
    _family(lines, "cilium_version", "gauge", "Cilium version")
    lines.append(f'cilium_version{{arch="linux/amd64",revision="0000000",version="{version}"}} 1')
    return "\n".join(lines) + "\n"


def node_metrics(timeline: Timeline, node: str) -> str:
    """The agent text of ``node`` at the timeline's current scenario time."""
    kpr = timeline.datapath(node) == EBPF  # scenarios switch nodes through CiliumNodeConfigs
    return render_agent_metrics(timeline.counters[node], kpr_enabled=kpr, node_config=kpr) + (
        agent_process_metrics(timeline.scenario, node, timeline.now_s))


def node_kube_proxy_metrics(timeline: Timeline, node: str) -> str | None:
    """The kube-proxy text of ``node`` now; None when the node runs eBPF (no kube-proxy)."""
    return kube_proxy_metrics(timeline.scenario, node, timeline.now_s,
                              timeline.epoch_ns / 1_000_000_000)


def agents_app(timeline: Timeline, *, before_request: Callable[[], None] | None = None
               ) -> web.Application:
    """The aiohttp application serving every node's metrics.

    ``before_request`` (e.g. "advance the timeline to now") runs before each answer.
    """

    async def nodes(request: web.Request) -> web.Response:
        if before_request is not None:
            before_request()
        return web.json_response(list(timeline.nodes))

    async def metrics(request: web.Request) -> web.Response:
        node = request.match_info["node"]
        if node not in timeline.counters:
            raise web.HTTPNotFound(text=f"unknown node {node!r}\n")
        if before_request is not None:
            before_request()
        return web.Response(body=node_metrics(timeline, node).encode(),
                            headers={"Content-Type": CONTENT_TYPE})

    async def kube_proxy(request: web.Request) -> web.Response:
        node = request.match_info["node"]
        if node not in timeline.counters:
            raise web.HTTPNotFound(text=f"unknown node {node!r}\n")
        if before_request is not None:
            before_request()
        text = node_kube_proxy_metrics(timeline, node)
        if text is None:
            raise web.HTTPNotFound(text=f"no kube-proxy runs on {node} (eBPF datapath)\n")
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/nodes", nodes)
    app.router.add_get("/nodes/{node}/metrics", metrics)
    app.router.add_get("/nodes/{node}/kube-proxy/metrics", kube_proxy)
    return app
