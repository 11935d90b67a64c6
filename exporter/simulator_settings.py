"""Settings of the simulator (``kpr-exporter simulate`` and ``demo``).

The settings tree declares this section for every command, ``run`` included, so it lives
outside ``exporter.simulator``: loading the settings loads no simulator code. The scenario
names are declared here for the same reason; a test holds them equal to the names of
``exporter.simulator.scenarios``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: The names of the simulator's scenarios, in the order ``--help`` lists them.
SCENARIO_NAMES: Final = ("baseline", "canary-improvement", "canary-regression",
                         "full-improvement", "drop-regression", "relay-outage", "low-traffic",
                         "canary-rollback")


def _host_port_problem(name: str, address: str) -> list[str]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        return [f"{name} {address!r} is not host:port"]
    return []


@dataclass(frozen=True)
class SimulatorSettings:
    scenario: str = field(
        default="baseline",
        metadata={"help": "Scenario to play.", "flag": "--scenario", "choices": SCENARIO_NAMES},
    )
    seed: int = field(
        default=1,
        metadata={"help": "Random seed; the same seed plays the same flows.", "flag": "--seed"},
    )
    speed: float = field(
        default=1.0,
        metadata={"help": "Time multiplier: scenario seconds per wall-clock second.",
                  "flag": "--speed"},
    )
    grpc_listen_address: str = field(
        default="127.0.0.1:4245",
        metadata={"help": "Address of the simulated Hubble Relay (Observer gRPC API).",
                  "flag": "--grpc.listen-address"},
    )
    agents_listen_address: str = field(
        default="127.0.0.1:9962",
        metadata={"help": "Address of the simulated agents' metrics "
                          "(/nodes/<node>/metrics, and /nodes as a JSON list).",
                  "flag": "--agents.listen-address"},
    )

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.scenario not in SCENARIO_NAMES:
            known = ", ".join(SCENARIO_NAMES)
            found.append(f"scenario {self.scenario!r} is unknown; known: {known}")
        if self.seed < 0:
            found.append(f"seed {self.seed} must not be negative")
        if not self.speed > 0.0 or self.speed != self.speed or self.speed == float("inf"):
            found.append(f"speed {self.speed} must be a positive finite number")
        found += _host_port_problem("grpc.listen-address", self.grpc_listen_address)
        found += _host_port_problem("agents.listen-address", self.agents_listen_address)
        return found
