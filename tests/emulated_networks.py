"""Which ``127.<n>.0.0/16`` each test's emulated datapath takes.

Two emulated clusters on the same network share their nodes' addresses, and a port one of
them holds bound but not listening (a refusing listener) can be bound by the other too:
whichever listens second fails. So the two pytest-xdist workers never share a network:
worker ``k`` of ``n`` takes its own slice of 100..249 for the clusters tests start
(``next_network``), and network ``20 + k`` for the named scenarios (the demo's stories,
``DEFAULT_NETWORK`` elsewhere), which ``tests/conftest.py`` hands the emulator. Within a
worker one test runs at a time; the process id only staggers separate runs.
"""

from __future__ import annotations

import itertools
import os

FIRST, LAST = 100, 249  # the slices' networks; 1..99 stay for named and fixed ones


def worker() -> tuple[int, int]:
    """This worker's index and the number of workers (0 and 1 without xdist)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name.removeprefix("gw") or 0), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def named_network() -> int:
    """The network for named scenarios in this worker."""
    return 20 + worker()[0]


def _slice() -> range:
    index, count = worker()
    size = (LAST - FIRST + 1) // max(count, 1)
    return range(FIRST + index * size, FIRST + (index + 1) * size)


_cycle = itertools.islice(itertools.cycle(_slice()), os.getpid() % len(_slice()), None)


def next_network() -> int:
    """A network of this worker's slice, a different one at each call (cycling)."""
    return next(_cycle)
