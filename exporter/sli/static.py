"""Static implementations of the datapath and Service-directory roles.

``StaticDatapathResolver`` serves ``--datapath.static`` (running without
Kubernetes) and tests; ``StaticServiceDirectory`` is the directory for tests and
the simulator. The Kubernetes-driven implementations live elsewhere and follow
the same Protocols (``exporter.roles``). Pure module.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.model import UNKNOWN, ServiceRef


class StaticDatapathResolver:
    """Node -> datapath from a fixed mapping; a node it does not know is ``unknown``."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._mapping = dict(mapping)

    def datapath(self, node: str) -> str:
        return self._mapping.get(node, UNKNOWN)


class StaticServiceDirectory:
    """Addresses -> Service from fixed tables of frontends and backends.

    Keys are ``(ip, port)``; a backend listed without its port (``(ip, 0)``)
    matches any port of that address.
    """

    def __init__(
        self,
        *,
        frontends: Mapping[tuple[str, int], ServiceRef] | None = None,
        backends: Mapping[tuple[str, int], ServiceRef] | None = None,
    ) -> None:
        self._frontends = dict(frontends or {})
        self._backends = dict(backends or {})

    def service_for_backend(self, ip: str, port: int) -> ServiceRef | None:
        found = self._backends.get((ip, port))
        return found if found is not None else self._backends.get((ip, 0))

    def service_for_frontend(self, ip: str, port: int) -> ServiceRef | None:
        return self._frontends.get((ip, port))
