"""Kernel versions against the running Cilium's minimum and socket-LB's needs.

Minimums from Cilium's system requirements: 5.10 from Cilium 1.18 on, 5.4 for 1.16 and
1.17 (RHEL 8.6's 4.18 counts as equivalent there), 4.19.57 before. Socket-LB, the heart
of KPR, needs 4.19.57, 5.1.16 or 5.2; 5.7 adds netns cookies and 5.8 the getpeername hook.
A node below the minimum fails: the agent will not run there.
"""

from __future__ import annotations

import re
from typing import Any, Final

from exporter.preflight.model import FAIL, PASS, WARN, Facts, Row, missing, some
from exporter.rollback.settings import RollbackSettings

Version = tuple[int, int, int]
_KERNEL: Final = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
_CILIUM_TAG: Final = re.compile(r":v?(\d+)\.(\d+)(?:\.(\d+))?")
#: (first Cilium minor it applies to, kernel minimum), newest first.
MINIMUMS: Final[tuple[tuple[tuple[int, int], Version], ...]] = (
    ((1, 18), (5, 10, 0)),
    ((1, 16), (5, 4, 0)),
    ((0, 0), (4, 19, 57)),
)
_RHEL8: Final = re.compile(r"^4\.18\.0-.*\.el8")


def kernel_version(text: str) -> Version | None:
    match = _KERNEL.match(text.strip())
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def cilium_version(daemonset: dict[str, Any] | None) -> tuple[int, int] | None:
    """Cilium's minor version from the agent image tag (``…/cilium:v1.18.3@sha256:…``)."""
    spec = (((daemonset or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = spec.get("containers") or ()
    for container in sorted(containers, key=lambda c: c.get("name") != "cilium-agent"):
        match = _CILIUM_TAG.search(str(container.get("image", "")).split("@")[0].rsplit("/", 1)[-1])
        if match:
            return int(match[1]), int(match[2])
    return None


def minimum_for(version: tuple[int, int] | None) -> Version:
    for first, minimum in MINIMUMS:
        if version is not None and version >= first:
            return minimum
    return MINIMUMS[-1][1]


def _socket_lb_ok(v: Version) -> bool:
    return v[:2] >= (5, 2) or (v[:2] == (5, 1) and v[2] >= 16) or (v[:2] == (4, 19) and v[2] >= 57)


def _verdict(text: str, version: Version, cilium: tuple[int, int] | None) -> str:
    minimum = minimum_for(cilium)
    if cilium is not None and cilium < (1, 18) and _RHEL8.match(text):
        return WARN  # RHEL 8.6 back-ports count as 5.4-equivalent before 1.18
    if version < minimum or not _socket_lb_ok(version):
        return FAIL
    return PASS if version[:2] >= (5, 8) else WARN


def kernel(facts: Facts, settings: RollbackSettings) -> Row:
    check = "kernel"
    if (row := missing(check, facts, "nodes")) is not None:
        return row
    kernels = facts.kernels or {}
    if not kernels:
        return Row(check, FAIL, "no nodes found")
    cilium = cilium_version(facts.cilium_daemonset)
    minimum = ".".join(map(str, minimum_for(cilium)))
    running = f"Cilium {cilium[0]}.{cilium[1]}" if cilium else "Cilium (version not readable)"
    by: dict[str, list[str]] = {PASS: [], WARN: [], FAIL: []}
    unknown = []
    for node, text in sorted(kernels.items()):
        version = kernel_version(text)
        if version is None:
            unknown.append(f"{node} ({text or 'empty'})")
        else:
            by[_verdict(text, version, cilium)].append(f"{node} ({text})")
    if by[FAIL]:
        return Row(check, FAIL, f"{running} needs kernel >= {minimum} (socket-LB >= 4.19.57, "
                                f"5.1.16 or 5.2): {some(by[FAIL])}",
                   why="the agent does not run, or runs without socket-LB, on these nodes",
                   todo="upgrade the kernels (or the node images) before switching")
    if unknown or by[WARN]:
        parts = []
        if by[WARN]:
            parts.append("works, but netns cookies (5.7) and the getpeername hook (5.8) are "
                         "missing on " + some(by[WARN]))
        if unknown:
            parts.append("unreadable kernel version on " + some(unknown))
        return Row(check, WARN, "; ".join(parts),
                   todo="prefer kernel >= 5.8 on the canary nodes; check unreadable ones by hand")
    return Row(check, PASS, f"{len(kernels)} node(s) on kernel >= 5.8 ({running} needs >= {minimum})")
