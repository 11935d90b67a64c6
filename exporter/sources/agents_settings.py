"""Settings of the Cilium agent metrics scraper (section ``agents``).

Either a static ``node=URL`` list (for running without Kubernetes) or the
Kubernetes discovery of agent pods (``selector`` in ``namespace``, their pod IP
and ``port``/``path``). Pure module: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv6Address, ip_address
from urllib.parse import urlsplit

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def target_url(host: str, port: int, path: str) -> str:
    """``http://host:port/path`` for a discovered pod (IPv6 hosts bracketed)."""
    try:
        bracket = isinstance(ip_address(host), IPv6Address)
    except ValueError:
        bracket = False
    return f"http://{f'[{host}]' if bracket else host}:{port}{path}"


def target_problems(section: str, s: object, example_selector: str) -> list[str]:
    """Every problem of a scrape-target section (static list, discovery, limits)."""
    found: list[str] = []
    for node, url in getattr(s, "static").items():
        if not node.strip():
            found.append(f"{section}.static: entry {url!r} has an empty node name")
        if why := _url_problem(url):
            found.append(f"{section}.static: node {node!r}: {why}")
    port, path = getattr(s, "port"), getattr(s, "path")
    if not 0 < port <= 65535:
        found.append(f"{section}.port: {port} is not a TCP port (1-65535)")
    if not path.startswith("/"):
        found.append(f"{section}.path: {path!r} must start with '/'")
    for name in ("interval_seconds", "timeout_seconds", "max_body_bytes", "max_series",
                 "concurrency"):
        value = getattr(s, name)
        if not value > 0:  # also rejects NaN
            found.append(f"{section}.{name}: {value} must be positive")
    if not getattr(s, "selector").strip():
        found.append(f"{section}.selector: must not be empty (e.g. {example_selector})")
    namespace = getattr(s, "namespace")
    if not _NAMESPACE.match(namespace):
        found.append(f"{section}.namespace: {namespace!r} is not a namespace name")
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
        default=9962, metadata={"help": "Port of the agents' /metrics on discovered agent pods."}
    )
    path: str = field(
        default="/metrics", metadata={"help": "HTTP path of the agents' metrics on discovered pods."}
    )
    interval_seconds: float = field(
        default=15.0, metadata={"help": "Seconds between two scrapes of every agent."}
    )
    timeout_seconds: float = field(
        default=5.0, metadata={"help": "Per-agent request timeout in seconds (body included)."}
    )
    max_body_bytes: int = field(
        default=16 * 1024 * 1024,
        metadata={"help": "Largest accepted (decompressed) /metrics body; larger is an error."},
    )
    max_series: int = field(
        default=2000,
        metadata={"help": "Most series kept from one agent's scrape (its drop and forward "
                          "counters, feature gauge and version; a real agent has a few dozen). "
                          "Further series are dropped and counted in "
                          "kpr_agent_series_dropped_total."},
    )
    concurrency: int = field(
        default=64, metadata={"help": "At most this many agents are scraped at the same time."}
    )
    selector: str = field(
        default="k8s-app=cilium",
        metadata={"help": "Label selector of the Cilium agent pods (discovery)."},
    )
    namespace: str = field(
        default="kube-system", metadata={"help": "Namespace of the Cilium agent pods (discovery)."}
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
        return target_problems("agents", self, "k8s-app=cilium")


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
