"""Run every benchmark in ``bench/`` in sequence: ``python -m bench [NAME ...]`` (``make bench``).

Each ``bench_*.py`` module runs as its own process (``python -m bench.<name>``)
with its default arguments; its output is shown as it comes, and a summary at
the end repeats each benchmark's target and ratio lines. Missing a target is a
result, not an error: the exit status is non-zero only when a benchmark crashes
(non-zero exit) or overruns ``--timeout``. ``NAME`` picks benchmarks by module
name, with or without the ``bench_`` prefix; ``--list`` prints the names.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Output lines repeated in the summary: the figure against its target.
_KEYWORDS = ("target", "ratio")
#: Benchmarks too long for the default run; they run when named (``python -m bench sizing``).
LONG = frozenset({"bench_soak", "bench_sizing"})


@dataclass
class Outcome:
    name: str
    seconds: float = 0.0
    status: str = "ok"
    key_lines: list[str] = field(default_factory=list)


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def select(names: list[str], wanted: list[str]) -> list[str]:
    if not wanted:
        return [name for name in names if name not in LONG]
    chosen = []
    for item in wanted:
        name = item if item.startswith("bench_") else f"bench_{item}"
        if name not in names:
            raise SystemExit(f"no benchmark {item!r}; known: {', '.join(names)}")
        chosen.append(name)
    return chosen


def run_one(name: str, timeout: float) -> Outcome:
    outcome = Outcome(name)
    print(f"=== {name} ===", flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    overran = threading.Event()

    def stop() -> None:
        overran.set()
        proc.kill()

    timer = threading.Timer(timeout, stop)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if any(word in line.lower() for word in _KEYWORDS):
                outcome.key_lines.append(line.strip())
        code = proc.wait()
    finally:
        timer.cancel()
    outcome.seconds = time.monotonic() - start
    if overran.is_set():
        outcome.status = f"timed out after {timeout:.0f} s"
    elif code != 0:
        outcome.status = f"crashed (exit {code})"
    print(flush=True)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*",
                        help=f"benchmarks to run (default: all but {', '.join(sorted(LONG))})")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one benchmark may take before it counts as crashed")
    parser.add_argument("--list", action="store_true", help="print the benchmark names")
    args = parser.parse_args(argv)
    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    outcomes = [run_one(name, args.timeout) for name in select(names, args.names)]

    total = sum(o.seconds for o in outcomes)
    print(f"=== summary: {len(outcomes)} benchmarks in {total:.0f} s ===")
    for o in outcomes:
        print(f"{o.name:<16} {o.status:<8} {o.seconds:6.1f} s")
        for line in o.key_lines:
            print(f"    {line}")
    failed = [o.name for o in outcomes if o.status != "ok"]
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
