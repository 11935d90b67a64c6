"""``migrate status [--watch]``: the migration as text, after ``kubectl argo rollouts get
rollout --watch``.

A header (name, status, message, current step, batch, soak timer, gates and their policies,
the nodes on each datapath, warnings), then a tree: the migration, each batch with its nodes
and state, and under the batches that reached their gates each gate's latest result with
its reason and evidence (gates still to run are listed as waiting), then the latest
timeline entries. ``render`` is pure: the caller passes ``now`` and prints the text (again
and again with ``--watch``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from exporter.migrate import model as m

ICONS = {"done": "✔", "failed": "✖", "paused": "॥", "running": "◌", "waiting": "·"}
MAX_NODES = 8
TIMELINE = 5
_LABEL = 12


def age(seconds: float) -> str:
    """kubectl-style age: 42s, 4m10s, 2h3m, 1d2h."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60}m" if s % 3600 // 60 else f"{s // 3600}h"
    return f"{s // 86400}d{s % 86400 // 3600}h" if s % 86400 // 3600 else f"{s // 86400}d"


def state(status: m.MigrationStatus) -> tuple[str, str]:
    """(icon, word) of the whole migration."""
    if status.step == m.STEP_COMPLETED:
        return ICONS["done"], "Completed"
    if status.step == m.STEP_ABORTED:
        return ICONS["failed"], "Aborted"
    if status.step == m.STEP_ABORTING or status.aborted:
        return ICONS["failed"], "Aborting"
    if status.paused:
        return ICONS["paused"], "Paused"
    if status.step == m.STEP_PENDING:
        return ICONS["waiting"], "Pending"
    return ICONS["running"], "Progressing"


def render(spec: m.MigrationSpec, status: m.MigrationStatus, now: float) -> str:
    lines = _header(spec, status, now)
    lines += ["", *_tree(spec, status, now)]
    recent = status.history[-TIMELINE:]
    if recent:
        lines += ["", "TIMELINE (latest last)"]
        lines += [f"  {age(now - h.at):>6} ago  {h.step:<18} {h.message}" for h in recent]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _field(label: str, value: str, indent: int = 0) -> str:
    return f"{' ' * indent}{label + ':':<{_LABEL + 2 - indent}}{value}"


def _header(spec: m.MigrationSpec, status: m.MigrationStatus, now: float) -> list[str]:
    icon, word = state(status)
    total = len(status.batches) or len(spec.batches)
    lines = [_field("Name", spec.id), _field("Status", f"{icon} {word}")]
    message = status.pause_reason if status.paused else (status.abort_reason or status.message)
    if message:
        lines.append(_field("Message", message))
    lines.append(_field("Step", f"{status.step} ({m.STEP_TITLES.get(status.step, '')})"))
    if status.batch >= 0:
        lines.append(_field("Batch", f"{status.batch + 1}/{total} ({_size(spec, status.batch)}): "
                                     f"{_names(status.current_batch)}"))
    else:
        lines.append(_field("Batch", f"none yet (batches {', '.join(spec.batches)})"))
    lines.append(_field("Soak", _soak(spec, status, now)))
    gates = ", ".join(spec.gates) or "NONE"
    lines.append(_field("Gates", f"{gates} (fail: {spec.on_fail}, inconclusive: "
                                 f"{spec.on_inconclusive}; verify waits "
                                 f"{age(spec.wait_seconds)})"))
    lines.append("Nodes:")
    migrated = sorted(status.migrated)
    planned = {n for batch in status.batches for n in batch}
    lines.append(_field("ebpf", f"{len(migrated)}  {_names(migrated)}", 2))
    rest = sorted(planned - set(migrated))
    lines.append(_field("kube-proxy", f"{len(rest)}  {_names(rest)}", 2))
    if status.restarting:
        lines.append(_field("restarting", _names(sorted(status.restarting)), 2))
    if status.cordoned:
        lines.append(_field("cordoned", _names(sorted(status.cordoned)), 2))
    for warning in (*spec.gate_warnings(), *status.warnings):
        lines.append(_field("Warning", warning))
    return lines


def _size(spec: m.MigrationSpec, index: int) -> str:
    return spec.batches[index] if 0 <= index < len(spec.batches) else "?"


def _names(nodes: Sequence[str]) -> str:
    if not nodes:
        return "-"
    shown = ", ".join(nodes[:MAX_NODES])
    return shown + (f", … {len(nodes) - MAX_NODES} more" if len(nodes) > MAX_NODES else "")


def _soak(spec: m.MigrationSpec, status: m.MigrationStatus, now: float) -> str:
    ends = status.soak_ends(spec.soak_seconds)
    if ends is None:
        return f"not running ({age(spec.soak_seconds)} per batch)"
    extended = (f", extended by {age(status.soak_extended_seconds)}"
                if status.soak_extended_seconds else "")
    if status.promoted:
        return f"skipped by promote after {age(now - (status.soak_started or now))}{extended}"
    total = ends - (status.soak_started or ends)
    if now >= ends:
        return f"done ({age(total)}{extended})"
    return f"{age(ends - now)} left of {age(total)}{extended}"


def _tree(spec: m.MigrationSpec, status: m.MigrationStatus, now: float) -> list[str]:
    icon, word = state(status)
    started = f"{age(now - status.started_at)}" if status.started_at else "-"
    lines = [f"{'NAME':<28} {'KIND':<10} {'STATUS':<15} {'AGE':>6}  INFO",
             f"⟳ {spec.id:<26} {'Migration':<10} {icon + ' ' + word:<15} {started:>6}  "
             f"step {status.step}"]
    count = len(status.batches)
    for i, nodes in enumerate(status.batches):
        last = i == count - 1
        branch, stem = ("└──", "   ") if last else ("├──", "│  ")
        b_icon, b_word = _batch_state(spec, status, i, now)
        began = (status.batch_started if i == status.batch and status.batch_started
                 else _batch_start(status.history, i))
        when = age(now - began) if began is not None else ""
        name = f"batch {i + 1} ({_size(spec, i)})"
        lines.append(f"{branch}{name:<25} {'Batch':<10} {b_icon + ' ' + b_word:<15} {when:>6}  "
                     f"{_names(list(nodes))}")
        if i <= status.batch:
            lines += _gates(spec, status, i, stem, now)
    return lines


def _batch_state(spec: m.MigrationSpec, status: m.MigrationStatus, i: int,
                 now: float) -> tuple[str, str]:
    if i > status.batch or status.batch < 0:
        return ICONS["waiting"], "Pending"
    results = _latest(status.batch_results(i))
    if any(r.result == "fail" for r in results):
        return ICONS["failed"], "Failed"
    if status.step == m.STEP_ABORTED:
        return ICONS["failed"], "Rolled back"
    if status.step == m.STEP_ABORTING:
        return ICONS["failed"], "Rolling back"
    if i < status.batch or status.step in (m.STEP_CLUSTER_WIDE, m.STEP_CLEANUP,
                                           m.STEP_COMPLETED):
        return ICONS["done"], "Passed"
    if status.paused:
        return ICONS["paused"], "Paused"
    if status.step == m.STEP_GATES:
        ends = status.soak_ends(spec.soak_seconds)
        soaking = ends is not None and now < ends and not status.promoted
        return ICONS["running"], "Soaking" if soaking else "Gating"
    return ICONS["running"], status.step.capitalize()


def _batch_start(history: Iterable[m.HistoryEntry], i: int) -> float | None:
    return next((h.at for h in history if h.batch == i), None)


def _latest(results: Iterable[m.GateOutcome]) -> list[m.GateOutcome]:
    """Each gate's latest result, in the order the gates first answered."""
    latest: dict[str, m.GateOutcome] = {}
    for r in results:
        latest[r.gate] = r
    return list(latest.values())


_RESULT_ICON = {"pass": ICONS["done"], "fail": ICONS["failed"], "inconclusive": ICONS["paused"]}


def _gates(spec: m.MigrationSpec, status: m.MigrationStatus, i: int, stem: str,
           now: float) -> list[str]:
    results = _latest(status.batch_results(i))
    answered = {r.gate for r in results}
    live = i == status.batch and not status.finished and status.step != m.STEP_ABORTING
    waiting = [g for g in spec.gates if g not in answered] if live else []
    rows: list[tuple[str, str, str, str, tuple[str, ...]]] = [
        (r.gate, f"{_RESULT_ICON.get(r.result, '?')} {r.result}", age(now - r.at), r.reason,
         r.evidence) for r in results]
    rows += [(g, f"{ICONS['waiting']} waiting", "", "", ()) for g in waiting]
    out = []
    for k, (gate, word, when, reason, evidence) in enumerate(rows):
        last = k == len(rows) - 1
        branch, inner = ("└──", "   ") if last else ("├──", "│  ")
        out.append(f"{stem}{branch}{gate:<22} {'Gate':<10} {word:<15} {when:>6}  {reason}")
        out += [f"{stem}{inner}      {line}" for line in evidence]
    return out
