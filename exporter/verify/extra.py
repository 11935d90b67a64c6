"""The user's own Services as ClusterIP targets (``--probe.extra-service-selector``).

Each round the probe lists the Services matching the selector (in one namespace, or all)
and turns every ClusterIP (each family) and TCP port into an ``ExtraService``. A headless
Service, an ExternalName one, or one without a TCP port is skipped, its reason logged once.
A failed listing raises ``ExtraServicesError``; the loop keeps the last good list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.kube.client import KubeClient
from exporter.kube.errors import KubeError
from exporter.kube.resources import SERVICES
from exporter.verify.targets import ExtraService

log = logging.getLogger(__name__)


class ExtraServicesError(Exception):
    """The Services could not be listed (the API refused or could not be reached)."""


def _addresses(spec: Mapping[str, Any]) -> list[str]:
    ips = [ip for ip in spec.get("clusterIPs") or [] if ip and ip != "None"]
    single = spec.get("clusterIP")
    return ips or ([single] if single and single != "None" else [])


def convert(items: Iterable[Mapping[str, Any]]) -> tuple[list[ExtraService], dict[str, str]]:
    """The targets of listed Services, and the skipped Services with the reason (pure)."""
    found: list[ExtraService] = []
    skipped: dict[str, str] = {}
    for svc in items:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        name = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        ports = [p["port"] for p in spec.get("ports") or []
                 if p.get("protocol", "TCP") == "TCP" and isinstance(p.get("port"), int)]
        if spec.get("type") == "ExternalName":
            skipped[name] = "an ExternalName Service has no ClusterIP"
        elif not _addresses(spec):
            skipped[name] = "a headless Service has no ClusterIP"
        elif not ports:
            skipped[name] = "no TCP port"
        else:
            found += [ExtraService(name, (ip, port)) for ip in _addresses(spec) for port in ports]
    return found, skipped


@dataclass
class ServiceLister:
    """Lists the Services ``selector`` matches through ``client``; call it each round."""

    client: KubeClient
    selector: str
    namespace: str = ""
    _logged: set[tuple[str, str]] = field(default_factory=set)

    async def close(self) -> None:
        await self.client.close()

    async def __call__(self) -> tuple[ExtraService, ...]:
        try:
            listing = await self.client.list(SERVICES, self.namespace or None,
                                             label_selector=self.selector)
        except KubeError as exc:
            raise ExtraServicesError(f"cannot list the Services {self.selector!r}: {exc}") \
                from exc
        found, skipped = convert(listing.items)
        for name, why in sorted(skipped.items()):
            if (name, why) not in self._logged:
                self._logged.add((name, why))
                log.warning("Service %s matches %r but is not probed: %s", name,
                            self.selector, why)
        return tuple(found)
