"""Rule profiles: windows, thresholds, traffic guards and pending times, loaded from one spec.

``alerts/profiles.yaml`` is the single source of truth; this module reads it into frozen
value objects and reports every problem at once (``ProfileError``). Pure: reads a file,
imports nothing but PyYAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

#: The spec shipped with the project (top-level ``alerts/``).
DEFAULT_SPEC_PATH: Final = Path(__file__).resolve().parents[2] / "alerts" / "profiles.yaml"

_DURATION: Final = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")

THRESHOLD_NAMES: Final = (
    "handshake_p99",
    "connect_failure_ratio",
    "drop_ratio",
    "kpr_sensitive_drop_ratio",
    "node_kpr_sensitive_drop_ratio",
)
GUARD_NAMES: Final = ("min_connections", "min_flows", "min_errors", "min_node_packets")
_PROFILE_KEYS: Final = frozenset(
    {"extends", "description", "runbook_base_url", "assumptions", "windows", "for", "guards",
     "thresholds"}
)


class ProfileError(ValueError):
    """The profile spec is unusable; the message lists every problem found."""


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus duration made of h/m/s parts (``90s``, ``5m``, ``1h30m``)."""
    match = _DURATION.match(str(text).strip())
    if not match or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r}")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: int) -> str:
    """The shortest Prometheus spelling of ``seconds`` (``300`` -> ``5m``, ``0`` -> ``0s``)."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Threshold:
    """Worse means above ``factor`` times the reference AND more than ``floor`` above it."""

    factor: float
    floor: float


@dataclass(frozen=True, slots=True)
class Profile:
    """One named set of rule parameters. Durations are in seconds."""

    name: str
    description: str
    runbook_base_url: str  # every runbook_url is this plus ``#<alert name in lower case>``
    scrape_interval: int
    evaluation_interval: int
    group_wait: int
    short: int
    long: int
    for_regression: int
    for_measurement: int
    for_rollback: int
    min_connections: int
    min_flows: int
    min_errors: int
    min_node_packets: int
    thresholds: Mapping[str, Threshold]
    lost_events_ratio: float
    judge_stalled_after: int  # seconds since the judge's last evaluation that count as stalled
    node_lost_share: float = 0.01  # per node: lost / (lost + flows), the judge's gate default

    def window(self, which: str) -> str:
        """The PromQL range of window ``short`` or ``long``."""
        return format_duration(self.short if which == "short" else self.long)


@dataclass(frozen=True, slots=True)
class Spec:
    """The whole spec: every profile by name."""

    profiles: Mapping[str, Profile]

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise ProfileError(f"unknown rule profile {name!r}; known: {known}") from None


def load_spec(path: Path | str = DEFAULT_SPEC_PATH) -> Spec:
    """Read and validate the spec file."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ProfileError(f"cannot read rule profiles from {path}: {err}") from err
    return parse_spec(doc)


def parse_spec(doc: Any) -> Spec:
    """Validate a spec document (already parsed YAML) into a ``Spec``."""
    if not isinstance(doc, Mapping):
        raise ProfileError("rule profiles: the document must be a mapping")
    problems: list[str] = []
    if "runbook_base_url" in doc:
        problems.append("runbook_base_url is a profile setting: move it under profiles.<name> "
                        "(profiles that extend another inherit it)")
    raw = doc.get("profiles")
    if not isinstance(raw, Mapping) or not raw:
        raise ProfileError("rule profiles: 'profiles' must be a non-empty mapping")
    profiles: dict[str, Profile] = {}
    for name in raw:
        merged = _resolve(str(name), raw, problems, ())
        if merged is not None:
            profile = _build(str(name), merged, problems)
            if profile is not None:
                profiles[str(name)] = profile
    if problems:
        raise ProfileError("rule profiles:\n  " + "\n  ".join(problems))
    return Spec(profiles=profiles)


def _resolve(name: str, raw: Mapping[str, Any], problems: list[str],
             seen: tuple[str, ...]) -> dict[str, Any] | None:
    """The profile with its ``extends`` chain merged in (the child wins, key by key)."""
    if name in seen:
        problems.append(f"profile {name}: 'extends' loops through {' -> '.join(seen + (name,))}")
        return None
    body = raw.get(name)
    if not isinstance(body, Mapping):
        problems.append(f"profile {name}: missing or not a mapping")
        return None
    unknown = sorted(set(body) - _PROFILE_KEYS)
    if unknown:
        problems.append(f"profile {name}: unknown keys {', '.join(unknown)}")
    parent_name = body.get("extends")
    if parent_name is None:
        return dict(body)
    parent = _resolve(str(parent_name), raw, problems, seen + (name,))
    if parent is None:
        return None
    return _merge(parent, body)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _build(name: str, body: Mapping[str, Any], problems: list[str]) -> Profile | None:
    before = len(problems)
    where = f"profile {name}"

    def section(key: str) -> Mapping[str, Any]:
        value = body.get(key)
        if not isinstance(value, Mapping):
            problems.append(f"{where}: '{key}' must be a mapping")
            return {}
        return value

    def duration(sec: Mapping[str, Any], key: str, path: str) -> int:
        if key not in sec:
            problems.append(f"{where}: {path}.{key} is missing")
            return 0
        try:
            return parse_duration(sec[key])
        except ValueError as err:
            problems.append(f"{where}: {path}.{key}: {err}")
            return 0

    def number(sec: Mapping[str, Any], key: str, path: str, *, minimum: float,
               integer: bool = False) -> float:
        value = sec.get(key)
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            problems.append(f"{where}: {path}.{key} must be a{'n integer' if integer else ' number'}")
            return 0
        assert isinstance(value, (int, float))
        if value < minimum:
            problems.append(f"{where}: {path}.{key} must be at least {minimum}")
        return value

    runbook = body.get("runbook_base_url")
    if not isinstance(runbook, str) or not re.match(r"^https?://[^\s#]+$", runbook):
        problems.append(f"{where}: runbook_base_url must be an http(s) URL without a fragment "
                        "(the alert's anchor is appended)")
    assumptions, windows, pending = section("assumptions"), section("windows"), section("for")
    guards, thresholds = section("guards"), section("thresholds")
    scrape = duration(assumptions, "scrape_interval", "assumptions")
    evaluation = duration(assumptions, "evaluation_interval", "assumptions")
    group_wait = duration(assumptions, "group_wait", "assumptions")
    short = duration(windows, "short", "windows")
    long_ = duration(windows, "long", "windows")
    if short and long_ and short >= long_:
        problems.append(f"{where}: windows.short must be shorter than windows.long")
    if short and scrape and short < 4 * scrape:
        problems.append(f"{where}: windows.short must cover at least 4 scrape intervals")
    parsed_thresholds: dict[str, Threshold] = {}
    for key in THRESHOLD_NAMES:
        entry = thresholds.get(key)
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: thresholds.{key} must be a mapping of factor and floor")
            continue
        factor = number(entry, "factor", f"thresholds.{key}", minimum=1.0)
        floor = number(entry, "floor", f"thresholds.{key}", minimum=0.0)
        parsed_thresholds[key] = Threshold(float(factor), float(floor))
    counts = {key: int(number(guards, key, "guards", minimum=1, integer=True)) for key in GUARD_NAMES}
    lost = number(thresholds, "lost_events_ratio", "thresholds", minimum=0.0)
    node_lost = number(thresholds, "node_lost_share", "thresholds", minimum=0.0)
    judge_stalled = duration(thresholds, "judge_stalled_after", "thresholds")
    if judge_stalled and judge_stalled <= scrape + evaluation:
        problems.append(f"{where}: thresholds.judge_stalled_after must be longer than one scrape "
                        "plus one evaluation interval (else a healthy judge looks stalled)")
    for_regression = duration(pending, "regression", "for")
    for_measurement = duration(pending, "measurement", "for")
    for_rollback = duration(pending, "rollback", "for")
    if short and for_regression <= short:
        problems.append(f"{where}: for.regression must be longer than windows.short "
                        "(else a blip in the short window alone requests rollback)")
    if len(problems) > before:
        return None
    return Profile(
        name=name,
        description=" ".join(str(body.get("description", "")).split()),
        runbook_base_url=str(runbook),
        scrape_interval=scrape,
        evaluation_interval=evaluation,
        group_wait=group_wait,
        short=short,
        long=long_,
        for_regression=for_regression,
        for_measurement=for_measurement,
        for_rollback=for_rollback,
        thresholds=parsed_thresholds,
        lost_events_ratio=float(lost),
        node_lost_share=float(node_lost),
        judge_stalled_after=judge_stalled,
        **counts,
    )
