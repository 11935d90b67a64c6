"""One settings tree, loaded file -> environment -> flags and validated once.

Every component declares its settings as a frozen dataclass with defaults; the root
``Settings`` below mounts one per section. A field's metadata holds its help, its
``choices`` and its constraints (``"check": positive()``, ``exporter.config_constraints``),
checked in one place; a section's ``problems()`` holds only the rules that span several of
its fields. Each leaf field becomes

* a YAML key (``hubble: {tls: {ca_file: ...}}``; ``-`` and ``_`` are both accepted),
* an environment variable ``KPR_<FLAG_WITH_UNDERSCORES>`` (``KPR_HUBBLE_TLS_CA_FILE``),
* a command-line flag (``--hubble.tls.ca-file``), unless the field's metadata names
  the flag explicitly (``--scenario``).

Settings named ``*_seconds`` are durations: ``30s``, ``5m``, ``1h30m``, ``500ms`` or
plain seconds, in every one of the three places (``exporter.config_values``).

``load`` reports every problem at once in a single ``ConfigError``; with
``startup=True`` it adds what only the machine can tell (files that must be
readable, Kubernetes access the rollback mode needs: ``exporter.config_checks``),
so ``check-config`` refuses exactly what ``run`` refuses. Reads the config file it is
given and the environment mapping it is handed.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter import config_constraints, config_values, model, topology
from exporter.baseline.settings import BaselineSettings
from exporter.config_constraints import listen_address
from exporter.judge.settings import JudgeSettings
from exporter.kube.settings import KubeSettings
from exporter.migrate.settings import MigrateSettings
from exporter.rollback.settings import RollbackSettings
from exporter.simulator_settings import SimulatorSettings
from exporter.sli.settings import SliSettings
from exporter.sources.agents_settings import AgentSettings
from exporter.sources.kube_proxy_settings import KubeProxySettings
from exporter.sources.probes_settings import ProbeSourceSettings
from exporter.sources.settings import HubbleSettings
from exporter.verify.settings import EchoSettings, ProbeSettings
from exporter.webhook.settings import WebhookSettings


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


# --- the lead's own sections ---------------------------------------------------


@dataclass(frozen=True)
class WebSettings:
    listen_address: str = field(
        default=":9977",
        metadata={"help": "Address of /metrics, /healthz, /readyz and the webhook ([host]:port).",
                  "check": listen_address()},
    )
    role: str = field(
        default=topology.ROLE_ALL,
        metadata={"help": "What this instance does. all: collect, judge, keep the baseline, "
                          "answer the webhook and roll back (relay mode). collector: read "
                          "Hubble and the agents and export the SLIs, nothing else (node "
                          "mode's DaemonSet). central: judge over Prometheus, keep the "
                          "baseline, answer the webhook and roll back; reads no Hubble and "
                          "scrapes no agents (node mode's Deployment).",
                  "choices": topology.ROLES},
    )


@dataclass(frozen=True)
class LogSettings:
    format: str = field(
        default="logfmt", metadata={"help": "Log line format.", "choices": ("logfmt", "json")}
    )
    level: str = field(
        default="info",
        metadata={"help": "Minimum level.", "choices": ("debug", "info", "warn", "error")},
    )


@dataclass(frozen=True)
class DatapathSettings:
    static: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "help": "Comma list of node=kube-proxy|ebpf, for running without Kubernetes.",
        },
    )

    def problems(self) -> list[str]:
        allowed = (model.KUBE_PROXY, model.EBPF)
        return [
            f"datapath.static: node {node!r} has datapath {dp!r}; expected one of {', '.join(allowed)}"
            for node, dp in self.static.items()
            if dp not in allowed
        ]


# --- the tree ---------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The whole settings tree: one field per section, in the order ``--help`` lists them."""

    web: WebSettings = field(default_factory=WebSettings)
    log: LogSettings = field(default_factory=LogSettings)
    hubble: HubbleSettings = field(default_factory=HubbleSettings)
    agents: AgentSettings = field(default_factory=AgentSettings)
    kube_proxy: KubeProxySettings = field(default_factory=KubeProxySettings)
    datapath: DatapathSettings = field(default_factory=DatapathSettings)
    kube: KubeSettings = field(default_factory=KubeSettings)
    sli: SliSettings = field(default_factory=SliSettings)
    baseline: BaselineSettings = field(default_factory=BaselineSettings)
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    rollback: RollbackSettings = field(default_factory=RollbackSettings)
    migrate: MigrateSettings = field(default_factory=MigrateSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    echo: EchoSettings = field(default_factory=EchoSettings)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    probes: ProbeSourceSettings = field(default_factory=ProbeSourceSettings)


# --- options ------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One leaf setting with every name it is known by."""

    path: tuple[str, ...]
    type: Any
    default: Any
    help: str
    choices: tuple[str, ...] | None
    flag: str
    duration: bool = False

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def env(self) -> str:
        return "KPR_" + self.flag.lstrip("-").replace(".", "_").replace("-", "_").upper()


def options(root: type = Settings, prefix: tuple[str, ...] = ()) -> list[Option]:
    """Every leaf option below ``root`` (the whole tree by default), in declaration order."""
    hints = typing.get_type_hints(root)
    found: list[Option] = []
    for f in dataclasses.fields(root):
        tp = hints[f.name]
        path = (*prefix, f.name)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            found.extend(options(tp, path))
            continue
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        flag = f.metadata.get("flag") or "--" + ".".join(p.replace("_", "-") for p in path)
        choices = f.metadata.get("choices")
        found.append(Option(path, tp, default, f.metadata.get("help", ""),
                            tuple(choices) if choices else None, flag,
                            config_values.is_duration(f.name, tp)))
    return found


def section_names() -> tuple[str, ...]:
    """The settings sections, in tree order."""
    return tuple(f.name for f in dataclasses.fields(Settings))


#: ``KPR_*`` variables that are not settings (build metadata, the test suite's switch).
OTHER_ENV = ("KPR_BUILD_REVISION", "KPR_REQUIRE_REAL_COMPONENTS")


def closest(name: str, known: list[str]) -> str:
    """The closest of ``known`` to ``name``, or ""."""
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return match[0] if match else ""


def _did_you_mean(name: str, known: list[str]) -> str:
    return f" (did you mean {match}?)" if (match := closest(name, known)) else ""


def env_warnings(env: Mapping[str, str]) -> list[str]:
    """One warning per ``KPR_*`` variable that matches no setting, naming the closest one."""
    by_env = {o.env: o for o in options()}
    unknown = [n for n in sorted(env)
               if n.startswith("KPR_") and n not in by_env and n not in OTHER_ENV]
    return [f"environment variable {name} matches no setting and is ignored" + (
        f"; did you mean {match} ({by_env[match].flag})?"
        if (match := closest(name, list(by_env))) else "") for name in unknown]


# --- parsing values -------------------------------------------------------------------


def parse_text(option: Option, text: str) -> Any:
    """Parse a flag or environment value; raises ValueError with a short reason."""
    return config_values.parse_text(option.type, text, duration=option.duration)


def _coerce_yaml(option: Option, value: Any) -> Any:
    return config_values.coerce_yaml(option.type, value, duration=option.duration)


# --- loading ------------------------------------------------------------------------------


def load(
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, str] | None = None,
    startup: bool = False,
    serves_webhook: bool = True,
) -> Settings:
    """Build the validated settings tree, or raise ``ConfigError`` listing every problem.

    ``flags`` maps flag names (``--hubble.address``) to their raw text, only for
    flags given on the command line. ``startup`` adds the checks against the machine
    that starting the exporter needs (``exporter.config_checks``). ``serves_webhook``
    false (a command that answers no webhook, such as ``rollback``) drops the rule that
    an enforcing webhook needs a token.
    """
    opts = options()
    by_key = {o.key: o for o in opts}
    by_flag = {o.flag: o for o in opts}
    values: dict[str, Any] = {}
    problems: list[str] = []

    if config_file:
        try:
            document = yaml.safe_load(Path(config_file).read_text()) or {}
        except OSError as exc:
            problems.append(f"config file {config_file}: {exc.strerror or exc}")
            document = {}
        except yaml.YAMLError as exc:
            problems.append(f"config file {config_file}: not valid YAML: {exc}")
            document = {}
        if not isinstance(document, dict):
            problems.append(f"config file {config_file}: top level must be a mapping")
            document = {}
        for key, raw in _flatten(document):
            option = by_key.get(key)
            if option is None:
                hint = _did_you_mean(key, list(by_key))
                problems.append(f"config file: unknown key {key!r}{hint}")
                continue
            try:
                values[key] = _coerce_yaml(option, raw)
            except ValueError as exc:
                problems.append(f"config file: {key}: {exc}")

    for option in opts:
        text = (env or {}).get(option.env)
        if text is None:
            continue
        try:
            values[option.key] = parse_text(option, text)
        except ValueError as exc:
            problems.append(f"{option.env}: {exc}")

    for flag, text in (flags or {}).items():
        option = by_flag.get(flag)
        if option is None:
            problems.append(f"unknown flag {flag}{_did_you_mean(flag, list(by_flag))}")
            continue
        try:
            values[option.key] = parse_text(option, text)
        except ValueError as exc:
            problems.append(f"{flag}: {exc}")

    settings = _build(Settings, values, ())
    assert isinstance(settings, Settings)
    problems.extend(config_constraints.problems(settings, ""))
    problems.extend(_tree_problems(settings, serves_webhook))
    if startup:
        from exporter import config_checks

        problems.extend(config_checks.startup_problems(settings, env or {}))
    if problems:
        raise ConfigError(problems)
    return settings


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    nested_ok = {o.key for o in options() if typing.get_origin(o.type) is dict}
    out: list[tuple[str, Any]] = []
    for raw_key, value in doc.items():
        key = prefix + str(raw_key).replace("-", "_")
        if isinstance(value, dict) and key not in nested_ok:
            out.extend(_flatten(value, key + "."))
        else:
            out.append((key, value))
    return out


def _build(cls: type, values: dict[str, Any], prefix: tuple[str, ...]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        path = (*prefix, f.name)
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, values, path)
        elif ".".join(path) in values:
            kwargs[f.name] = values[".".join(path)]
    return cls(**kwargs)


def _tree_problems(settings: Settings, serves_webhook: bool) -> list[str]:
    """Rules that span sections (each section checks only itself)."""
    found = topology.problems(settings)
    if settings.rollback.mode == "enforce" and settings.web.role != topology.ROLE_COLLECTOR:
        if serves_webhook and not settings.webhook.token_file:
            found.append("rollback.mode enforce needs --webhook.token-file: an unauthenticated "
                         "endpoint must not be able to roll the cluster back")
        if settings.kube.enabled == "false":
            found.append("rollback.mode enforce needs Kubernetes access (kube.enabled is false)")
    return found


# --- printing -------------------------------------------------------------------------------


def as_mapping(settings: Settings) -> dict[str, Any]:
    """The settings tree as plain YAML-ready data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    mapping: dict[str, Any] = plain(settings)
    return mapping


def render(settings: Settings) -> str:
    """The effective configuration as YAML (a valid ``--config.file``)."""
    return yaml.safe_dump(as_mapping(settings), sort_keys=False)

