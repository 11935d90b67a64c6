"""Reading the families this project uses from a Cilium agent's exposition text.

``ExpositionFilter`` takes the body chunk by chunk, as it arrives, and keeps only the
sample lines of the read families (drop and forward counters, the KPR feature gauge,
the version, the process CPU, the Service implementation delay); every other line is
skipped without being kept, however long it is. An agent's body has thousands of lines
and only a few dozen matter. The filter is pure CPU work with no I/O: the scraper runs
it in a worker thread, one chunk at a time.

Which families are read, and what is built from them, is a ``Families`` value: the
agent's (``AGENT_FAMILIES``, the default) or another component's (kube-proxy,
``exporter.sources.kube_proxy_text``), so one streaming reader serves every scrape.

Samples are matched by their own name, so a missing ``# TYPE`` line does not matter.
A sample repeated with the same name and labels (in any label order) keeps its first
value, as Prometheus itself does with such a target, and the repeat is counted in
``duplicates``; series past ``max_series`` are not kept and are
counted in ``series_dropped``. A read line that is not valid exposition, longer than
``MAX_LINE_BYTES``, or a body without any ``cilium_`` sample raises
``AgentScrapeError("parse")`` (another component's ``Families`` names its own error and
marker prefix).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.sources.errors import SourceError
from exporter.sources.histogram_text import Histogram, histograms

# Metric spellings, preferred first. The ``cilium_datapath_*`` names existed briefly on
# Cilium's main branch (PR #27370, reverted by #29226); accepting them costs nothing.
DROP_COUNT_NAMES = ("cilium_drop_count_total", "cilium_datapath_drop_count_total")
FORWARD_COUNT_NAMES = ("cilium_forward_count_total", "cilium_datapath_forward_count_total")
#: 0/1 gauge, Cilium >= 1.17 only.
KPR_FEATURE_NAME = "cilium_feature_adv_connect_and_lb_kube_proxy_replacement_enabled"
VERSION_NAME = "cilium_version"
#: The agent's process CPU; Cilium names its process collector ``cilium_``, the Go default
#: has no prefix.
CPU_NAMES = ("cilium_process_cpu_seconds_total", "process_cpu_seconds_total")
#: Histogram (Cilium >= 1.16): seconds from a Service or its endpoints changing to the
#: datapath programmed, event queue excluded; labelled by ``action``.
IMPLEMENTATION_DELAY_NAME = "cilium_service_implementation_delay"
#: Hubble's own count of lost events (by ``source``). Cilium serves it with Hubble's metrics
#: (port 9965); it is read when the scraped body carries it (a merged or relabelled endpoint).
HUBBLE_LOST_NAME = "hubble_lost_events_total"
WANTED = (*DROP_COUNT_NAMES, *FORWARD_COUNT_NAMES, KPR_FEATURE_NAME, VERSION_NAME, *CPU_NAMES,
          f"{IMPLEMENTATION_DELAY_NAME}_bucket", f"{IMPLEMENTATION_DELAY_NAME}_sum",
          HUBBLE_LOST_NAME)

#: Longest sample line of a read family accepted (real ones are about 100 bytes).
MAX_LINE_BYTES = 16 * 1024

_SAMPLE = re.compile(
    r'([a-zA-Z_:][a-zA-Z0-9_:]*)[ \t]*(?:\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?'
    r"[ \t]+([^ \t\r]+)(?:[ \t]+(-?[0-9]+))?[ \t]*\r?"
)
_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(?:,|$)')
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"n": "\n", "\\": "\\", '"': '"'}

Labels = tuple[tuple[str, str], ...]


class ScrapeError(SourceError):
    """One metrics target could not be scraped; ``kind`` is one of ``ERROR_KINDS`` (or
    ``internal``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class AgentScrapeError(ScrapeError):
    """One agent could not be scraped; ``kind`` is one of ``ERROR_KINDS`` (or ``internal``)."""


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """What one good scrape of an agent said. Absent families are empty / None, not zero."""

    drops: dict[tuple[str, str], float]  # (reason, direction) -> dropped packets
    forwards: dict[str, float]  # direction -> forwarded packets
    kpr_enabled: float | None  # None: the agent has no feature gauge (Cilium < 1.17)
    version: str = ""  # the cilium_version label, "" when absent
    series_dropped: int = 0  # samples of series past the cap, not kept
    duplicates: int = 0  # samples repeating a series read before (the first value counts)
    cpu_seconds: float | None = None  # the agent process's CPU seconds; None when absent
    #: ``cilium_service_implementation_delay`` by ``action``; empty when absent or invalid
    programming: tuple[Histogram, ...] = ()
    #: ``hubble_lost_events_total`` by ``source``; empty when the body has none
    hubble_lost: dict[str, float] = field(default_factory=dict)


Series = Mapping[tuple[str, Labels], float]
#: Builds a component's snapshot from the kept series, the dropped and duplicate counts.
Build = Callable[[Series, int, int], Any]


class Families:
    """What an ``ExpositionFilter`` reads: the sample names it keeps, the name prefix that
    proves the body is the component's (``marker``), the error when none appears, how the
    snapshot is built and the error type raised."""

    def __init__(self, names: tuple[str, ...], *, marker: str, missing: str, build: Build,
                 error: type[ScrapeError]) -> None:
        self.names = names
        self.marker = marker.encode()
        self.missing = missing
        self.build = build
        self.error = error
        alternatives = b"|".join(re.escape(n.encode()) for n in names)
        #: A whole line of a read family (the name, then labels or a blank), in a chunk.
        self.line = re.compile(rb"^(?:" + alternatives + rb")(?=[{ \t])[^\n]*", re.MULTILINE)
        self.start = re.compile(rb"(?:" + alternatives + rb")(?=[{ \t])")
        self.marker_line = re.compile(rb"^" + re.escape(self.marker), re.MULTILINE)
        self.longest = max(map(len, names)) + 1


class ExpositionFilter:
    """Feed the body in order with ``feed()``, then ``finish()`` for the snapshot."""

    def __init__(self, *, max_series: int, charset: str = "utf-8",
                 families: Families | None = None) -> None:
        self._families = families = families or AGENT_FAMILIES
        self._error = families.error
        try:
            codecs.lookup(charset)
        except LookupError:
            raise self._error("parse", f"unknown charset {charset!r}") from None
        self._charset = charset
        self._max_series = max_series
        self._series: dict[tuple[str, Labels], float] = {}
        self._partial = b""  # the start of a line that may be of a read family
        self._skipping = False  # inside a line of another family: drop until its end
        self._seen_marker = False
        self.series_dropped = 0
        self.duplicates = 0

    def held_bytes(self) -> int:
        """Bytes of the body kept between two chunks (at most ``MAX_LINE_BYTES``)."""
        return len(self._partial)

    def feed(self, chunk: bytes) -> None:
        """Read the next piece of the body; copies at most one line of it."""
        start = 0
        if self._skipping or self._partial:
            cut = chunk.find(b"\n")
            if cut < 0:
                if not self._skipping:
                    self._hold(self._partial + chunk[:MAX_LINE_BYTES + 1])
                return
            if not self._skipping:
                line = self._partial + chunk[:min(cut, MAX_LINE_BYTES + 1)]
                self._partial = b""
                self._lines(line, 0, len(line))
            self._skipping = False
            start = cut + 1
        end = chunk.rfind(b"\n")
        if end < start:
            self._hold(chunk[start:start + MAX_LINE_BYTES + 1])
            return
        self._lines(chunk, start, end)
        self._hold(chunk[end + 1:end + 2 + MAX_LINE_BYTES])

    def finish(self) -> Any:
        """The snapshot of everything fed (an ``AgentSnapshot`` for the agent's families);
        the last line needs no final newline."""
        if self._partial:
            self._lines(self._partial, 0, len(self._partial))
            self._partial = b""
        if not self._seen_marker:
            raise self._error("parse", self._families.missing)
        return self._families.build(self._series, self.series_dropped, self.duplicates)

    def _lines(self, data: bytes, start: int, end: int) -> None:
        """Take the read samples among the complete lines ``data[start:end]`` (``start`` is
        the beginning of a line)."""
        families = self._families
        if not self._seen_marker and families.marker_line.search(data, start, end):
            self._seen_marker = True
        for match in families.line.finditer(data, start, end):
            self._take(match.group())

    def _hold(self, rest: bytes) -> None:
        """Keep an unfinished line only while it can be one of a read family (``rest`` is
        its start, cut after ``MAX_LINE_BYTES + 1``: enough to decide)."""
        self._partial = b""
        if not rest:
            return
        families = self._families
        if len(rest) < families.longest or families.start.match(rest):
            if len(rest) > MAX_LINE_BYTES:
                raise _too_long(rest, self._error)
            self._partial = rest
            return
        self._seen_marker = self._seen_marker or rest.startswith(families.marker)
        self._skipping = True

    def _take(self, raw: bytes) -> None:
        if len(raw) > MAX_LINE_BYTES:
            raise _too_long(raw, self._error)
        try:
            line = raw.decode(self._charset)
        except UnicodeDecodeError as exc:
            raise self._error("parse", f"sample is not {self._charset} text: {exc}") from None
        key, value = parse_sample(line, error=self._error)
        if key in self._series:
            self.duplicates += 1  # the first value stays, as in Prometheus
        elif len(self._series) >= self._max_series:
            self.series_dropped += 1
        else:
            self._series[key] = value


def parse_sample(line: str, *, error: type[ScrapeError] = AgentScrapeError
                 ) -> tuple[tuple[str, Labels], float]:
    """One exposition sample line -> ((name, sorted labels), value); the timestamp is read
    but not used. A malformed line raises ``error("parse")``."""
    match = _SAMPLE.fullmatch(line)
    if match is None:
        raise _malformed(line, "not a sample line", error)
    name, body, text, _ = match.groups()
    labels: dict[str, str] = {}
    pos, end = 0, len(body.rstrip(" \t")) if body else 0
    while pos < end:
        label = _LABEL.match(body, pos)
        if label is None:
            raise _malformed(line, "malformed labels", error)
        key, value = label.groups()
        if key in labels:
            raise _malformed(line, f"label {key!r} repeated", error)
        labels[key] = _ESCAPE.sub(_unescape, value) if "\\" in value else value
        pos = label.end()
    if "_" in text:
        raise _malformed(line, f"value {text!r} is not a number", error)
    try:
        number = float(text)
    except ValueError:
        raise _malformed(line, f"value {text!r} is not a number", error) from None
    return (name, tuple(sorted(labels.items()))), number


def parse_agent_metrics(text: str, *, max_series: int = 2000) -> AgentSnapshot:
    """Read a whole exposition text at once (the incremental path's reference)."""
    reader = ExpositionFilter(max_series=max_series)
    reader.feed(text.encode())
    return reader.finish()


def _snapshot(series: Mapping[tuple[str, Labels], float], dropped: int,
              duplicates: int) -> AgentSnapshot:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for (name, pairs), value in series.items():
        found.setdefault(name, []).append((dict(pairs), value))
    drops: dict[tuple[str, str], float] = {}
    for labels, value in _first_spelling(found, DROP_COUNT_NAMES):
        key = (labels.get("reason", ""), labels.get("direction", "UNKNOWN"))
        drops[key] = drops.get(key, 0.0) + value  # extra labels, if any, are summed away
    forwards: dict[str, float] = {}
    for labels, value in _first_spelling(found, FORWARD_COUNT_NAMES):
        direction = labels.get("direction", "UNKNOWN")
        forwards[direction] = forwards.get(direction, 0.0) + value
    kpr = found.get(KPR_FEATURE_NAME)
    version = found.get(VERSION_NAME)
    cpu = _first_spelling(found, CPU_NAMES)
    # Not what the agent scrape is mainly for: an invalid one is left out, the rest kept.
    programming = histograms(series, IMPLEMENTATION_DELAY_NAME, skip_invalid=True)
    hubble_lost: dict[str, float] = {}
    for labels, value in found.get(HUBBLE_LOST_NAME, ()):
        source = labels.get("source", "")
        hubble_lost[source] = hubble_lost.get(source, 0.0) + value
    return AgentSnapshot(
        drops=drops,
        forwards=forwards,
        kpr_enabled=max(v for _, v in kpr) if kpr else None,
        version=version[0][0].get("version", "") if version else "",
        series_dropped=dropped,
        duplicates=duplicates,
        cpu_seconds=cpu[0][1] if cpu else None,
        programming=programming,
        hubble_lost=hubble_lost,
    )


#: The Cilium agent's read families (the default of ``ExpositionFilter``).
AGENT_FAMILIES = Families(WANTED, marker="cilium_", missing="no Cilium agent metrics in the body",
                          build=_snapshot, error=AgentScrapeError)


def _first_spelling(
    found: Mapping[str, list[tuple[dict[str, str], float]]], names: tuple[str, ...]
) -> list[tuple[dict[str, str], float]]:
    for name in names:
        if name in found:
            return found[name]
    return []


def _unescape(match: re.Match[str]) -> str:
    return _UNESCAPED.get(match.group(1), match.group())


def _malformed(line: str, why: str, error: type[ScrapeError]) -> ScrapeError:
    shown = line if len(line) <= 160 else line[:160] + "..."
    return error("parse", f"not Prometheus text exposition ({why}): {shown!r}")


def _too_long(raw: bytes, error: type[ScrapeError]) -> ScrapeError:
    return error(
        "parse", f"a sample line longer than {MAX_LINE_BYTES} bytes: {raw[:80]!r}...")
