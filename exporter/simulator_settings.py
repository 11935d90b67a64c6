"""Settings of the simulator (``kpr-exporter simulate`` and ``demo``).

The settings tree declares this section for every command, ``run`` included, so it lives
outside ``exporter.simulator``: loading the settings loads no simulator code. The scenario
names are declared here for the same reason; a test holds them equal to the names of
``exporter.simulator.scenarios``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from exporter.config_constraints import listen_address, non_negative, positive

#: The names of the simulator's scenarios, in the order ``--help`` lists them.
SCENARIO_NAMES: Final = ("baseline", "canary-improvement", "canary-regression",
                         "full-improvement", "drop-regression", "relay-outage", "low-traffic",
                         "canary-rollback")


@dataclass(frozen=True)
class SimulatorSettings:
    scenario: str = field(
        default="baseline",
        metadata={"help": "Scenario to play.", "flag": "--scenario", "choices": SCENARIO_NAMES},
    )
    seed: int = field(
        default=1,
        metadata={"help": "Random seed; the same seed plays the same flows.", "flag": "--seed",
                  "check": non_negative()},
    )
    speed: float = field(
        default=1.0,
        metadata={"help": "Time multiplier: scenario seconds per wall-clock second.",
                  "flag": "--speed", "check": positive()},
    )
    grpc_listen_address: str = field(
        default="127.0.0.1:4245",
        metadata={"help": "Address of the simulated Hubble Relay (Observer gRPC API).",
                  "flag": "--grpc.listen-address", "check": listen_address()},
    )
    node_grpc_listen_address: str = field(
        default="",
        metadata={"help": "Address of the first node's simulated agent Hubble server (that "
                          "node's flows only, as node mode reads them); the next nodes listen "
                          "on the following ports, or each on a free port with port 0. "
                          "Empty: no per-node servers.",
                  "flag": "--node-grpc.listen-address",
                  "check": listen_address(optional=True)},
    )
    agents_listen_address: str = field(
        default="127.0.0.1:9962",
        metadata={"help": "Address of the simulated agents' metrics "
                          "(/nodes/<node>/metrics, and /nodes as a JSON list).",
                  "flag": "--agents.listen-address", "check": listen_address()},
    )
