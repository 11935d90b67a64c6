"""Settings of the Cilium agent metrics scraper (section ``agents``).

Either a static ``node=URL`` list (for running without Kubernetes) or the
Kubernetes discovery of agent pods (``selector`` in ``namespace``, their pod IP
and ``port``/``path``). Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv6Address, ip_address
from urllib.parse import urlsplit

from exporter.config_constraints import dns_label, http_path, not_empty, port, positive


def target_url(host: str, port: int, path: str) -> str:
    """``http://host:port/path`` for a discovered pod (IPv6 hosts bracketed)."""
    try:
        bracket = isinstance(ip_address(host), IPv6Address)
    except ValueError:
        bracket = False
    return f"http://{f'[{host}]' if bracket else host}:{port}{path}"


def target_problems(section: str, s: object) -> list[str]:
    """The problems of a scrape-target section's static list (its single values declare
    their constraints)."""
    found: list[str] = []
    for node, url in getattr(s, "static").items():
        if not node.strip():
            found.append(f"{section}.static: entry {url!r} has an empty node name")
        if why := _url_problem(url):
            found.append(f"{section}.static: node {node!r}: {why}")
    return found


@dataclass(frozen=True)
class AgentSettings:
    static: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "help": "Comma list of node=URL agent metrics endpoints, for running without "
            "Kubernetes (e.g. worker-1=http://10.0.0.11:9962/metrics). Empty: discover "
            "the agent pods through the Kubernetes API.",
            "flag": "--agents.static",
        },
    )
    port: int = field(
        default=9962, metadata={"help": "Port of the agents' /metrics on discovered agent pods.",
                                "check": port()}
    )
    path: str = field(
        default="/metrics", metadata={"help": "HTTP path of the agents' metrics on discovered pods.",
                                      "check": http_path()}
    )
    interval_seconds: float = field(
        default=15.0, metadata={"help": "Seconds between two scrapes of every agent.",
                                "check": positive()}
    )
    timeout_seconds: float = field(
        default=5.0, metadata={"help": "Per-agent request timeout in seconds (body included).",
                               "check": positive()}
    )
    max_body_bytes: int = field(
        default=16 * 1024 * 1024,
        metadata={"help": "Largest accepted (decompressed) /metrics body; larger is an error.",
                  "check": positive()},
    )
    max_series: int = field(
        default=2000,
        metadata={"help": "Most series kept from one agent's scrape (its drop and forward "
                          "counters, feature gauge and version; a real agent has a few dozen). "
                          "Further series are dropped and counted in "
                          "kpr_agent_series_dropped_total.", "check": positive()},
    )
    concurrency: int = field(
        default=64, metadata={"help": "At most this many agents are scraped at the same time.",
                              "check": positive()}
    )
    selector: str = field(
        default="k8s-app=cilium",
        metadata={"help": "Label selector of the Cilium agent pods (discovery).",
                  "check": not_empty("e.g. k8s-app=cilium")},
    )
    namespace: str = field(
        default="kube-system", metadata={"help": "Namespace of the Cilium agent pods (discovery).",
                                         "check": dns_label()}
    )
    node_name: str = field(
        default="",
        metadata={"help": "Discover only the agent on this node (node mode: each exporter "
                          "scrapes its own node's agent; the chart sets it from the pod's node)."},
    )

    def url_for(self, host: str) -> str:
        """The metrics URL of a discovered agent at ``host`` (a pod IP; IPv6 is bracketed)."""
        return target_url(host, self.port, self.path)

    def problems(self) -> list[str]:
        return target_problems("agents", self)


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be scraped, or None when it can."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError as exc:
        return f"URL {url!r} is malformed ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"URL {url!r} must start with http:// or https://"
    if not parts.hostname:
        return f"URL {url!r} has no host"
    if port == 0:
        return f"URL {url!r} has port 0"
    return None
