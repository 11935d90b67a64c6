"""Report model -> PNG images (matplotlib, Agg canvas, no pyplot state).

Charts: the migration timeline (phase and each node's datapath, with switch and rollback
markers), handshake p99 per datapath over time, drop rates by reason over time (service and
node level), and per service the handshake latency distribution before vs after (bucket
shares of the histogram increases over the report's windows). Every function returns PNG
bytes, or None when there is nothing to draw; text taken from labels is escaped for
matplotlib's math mode.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, date2num, num2date
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter
from matplotlib.typing import LineStyleType

from exporter.model import EBPF, KUBE_PROXY
from exporter.report import fmt
from exporter.report.model import Event, Line, Report, ServiceReport

DATAPATH_COLOURS = {KUBE_PROXY: "#4c72b0", EBPF: "#55a868", "unknown": "#999999"}
PHASE_COLOURS = {"before": "#4c72b0", "canary": "#dd8452", "after": "#55a868",
                 "rolled-back": "#c44e52", "unknown": "#999999"}
EVENT_STYLES: dict[str, tuple[str, LineStyleType]] = {
    "switch": ("#55a868", "--"), "switch-back": ("#dd8452", "--"),
    "switch-other": ("#999999", ":"), "rollback": ("#c44e52", "-"),
    "migration-step": ("#4c72b0", "-."), "migration-batch": ("#8172b3", "-.")}
EVENT_NAMES = {"switch": "switch to eBPF", "switch-back": "switch back to kube-proxy",
               "switch-other": "other datapath change", "rollback": "rollback",
               "migration-step": "migration step", "migration-batch": "migration batch"}
MAX_DISTRIBUTIONS = 24
_DPI = 96


@dataclass(frozen=True)
class Charts:
    timeline: bytes | None
    handshake_p99: bytes | None
    service_drops: bytes | None
    node_drops: bytes | None
    distributions: tuple[tuple[str, bytes], ...]  # (namespace/service, PNG)
    distributions_left_out: int = 0


def render_charts(report: Report, max_distributions: int = MAX_DISTRIBUTIONS) -> Charts:
    """Every chart of the report."""
    chosen = plotted_services(report.services)
    drawn = []
    for service in chosen[:max_distributions]:
        png = distribution_png(service, report.bounds)
        if png is not None:
            drawn.append((service.name, png))
    return Charts(
        timeline=timeline_png(report),
        handshake_p99=lines_png("Handshake p99 per datapath (all services)", report.handshake_p99,
                                report, "seconds", seconds_axis=True),
        service_drops=lines_png("Service drops by reason / datapath",
                                report.service_drop_rates, report, "drops per second"),
        node_drops=lines_png("Node (agent) drops by reason / datapath", report.node_drop_rates,
                             report, "drops per second"),
        distributions=tuple(drawn),
        distributions_left_out=max(0, len(chosen) - max_distributions),
    )


def plotted_services(services: Sequence[ServiceReport]) -> list[ServiceReport]:
    """Services with a distribution to show, most severe verdict first, then busiest."""
    severity = {"worse": 0, "inconclusive": 1, "not worse": 2, "better": 3, "no data": 4}
    with_data = [s for s in services
                 if any(c is not None and c.shares is not None for c in (s.before, s.after, s.control))]
    return sorted(with_data, key=lambda s: (severity.get(s.worst, 5),
                                            -sum(c.handshakes or 0.0 for c in (s.after, s.control)
                                                 if c is not None), s.name))


def timeline_png(report: Report) -> bytes | None:
    rows = [("phase", [(s.phase, s.start, s.end) for s in report.phases], PHASE_COLOURS)]
    rows += [(lane.name, [(s.phase, s.start, s.end) for s in lane.segments], DATAPATH_COLOURS)
             for lane in report.lanes]
    if not any(segments for _, segments, _ in rows):
        return None
    fig = Figure(figsize=(10, 1.2 + 0.45 * len(rows)), dpi=_DPI)
    ax = fig.add_subplot()
    seen: dict[str, str] = {}
    for y, (_, segments, colours) in enumerate(rows):
        for value, t0, t1 in segments:
            if value is None:
                continue
            colour = colours.get(value, "#999999")
            ax.broken_barh([(_num(t0), _num(t1) - _num(t0))], (y - 0.35, 0.7), color=colour)
            seen.setdefault(value, colour)
    ax.set_yticks(range(len(rows)), [mpl_text(name) for name, _, _ in rows])
    ax.invert_yaxis()
    markers = _events(ax, report.events)
    _time_axis(ax, report.start, report.end)
    handles = [_patch(colour, mpl_text(value)) for value, colour in seen.items()] + markers
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title("Migration timeline (phase, datapath per node; markers: switches, rollbacks)",
                 fontsize=10)
    return _png(fig)


def lines_png(title: str, lines: Sequence[Line], report: Report, ylabel: str,
              *, seconds_axis: bool = False) -> bytes | None:
    if not lines:
        return None
    fig = Figure(figsize=(10, 3.6), dpi=_DPI)
    ax = fig.add_subplot()
    for line in lines:
        style = "--" if line.datapath == KUBE_PROXY else "-"
        colour = DATAPATH_COLOURS.get(line.label) if seconds_axis else None
        ax.plot([_num(t) for t, _ in line.points], [v for _, v in line.points], style,
                label=mpl_text(line.label), color=colour, linewidth=1.4)
    if seconds_axis:
        ax.yaxis.set_major_formatter(lambda v, _pos: fmt.seconds(v))
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    handles, _ = ax.get_legend_handles_labels()
    handles += _events(ax, report.events)
    _time_axis(ax, report.start, report.end)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title(mpl_text(title), fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)


def distribution_png(service: ServiceReport, bounds: Sequence[float]) -> bytes | None:
    cohorts = [(label, cohort) for label, cohort in (
        ("kube-proxy, before switch", service.before),
        ("kube-proxy, same time (control)", service.control),
        ("eBPF, after switch", service.after)) if cohort is not None and cohort.shares is not None]
    if not cohorts or not bounds:
        return None
    fig = Figure(figsize=(8, 3), dpi=_DPI)
    ax = fig.add_subplot()
    names = [f"≤{fmt.seconds(b)}" for b in bounds] + ["+Inf"]
    width = 0.8 / len(cohorts)
    colours = {"kube-proxy, before switch": "#8da0cb", "kube-proxy, same time (control)": "#4c72b0",
               "eBPF, after switch": "#55a868"}
    for i, (label, cohort) in enumerate(cohorts):
        assert cohort.shares is not None
        xs = [x + (i - (len(cohorts) - 1) / 2) * width for x in range(len(names))]
        ax.bar(xs, [share * 100 for share in cohort.shares], width=width, color=colours[label],
               label=f"{label} (n={fmt.count(cohort.handshakes)})")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("% of handshakes")
    ax.set_title(mpl_text(f"{service.name}: handshake latency distribution"), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def mpl_text(text: str) -> str:
    """Label text as matplotlib shows it literally (no math mode from ``$``)."""
    return text.replace("\\", "\\\\").replace("$", r"\$")


def _events(ax: Axes, events: Sequence[Event]) -> list[Line2D]:
    """Vertical markers; returns one legend handle per kind of event drawn."""
    handles: dict[str, Line2D] = {}
    for event in events:
        colour, style = EVENT_STYLES.get(event.kind, ("#999999", ":"))
        ax.axvline(_num(event.at), color=colour, linestyle=style, linewidth=1.2, alpha=0.9)
        if event.kind not in handles:
            handles[event.kind] = Line2D([], [], color=colour, linestyle=style,
                                         label=EVENT_NAMES.get(event.kind, event.kind))
    return list(handles.values())


class TimeFormatter(Formatter):
    """UTC tick labels in the shortest of ``TIME_FORMATS`` that tells every tick apart
    (``%H:%M`` repeats when ticks are less than a minute apart)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self.format_ticks([x])[0]

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        labels: list[str] = []
        for pattern in TIME_FORMATS:
            labels = [num2date(v, tz=timezone.utc).strftime(pattern) for v in values]
            if len(set(labels)) == len(labels):
                break
        return labels


TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%m-%d %H:%M", "%m-%d %H:%M:%S")


def _time_axis(ax: Axes, start: float, end: float) -> None:
    if end > start:
        ax.set_xlim(_num(start), _num(end))
    locator = AutoDateLocator(minticks=4, maxticks=10, tz=timezone.utc)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(TimeFormatter())
    ax.set_xlabel("time (UTC)")


def time_tick_labels(start: float, end: float) -> list[str]:
    """The time-axis labels a chart over [``start``, ``end``] shows (for tests and checks)."""
    fig = Figure(figsize=(10, 3), dpi=_DPI)
    ax = fig.add_subplot()
    _time_axis(ax, start, end)
    FigureCanvasAgg(fig).draw()
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    return [label.get_text() for label, t in zip(ax.get_xticklabels(), ax.get_xticks())
            if t in ticks]


def _num(seconds: float) -> float:
    return float(date2num(datetime.fromtimestamp(seconds, tz=timezone.utc)))


def _patch(colour: str, label: str) -> Patch:
    return Patch(color=colour, label=label)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
