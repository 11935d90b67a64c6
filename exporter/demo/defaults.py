"""The defaults ``kpr-exporter demo`` uses where they differ from the settings tree's.

The demo tells its story on loopback: the exporter on 127.0.0.1, the simulator on free
loopback ports, the canary-regression scenario ten times faster than real time. ``demo
--help`` shows these values (``help_defaults``) and ``apply`` puts them in place of every
setting the user left at the tree's default; a value given by flag, ``KPR_*`` variable or
config file wins. ``--scenario`` also takes the emulated-datapath scenarios
(``EMULATED_STORIES``): the demo then runs that datapath and its probes next to a simulator
story (``FILE_STORY`` for a scenario from ``--scenario-file``). Pure module: no import beyond the settings tree.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from exporter import config
from exporter.simulator_settings import SCENARIO_NAMES

DEMO_SCENARIO: Final = "canary-regression"
DEMO_SPEED: Final = 10.0
DEMO_LISTEN: Final = "127.0.0.1:9977"

#: flag -> the demo's default value.
DEMO_DEFAULTS: Final[Mapping[str, Any]] = {
    "--scenario": DEMO_SCENARIO,
    "--speed": DEMO_SPEED,
    "--web.listen-address": DEMO_LISTEN,
    "--grpc.listen-address": "127.0.0.1:0",
    "--agents.listen-address": "127.0.0.1:0",
}


#: Emulated-datapath scenario (``exporter.verify.emulator.scenario.NAMED``) -> the simulator
#: story the demo plays next to it. Its switches drive the emulated nodes' datapaths, and
#: its application traffic gets better on eBPF: only the probes see the faults.
EMULATED_STORIES: Final[Mapping[str, str]] = {
    "canary-datapath-faults": "canary-improvement",
    "healthy": "canary-improvement",
}
#: Guided-migration stories (``exporter.demo.migration``): the migration controller on a
#: simulated cluster, healthy or with an eBPF fault its verify gate catches. They run no flow
#: simulator; the settings keep a simulator story (this one) all the same.
MIGRATION_STORIES: Final[Mapping[str, str]] = {
    "guided-migration": "baseline",
    "guided-migration-regression": "baseline",
}
#: The simulator story played next to an emulated-datapath scenario from ``--scenario-file``
#: when ``--scenario`` names none: its canary node-b switches to eBPF within the first minute.
FILE_STORY: Final = "canary-improvement"


class ScenarioAction(argparse.Action):
    """The demo's ``--scenario``: a simulator story, or an emulated-datapath scenario whose
    name lands in ``emulated`` while the simulator plays its story (``EMULATED_STORIES``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        name = str(values)
        stories = {**EMULATED_STORIES, **MIGRATION_STORIES}
        namespace.emulated = name if name in stories else None
        setattr(namespace, self.dest, stories.get(name, name))


def flag_overrides() -> dict[str, dict[str, Any]]:
    """flag -> argparse keywords replacing the settings tree's for the demo's parser."""
    return {"--scenario": {"choices": (*SCENARIO_NAMES, *EMULATED_STORIES, *MIGRATION_STORIES),
                           "action": ScenarioAction}}


def help_defaults() -> dict[str, str]:
    """flag -> the default as ``demo --help`` shows it."""
    shown = {flag: str(value) for flag, value in DEMO_DEFAULTS.items()}
    shown["--speed"] = f"{DEMO_SPEED:g}"
    for flag in ("--grpc.listen-address", "--agents.listen-address"):
        shown[flag] = f"{DEMO_DEFAULTS[flag]}, a free loopback port"
    return shown


def apply(settings: Any, given: Collection[str], *, scenario_file: bool = False) -> Any:
    """``settings`` with the demo's defaults wherever the value is still the tree's default
    and its flag is not in ``given`` (the flags on the command line); with a
    ``scenario_file`` the default story is ``FILE_STORY``."""
    by_flag = {o.flag: o for o in config.options()}
    defaults = {**DEMO_DEFAULTS, **({"--scenario": FILE_STORY} if scenario_file else {})}
    for flag, value in defaults.items():
        option = by_flag[flag]
        section_name, field_name = option.path
        section = getattr(settings, section_name)
        if flag in given or getattr(section, field_name) != option.default:
            continue
        settings = replace(settings, **{section_name: replace(section, **{field_name: value})})
    return settings
