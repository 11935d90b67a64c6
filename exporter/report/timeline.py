"""Timeline series -> phases, node datapath lanes, switch and rollback events, windows.

``plan_windows`` decides what "before" and "after" mean for a report: the first switch of a
node to eBPF inside the range splits it; without one, the whole range is one window and the
frozen baseline is the before side. Each range-query point stands for the step that starts
at it, so a change shows at the first point that sees it. Pure module.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from exporter.model import EBPF, KUBE_PROXY
from exporter.report.data import Series, Window
from exporter.report.model import Count, Event, Lane, PhaseSegment


def node_history(datapath_series: Iterable[Series]) -> dict[str, list[tuple[float, str, str]]]:
    """Per node, ``(time, datapath, source)`` in time order from ``kpr_node_datapath_info``.

    Where two series of a node overlap (a series that just ended stays visible for the
    lookback period when it ended without a staleness marker), the one whose current run
    started last wins: it is the newer information."""
    chosen: dict[str, dict[float, tuple[float, str, str]]] = defaultdict(dict)
    for series in datapath_series:
        node = series.labels.get("node", "")
        datapath = series.labels.get("datapath", "")
        source = series.labels.get("source", "")
        live = [t for t, v in series.points if v >= 0.5]
        gaps = [b - a for a, b in zip(live, live[1:])]
        joined = 1.5 * min(gaps) if gaps else 0.0
        born = previous = -math.inf
        for t in live:
            if t - previous > joined:
                born = t
            previous = t
            held = chosen[node].get(t)
            if held is None or born > held[0]:
                chosen[node][t] = (born, datapath, source)
    return {node: [(t, datapath, source) for t, (_, datapath, source) in sorted(points.items())]
            for node, points in chosen.items()}


def switch_events(switch_series: Iterable[Series], datapath_series: Iterable[Series],
                  start: float, end: float) -> list[Event]:
    """Node switches inside the range, from the switch-timestamp gauge; the direction comes
    from the node's datapath right after the switch."""
    history = node_history(datapath_series)
    events: list[Event] = []
    for series in switch_series:
        node = series.labels.get("node", "")
        seen: set[float] = set()
        for _, when in series.points:
            if not math.isfinite(when) or when in seen or not start <= when <= end:
                continue
            seen.add(when)
            now_on = _datapath_after(history.get(node, []), when)
            if now_on == EBPF:
                events.append(Event(when, "switch", f"{node} switched to eBPF", node))
            elif now_on == KUBE_PROXY:
                events.append(Event(when, "switch-back", f"{node} switched back to kube-proxy", node))
            else:
                events.append(Event(when, "switch-other",
                                    f"{node} changed datapath (now {now_on or 'unknown'})", node))
    return sorted(events, key=lambda e: (e.at, e.node))


def _datapath_after(entries: Sequence[tuple[float, str, str]], when: float) -> str | None:
    """The datapath the node switched to at ``when``: the first one after ``when`` that
    differs from the one before it. Samples just after ``when`` may still carry the old
    value (a query step evaluates the last scrape before the switch), so the first sample
    after ``when`` alone is not proof of the new datapath."""
    before = None
    for t, datapath, _ in entries:
        if t < when:
            before = datapath
        elif datapath != before:
            return datapath
    return entries[-1][1] if entries else None


def rollback_events(series_list: Iterable[Series], start: float,
                    step: float) -> tuple[list[Event], list[Count]]:
    """Rollbacks from ``kpr_rollbacks_total``: every increase of a (result, mode) counter
    (a reset counts its new value; a series that appears inside the range counts from 0)."""
    events: list[Event] = []
    counts: list[Count] = []
    for series in series_list:
        result = series.labels.get("result", "?")
        mode = series.labels.get("mode", "?")
        previous: float | None = None
        total = 0.0
        for t, v in series.points:
            if not math.isfinite(v):
                continue
            if previous is None:
                added = v if t > start + 1.5 * step else 0.0
            elif v < previous:
                added = v
            else:
                added = v - previous
            previous = v
            if added > 0:
                times = f" x{round(added)}" if round(added) > 1 else ""
                events.append(Event(t, "rollback", f"rollback {result} ({mode}){times}"))
                total += added
        if total > 0:
            counts.append(Count(result, mode, total))
    events.sort(key=lambda e: e.at)
    counts.sort(key=lambda c: (-c.value, c.label, c.datapath))
    return events, counts


def node_lanes(history: Mapping[str, Sequence[tuple[float, str, str]]], start: float,
               end: float, step: float) -> tuple[Lane, ...]:
    """Per node, runs of the same datapath; each range-query point stands for the step
    that starts at it (a change shows at the first point that sees it)."""
    lanes = []
    for node in sorted(history):
        segments: list[PhaseSegment] = []
        for t, datapath, _ in history[node]:
            t0, t1 = t, min(end, t + step)
            last = segments[-1] if segments else None
            if last is not None and last.phase == datapath and t0 - last.end <= step / 2:
                segments[-1] = PhaseSegment(datapath, last.start, t1)
            else:
                segments.append(PhaseSegment(datapath, t0, t1))
        lanes.append(Lane(node, tuple(segments)))
    return tuple(lanes)


def plan_windows(start: float, end: float, events: Iterable[Event]) -> tuple[Window, ...]:
    """``before`` / ``after`` split at the first switch to eBPF inside the range, or one
    ``range`` window when there is none."""
    switches = [e.at for e in events if e.kind == "switch" and start < e.at < end]
    if not switches:
        return (Window("range", start, end),)
    first = min(switches)
    return (Window("before", start, first), Window("after", first, end))


def judge_windows(start: float, end: float, short: float, long: float) -> tuple[Window, ...]:
    """The judge's ``short`` and ``long`` windows ending at ``end`` (not before ``start``)."""
    return (Window("short", max(start, end - short), end), Window("long", max(start, end - long), end))


def phase_segments(series_list: Iterable[Series], start: float, end: float,
                   step: float) -> tuple[PhaseSegment, ...]:
    """Runs of the same phase on the range-query grid (each point stands for the step that
    starts at it); ``phase=None`` where no series said anything."""
    by_slot: dict[int, str] = {}
    seen_any = False
    for series in series_list:
        phase = series.labels.get("phase", "")
        for t, v in series.points:
            seen_any = True
            if v >= 0.5:
                slot = round((t - start) / step)
                by_slot[slot] = min(by_slot.get(slot, phase), phase)
    if not seen_any:
        return ()
    slots = int(math.floor((end - start) / step + 1e-9))
    segments: list[PhaseSegment] = []
    for slot in range(slots + 1):
        held = by_slot.get(slot)
        t0 = start + slot * step
        t1 = min(end, t0 + step)
        if segments and segments[-1].phase == held:
            segments[-1] = PhaseSegment(held, segments[-1].start, t1)
        else:
            segments.append(PhaseSegment(held, t0, t1))
    return tuple(segments)
