"""Preflight: the checks users trip on before switching Services to Cilium's eBPF KPR.

``evaluate(facts, settings)`` is pure and returns one ``Row`` (pass / warn / fail and a
message) per check; ``gather(kube, settings, store)`` reads the facts from the API.
A check whose input could not be read fails with the reason: no data is never a pass.
``render_table`` prints rows for people, ``exit_code`` is 1 when any row failed.

Checks: ``k8s-service-host`` (KUBERNETES_SERVICE_HOST/PORT on the agents, or
k8s-api-server-urls: without kube-proxy the agent cannot reach the API through the
``kubernetes`` Service), ``kernel`` (socket-LB needs >= 4.19.57, 5.1.16 or 5.2; 5.7/5.8
add netns cookies and the getpeername hook), ``kpr-value`` (``true``/``false`` only;
``strict`` silently leaves NodePort/HostPort off on 1.14+), ``external-traffic-policy``
(``Local`` Services), ``session-affinity`` (``ClientIP`` Services), ``host-port``
(hostPort users; ports inside the NodePort range or on a loopback hostIP do not work
with KPR), ``backup`` (a usable backup with the kube-proxy DaemonSet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError, NotFound
from exporter.kube.resources import CONFIGMAPS, DAEMONSETS, NODES, PODS, SERVICES
from exporter.rollback.backup import BackupError, BackupStore, list_node_configs
from exporter.rollback.model import KPR_KEY, Backup, NodeConfig
from exporter.rollback.settings import RollbackSettings

PASS: Final = "pass"
WARN: Final = "warn"
FAIL: Final = "fail"
NODE_PORT_RANGE: Final = (30000, 32767)
_KERNEL = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
_SHOWN: Final = 5


@dataclass(frozen=True, slots=True)
class Row:
    check: str
    status: str
    message: str


@dataclass(frozen=True)
class Facts:
    """What preflight reads. ``None`` means "could not read"; the reason is in ``errors``."""

    cilium_daemonset: dict[str, Any] | None = None
    cilium_config: dict[str, str] | None = None
    node_configs: tuple[NodeConfig, ...] = ()
    kernels: dict[str, str] | None = None  # node -> status.nodeInfo.kernelVersion
    services: list[dict[str, Any]] | None = None
    pods: list[dict[str, Any]] | None = None
    backup: Backup | None = None
    errors: dict[str, str] = field(default_factory=dict)  # fact name -> why it is missing


def evaluate(facts: Facts, settings: RollbackSettings) -> list[Row]:
    return [
        _service_host(facts, settings),
        _kernel(facts),
        _kpr_value(facts, settings),
        _external_traffic_policy(facts),
        _session_affinity(facts),
        _host_port(facts),
        _backup(facts, settings),
    ]


def exit_code(rows: Iterable[Row]) -> int:
    return 1 if any(r.status == FAIL for r in rows) else 0


def render_table(rows: Sequence[Row]) -> str:
    width = max([len("CHECK"), *(len(r.check) for r in rows)])
    lines = [f"{'CHECK':<{width}}  STATUS  MESSAGE"]
    lines += [f"{r.check:<{width}}  {r.status.upper():<6}  {r.message}" for r in rows]
    fails = sum(r.status == FAIL for r in rows)
    warns = sum(r.status == WARN for r in rows)
    lines.append(f"{len(rows)} checks: {fails} failed, {warns} warnings")
    return "\n".join(lines)


# --- checks -------------------------------------------------------------------------------


def _missing(check: str, facts: Facts, *names: str) -> Row | None:
    for name in names:
        if name in facts.errors:
            return Row(check, FAIL, f"could not check: {facts.errors[name]}")
    return None


def _service_host(facts: Facts, settings: RollbackSettings) -> Row:
    check = "k8s-service-host"
    if (row := _missing(check, facts, "cilium_daemonset")) is not None:
        return row
    c = settings.cilium
    if facts.cilium_daemonset is None:
        return Row(check, FAIL, f"DaemonSet {c.namespace}/{c.daemonset} not found")
    env: dict[str, Any] = {}
    spec = facts.cilium_daemonset.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("containers") or ():
        for item in container.get("env") or ():
            env.setdefault(item.get("name"), item)
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if host and port and (host.get("value") or host.get("valueFrom")):
        where = host.get("value") or "a ConfigMap/Secret reference"
        return Row(check, PASS, f"agents reach the API server directly ({where})")
    urls = (facts.cilium_config or {}).get("k8s-api-server-urls", "").strip()
    if urls:
        return Row(check, PASS, f"agents use k8s-api-server-urls ({urls})")
    return Row(check, FAIL, "KUBERNETES_SERVICE_HOST/PORT are not set on the Cilium agents: without "
                            "kube-proxy they cannot reach the API server through the kubernetes "
                            "Service. Set Helm values k8sServiceHost and k8sServicePort first")


def kernel_version(text: str) -> tuple[int, int, int] | None:
    match = _KERNEL.match(text.strip())
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def _kernel_verdict(version: tuple[int, int, int]) -> str:
    major, minor, patch = version
    if (major, minor) >= (5, 8):
        return PASS
    if (major, minor) >= (5, 2) or ((major, minor) == (5, 1) and patch >= 16) or (
        (major, minor) == (4, 19) and patch >= 57
    ):
        return WARN
    return FAIL


def _kernel(facts: Facts) -> Row:
    check = "kernel"
    if (row := _missing(check, facts, "kernels")) is not None:
        return row
    kernels = facts.kernels or {}
    if not kernels:
        return Row(check, FAIL, "no nodes found")
    by_verdict: dict[str, list[str]] = {PASS: [], WARN: [], FAIL: []}
    unknown = []
    for node, text in sorted(kernels.items()):
        version = kernel_version(text)
        if version is None:
            unknown.append(f"{node} ({text or 'empty'})")
        else:
            by_verdict[_kernel_verdict(version)].append(f"{node} ({text})")
    if by_verdict[FAIL]:
        return Row(check, FAIL, "socket-LB needs kernel >= 4.19.57, 5.1.16 or 5.2: "
                                + _some(by_verdict[FAIL]))
    if unknown or by_verdict[WARN]:
        parts = []
        if by_verdict[WARN]:
            parts.append("works, but netns cookies (5.7) and the getpeername hook (5.8) are "
                         "missing on " + _some(by_verdict[WARN]))
        if unknown:
            parts.append("unreadable kernel version on " + _some(unknown))
        return Row(check, WARN, "; ".join(parts))
    return Row(check, PASS, f"{len(kernels)} node(s) on kernel >= 5.8")


def _kpr_value(facts: Facts, settings: RollbackSettings) -> Row:
    check = "kpr-value"
    if (row := _missing(check, facts, "cilium_config")) is not None:
        return row
    c = settings.cilium
    if facts.cilium_config is None:
        return Row(check, FAIL, f"ConfigMap {c.namespace}/{c.configmap} not found")
    values = [("cilium-config", facts.cilium_config.get(KPR_KEY, "(unset: false)"))]
    values += [(cnc.ref, cnc.defaults[KPR_KEY]) for cnc in facts.node_configs if KPR_KEY in cnc.defaults]
    bad = [(where, v) for where, v in values if v.strip().lower() == "strict"]
    if bad:
        return Row(check, FAIL, "kube-proxy-replacement \"strict\" in " + _some(w for w, _ in bad)
                   + ": Cilium >= 1.14 treats only \"true\" as on and silently leaves NodePort "
                     "and HostPort off; use \"true\"")
    old = [(where, v) for where, v in values
           if v.strip().lower() not in ("true", "false", "(unset: false)")]
    if old:
        return Row(check, WARN, "deprecated kube-proxy-replacement value(s): "
                   + _some(f"{w}={v}" for w, v in old) + "; use \"true\" or \"false\"")
    return Row(check, PASS, ", ".join(f"{w}={v}" for w, v in values))


def _external_traffic_policy(facts: Facts) -> Row:
    check = "external-traffic-policy"
    if (row := _missing(check, facts, "services")) is not None:
        return row
    local = [_name(s) for s in facts.services or ()
             if (s.get("spec") or {}).get("externalTrafficPolicy") == "Local"]
    if local:
        return Row(check, WARN, f"{len(local)} Service(s) with externalTrafficPolicy: Local ("
                   + _some(local) + "): verify client source IPs and the health-check node port "
                     "after the switch; do not run kube-proxy's and Cilium's healthz (10256) together")
    return Row(check, PASS, "no Service uses externalTrafficPolicy: Local")


def _session_affinity(facts: Facts) -> Row:
    check = "session-affinity"
    if (row := _missing(check, facts, "services")) is not None:
        return row
    sticky = [_name(s) for s in facts.services or ()
              if (s.get("spec") or {}).get("sessionAffinity") == "ClientIP"]
    if sticky:
        return Row(check, WARN, f"{len(sticky)} Service(s) with sessionAffinity: ClientIP ("
                   + _some(sticky) + "): affinity is kept per client netns cookie by socket-LB, "
                     "not per packet; test these Services on a canary node")
    return Row(check, PASS, "no Service uses sessionAffinity: ClientIP")


def _host_port(facts: Facts) -> Row:
    check = "host-port"
    if (row := _missing(check, facts, "pods")) is not None:
        return row
    users, broken = [], []
    low, high = NODE_PORT_RANGE
    for pod in facts.pods or ():
        for container in (pod.get("spec") or {}).get("containers") or ():
            for port in container.get("ports") or ():
                host_port = port.get("hostPort")
                if not host_port:
                    continue
                label = f"{_name(pod)}:{host_port}"
                host_ip = port.get("hostIP", "")
                if low <= int(host_port) <= high or host_ip.startswith("127.") or host_ip == "::1":
                    broken.append(label)
                else:
                    users.append(label)
    if broken:
        return Row(check, FAIL, "hostPort inside the NodePort range or on a loopback hostIP is not "
                                "supported with KPR: " + _some(broken))
    if users:
        return Row(check, WARN, f"{len(users)} hostPort user(s) (" + _some(users)
                   + "): Cilium takes hostPort over from the portmap plugin; test them on a canary")
    return Row(check, PASS, "no pod uses hostPort")


def _backup(facts: Facts, settings: RollbackSettings) -> Row:
    check = "backup"
    if (row := _missing(check, facts, "backup")) is not None:
        return row
    if facts.backup is None:
        return Row(check, FAIL, "no backup found: run `kpr-exporter backup` before switching, "
                                "or a rollback cannot bring kube-proxy back once it is deleted")
    if facts.backup.kube_proxy_daemonset is None:
        return Row(check, WARN, f"the backup of {facts.backup.taken_at} holds no kube-proxy DaemonSet "
                                "(taken after it was deleted?)")
    helm = facts.backup.helm_release
    extra = f", Helm revision {helm['revision']}" if helm else ""
    return Row(check, PASS, f"backup of {facts.backup.taken_at} with kube-proxy{extra}")


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _some(items: Iterable[str]) -> str:
    items = list(items)
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


# --- reading ---------------------------------------------------------------------------------


async def gather(kube: KubeClient, settings: RollbackSettings, store: BackupStore | None) -> Facts:
    """Read the facts; each failure is recorded in ``errors`` instead of raising."""
    c = settings.cilium
    errors: dict[str, str] = {}

    async def attempt(name: str, read):
        try:
            return await read()
        except NotFound:
            return None
        except (KubeError, BackupError) as exc:
            errors[name] = str(exc)
            return None

    async def cilium_config():
        return dict((await kube.get(CONFIGMAPS, c.configmap, c.namespace)).get("data") or {})

    async def node_configs():
        return tuple(NodeConfig.from_object(o) for o in (await list_node_configs(kube, c.namespace))[1])

    async def kernels():
        return {n["metadata"]["name"]: ((n.get("status") or {}).get("nodeInfo") or {}).get("kernelVersion", "")
                for n in (await kube.list(NODES)).items}

    async def items(resource):
        return (await kube.list(resource)).items

    async def backup():
        return await store.load() if store is not None else None

    return Facts(
        cilium_daemonset=await attempt("cilium_daemonset",
                                       lambda: kube.get(DAEMONSETS, c.daemonset, c.namespace)),
        cilium_config=await attempt("cilium_config", cilium_config),
        node_configs=await attempt("node_configs", node_configs) or (),
        kernels=await attempt("kernels", kernels),
        services=await attempt("services", lambda: items(SERVICES)),
        pods=await attempt("pods", lambda: items(PODS)),
        backup=await attempt("backup", backup),
        errors=errors,
    )
