"""One settings tree, loaded file -> environment -> flags and validated once.

Every component declares its settings as a frozen dataclass with defaults and a
``problems()`` method; the tree below mounts them. Each leaf field becomes

* a YAML key (``hubble: {tls: {ca_file: ...}}``; ``-`` and ``_`` are both accepted),
* an environment variable ``KPR_<FLAG_WITH_UNDERSCORES>`` (``KPR_HUBBLE_TLS_CA_FILE``),
* a command-line flag (``--hubble.tls.ca-file``), unless the field's metadata names
  the flag explicitly (``--scenario``).

``load`` reports every problem at once in a single ``ConfigError``. Pure module:
reads the config file it is given and the environment mapping it is handed.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter import model


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
        metadata={"help": "Address of /metrics, /healthz, /readyz and the webhook ([host]:port)."},
    )

    def problems(self) -> list[str]:
        return [] if _valid_listen(self.listen_address) else [
            f"web.listen_address {self.listen_address!r} is not [host]:port"
        ]


@dataclass(frozen=True)
class LogSettings:
    format: str = field(
        default="logfmt", metadata={"help": "Log line format.", "choices": ("logfmt", "json")}
    )
    level: str = field(
        default="info",
        metadata={"help": "Minimum level.", "choices": ("debug", "info", "warn", "error")},
    )

    def problems(self) -> list[str]:
        return []


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


def _valid_listen(address: str) -> bool:
    host, sep, port = address.rpartition(":")
    return bool(sep) and port.isdigit() and 0 <= int(port) <= 65535


# --- the tree ---------------------------------------------------------------------


def _sections() -> dict[str, type]:
    """Section name -> settings dataclass. Imported here so components stay independent."""
    from exporter.baseline.settings import BaselineSettings
    from exporter.judge.settings import JudgeSettings
    from exporter.kube.settings import KubeSettings
    from exporter.rollback.settings import RollbackSettings
    from exporter.simulator.settings import SimulatorSettings
    from exporter.sli.settings import SliSettings
    from exporter.sources.agents_settings import AgentSettings
    from exporter.sources.settings import HubbleSettings
    from exporter.webhook.settings import WebhookSettings

    return {
        "web": WebSettings,
        "log": LogSettings,
        "hubble": HubbleSettings,
        "agents": AgentSettings,
        "datapath": DatapathSettings,
        "kube": KubeSettings,
        "sli": SliSettings,
        "baseline": BaselineSettings,
        "judge": JudgeSettings,
        "webhook": WebhookSettings,
        "rollback": RollbackSettings,
        "simulator": SimulatorSettings,
    }


@functools.cache
def settings_class() -> type:
    """The root ``Settings`` dataclass, one field per section."""
    return dataclasses.make_dataclass(
        "Settings",
        [(name, cls, field(default_factory=cls)) for name, cls in _sections().items()],
        frozen=True,
    )


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

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def env(self) -> str:
        return "KPR_" + self.flag.lstrip("-").replace(".", "_").replace("-", "_").upper()


def options(root: type | None = None, prefix: tuple[str, ...] = ()) -> list[Option]:
    """Every leaf option below ``root`` (the whole tree by default), in declaration order."""
    root = root or settings_class()
    hints = typing.get_type_hints(root)
    found: list[Option] = []
    for f in dataclasses.fields(root):
        tp = hints[f.name]
        path = (*prefix, f.name)
        if dataclasses.is_dataclass(tp):
            found.extend(options(tp, path))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = f.metadata.get("flag") or "--" + ".".join(p.replace("_", "-") for p in path)
        choices = f.metadata.get("choices")
        found.append(Option(path, tp, default, f.metadata.get("help", ""),
                            tuple(choices) if choices else None, flag))
    return found


# --- parsing values -------------------------------------------------------------------


def parse_text(option: Option, text: str) -> Any:
    """Parse a flag or environment value; raises ValueError with a short reason."""
    tp = option.type
    if tp is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is str:
        return text
    origin = typing.get_origin(tp)
    if origin is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if origin is dict:
        pairs: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            k, sep, v = part.partition("=")
            if not sep or not k.strip():
                raise ValueError(f"expected key=value, got {part!r}")
            pairs[k.strip()] = v.strip()
        return pairs
    raise ValueError(f"unsupported option type {tp!r}")


def _coerce_yaml(option: Option, value: Any) -> Any:
    tp = option.type
    if isinstance(value, str) and tp is not str:
        return parse_text(option, value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    origin = typing.get_origin(tp)
    if origin is tuple and isinstance(value, list):
        return tuple(str(v) for v in value)
    if origin is dict and isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    expected = origin or tp
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"expected {getattr(expected, '__name__', expected)}, got {value!r}")
    return value


# --- loading ------------------------------------------------------------------------------


def load(
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Any:
    """Build the validated settings tree, or raise ``ConfigError`` listing every problem.

    ``flags`` maps flag names (``--hubble.address``) to their raw text, only for
    flags given on the command line.
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
                problems.append(f"config file: unknown key {key!r}")
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
            problems.append(f"unknown flag {flag}")
            continue
        try:
            values[option.key] = parse_text(option, text)
        except ValueError as exc:
            problems.append(f"{flag}: {exc}")

    for key, value in values.items():
        option = by_key[key]
        if option.choices and value not in option.choices:
            problems.append(f"{key}: {value!r} is not one of {', '.join(option.choices)}")

    settings = _build(settings_class(), values, ())
    problems.extend(_problems(settings, ()))
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
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, values, path)
        elif ".".join(path) in values:
            kwargs[f.name] = values[".".join(path)]
    return cls(**kwargs)


def _problems(node: Any, prefix: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    check = getattr(node, "problems", None)
    if callable(check):
        found.extend(check())
    for f in dataclasses.fields(node):
        child = getattr(node, f.name)
        if dataclasses.is_dataclass(child) and not isinstance(child, type):
            found.extend(_problems(child, (*prefix, f.name)))
    return found


# --- printing -------------------------------------------------------------------------------


def as_mapping(settings: Any) -> dict[str, Any]:
    """The settings tree as plain YAML-ready data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(settings)


def render(settings: Any) -> str:
    """The effective configuration as YAML (a valid ``--config.file``)."""
    return yaml.safe_dump(as_mapping(settings), sort_keys=False)

