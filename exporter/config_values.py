"""Parsing setting values from text (flags, ``KPR_*`` variables) and from YAML.

One parser per kind of value, shared by every way a setting is given. Durations
(every setting named ``*_seconds``) accept Prometheus-style values (``30s``,
``5m``, ``1h30m``, ``500ms``) and plain seconds (``30``, ``0.5``). Pure module.
"""

from __future__ import annotations

import math
import re
import typing
from typing import Any

#: Prometheus duration units, largest first, in seconds.
_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1,
          "ms": 0.001}
_DURATION = re.compile(
    r"^(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)


def parse_duration(text: str) -> float:
    """Seconds from ``30s``, ``5m``, ``1h30m``, ``500ms`` ... or plain seconds (``0.5``).

    Raises ValueError with a short reason; negative, infinite and NaN values are refused.
    """
    raw = str(text).strip()
    try:
        seconds = float(raw)
    except ValueError:
        match = _DURATION.match(raw)
        if not raw or match is None or not any(match.groupdict().values()):
            raise ValueError(
                f"expected a duration such as 30s, 5m, 1h30m, 500ms or plain seconds, got {text!r}"
            ) from None
        ms = sum(int(v) * round(_UNITS[unit] * 1000) for unit, v in match.groupdict().items() if v)
        return ms / 1000
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a non-negative finite duration, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest Prometheus-style text for ``seconds`` (``300.0`` -> ``5m``), else seconds."""
    if seconds <= 0 or seconds != round(seconds, 3):
        return f"{seconds:g}" if seconds else "0s"
    ms = round(seconds * 1000)
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = round(_UNITS[unit] * 1000)
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts)


def parse_listen(address: str) -> tuple[str, int]:
    """A listen address as ``(host, port)``: ``:9977`` -> ("0.0.0.0", 9977),
    ``127.0.0.1:0`` -> ("127.0.0.1", 0), ``[::1]:80`` -> ("::1", 80).

    The one parser of ``[host]:port`` listen addresses; raises ValueError.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address {address!r} is not [host]:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def local_url(address: str) -> str:
    """``http://`` URL of a listener on ``address`` seen from the same machine
    (every-interface hosts become loopback; IPv6 is bracketed); raises ValueError."""
    host, port = parse_listen(address)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def is_duration(name: str, tp: Any) -> bool:
    """Settings named ``*_seconds`` hold durations."""
    return name.endswith("_seconds") and tp in (int, float)


def parse_text(tp: Any, text: str, *, duration: bool = False) -> Any:
    """Parse a flag or environment value of type ``tp``; raises ValueError with a short reason."""
    if duration:
        seconds = parse_duration(text)
        if tp is int:
            if seconds != int(seconds):
                raise ValueError(f"expected whole seconds, got {text!r}")
            return int(seconds)
        return seconds
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


def coerce_yaml(tp: Any, value: Any, *, duration: bool = False) -> Any:
    """A YAML value as type ``tp`` (text goes through ``parse_text``); raises ValueError."""
    if isinstance(value, str) and tp is not str:
        return parse_text(tp, value, duration=duration)
    if duration and isinstance(value, (int, float)) and not isinstance(value, bool):
        return parse_text(tp, str(value), duration=True)
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
