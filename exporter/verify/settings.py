"""Settings of ``kpr-exporter echo`` (section ``echo``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EchoSettings:
    listen_address: str = field(
        default=":8080",
        metadata={"help": "Address the echo answers on, TCP and HTTP on one port ([host]:port)."},
    )
    pod_name: str = field(
        default="",
        metadata={"help": "Pod name the echo reports (empty: the host name, which in a pod is "
                          "the pod's name; set it from the downward API)."},
    )
    node_name: str = field(
        default="",
        metadata={"help": "Node name the echo reports (set it from the downward API, "
                          "spec.nodeName)."},
    )

    def problems(self) -> list[str]:
        host, sep, port = self.listen_address.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            return [f"echo.listen_address {self.listen_address!r} is not [host]:port"]
        return []
