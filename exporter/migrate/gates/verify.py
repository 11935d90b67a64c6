"""The ``verify`` gate: the probes' checks pass on the batch's nodes, and nothing that passed
before the batch fails elsewhere.

It reads the probes' results the way ``kpr-exporter verify --wait`` does
(``exporter.verify.verify_cmd``: a fresh full round of every probe within ``wait``, the
``kpr_probe_*`` expositions turned into the checks × nodes matrix by
``exporter.verify.readback``), through a ``ProbeReader`` role: where the probes are
(``urls``) and how one exposition is read (``fetch``). It parses only what its verdict needs
(``readback.VERDICT``: no connect-time buckets), and only the probes' state while it waits.

* ``fail``: a check failed on a batch node in the fresh round, or a check whose cell passed
  before the batch fails now on another node (a control node, or one migrated earlier);
* ``inconclusive``: no fresh full round within the wait, probes that cannot be read, a
  batch node the probes do not see on eBPF yet, or a check without a result there;
* ``pass``: every applicable check passed on every batch node, and no regression elsewhere.

"Before the batch" is the matrix of the probes' cumulative results read by ``before_batch``
(for a controller that calls it before it changes the batch's nodes), else the fresh round
of the gate's evaluation of the previous batch, else (the first batch, or after a restart)
the cumulative results read when the evaluation starts: a cell passes there only when no
result on the node's current datapath ever failed. It is chosen once per batch, so a batch
judged again after a pause is never compared with its own results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from exporter.migrate.gates.base import FAIL, INCONCLUSIVE, PASS, BatchContext, GateResult
from exporter.model import EBPF
from exporter.verify import matrix as mx
from exporter.verify import readback as rb
from exporter.verify import results as r
from exporter.verify import verify_cmd as vc

NAME = "verify"
MAX_EVIDENCE = 12


class ProbeUnavailable(Exception):
    """The probes cannot be found (e.g. no probe pod runs)."""


class ProbeReader(Protocol):
    """Where the probes' ``/metrics`` are and how one is read."""

    async def urls(self) -> Sequence[str]:
        """The probes' URLs now; raises ProbeUnavailable."""
        ...

    async def fetch(self, url: str) -> str:
        """One exposition; raises ``verify_cmd.FetchError``."""
        ...


class StaticProbes:
    """A fixed list of probe (or exporter) URLs read over HTTP."""

    def __init__(self, urls: Sequence[str], fetch: vc.Fetch = vc.http_fetch) -> None:
        self._urls = list(urls)
        self._fetch = fetch

    async def urls(self) -> Sequence[str]:
        if not self._urls:
            raise ProbeUnavailable("no probe URL configured")
        return list(self._urls)

    async def fetch(self, url: str) -> str:
        return await self._fetch(url)


class ClusterProbes:
    """The running probe pods, found through the Kubernetes API as ``verify --from-cluster``
    finds them (``exporter.probe_pods``), each time the gate reads."""

    def __init__(self, kube: object, settings: object, fetch: vc.Fetch = vc.http_fetch) -> None:
        self.kube = kube
        self.settings = settings
        self._fetch = fetch

    async def urls(self) -> Sequence[str]:
        from exporter.probe_pods import ProbeDiscoveryError, cluster_urls

        try:
            return await cluster_urls(self.kube, self.settings)  # type: ignore[arg-type]
        except ProbeDiscoveryError as exc:
            raise ProbeUnavailable(str(exc)) from None

    async def fetch(self, url: str) -> str:
        return await self._fetch(url)


class VerifyGate:
    """The ``verify`` gate (see the module's docstring)."""

    name = NAME

    def __init__(self, reader: ProbeReader, wait_seconds: float, *,
                 clock: Callable[[], float] = time.time, sleep: vc.Sleep = asyncio.sleep,
                 poll_seconds: float = vc.POLL_SECONDS) -> None:
        self.reader = reader
        self.wait_seconds = wait_seconds
        self.clock = clock
        self.sleep = sleep
        self.poll_seconds = poll_seconds
        self._before: tuple[tuple[str, ...], rb.Reading] | None = None
        self._last_fresh: tuple[tuple[str, ...], rb.Reading] | None = None
        self._references: dict[tuple[str, ...], tuple[rb.Reading, str]] = {}

    async def before_batch(self, ctx: BatchContext) -> None:
        """Remember the probes' results before the batch's nodes change; a reading that
        fails leaves the gate to its fallbacks (the evaluation says which it used)."""
        try:
            self._before = (ctx.batch, await vc.read(await self.reader.urls(), self.reader.fetch,
                                                     only=rb.VERDICT))
        except (vc.FetchError, ProbeUnavailable):
            self._before = None

    async def evaluate(self, ctx: BatchContext) -> GateResult:
        try:
            urls = await self.reader.urls()
            now_total = await vc.read(urls, self.reader.fetch, only=rb.VERDICT)
            wait = self.wait_seconds if ctx.wait_seconds is None else ctx.wait_seconds
            fresh, problems = await vc.wait_fresh(
                urls, wait, fetch=self.reader.fetch, clock=self.clock,
                sleep=self.sleep, poll=self.poll_seconds, first=now_total, only=rb.VERDICT)
        except (vc.FetchError, ProbeUnavailable) as exc:
            return GateResult(NAME, INCONCLUSIVE, f"cannot read the probes: {exc}")
        before, whence = self._reference(ctx, now_total)
        self._last_fresh = (ctx.batch, fresh)
        return judge(ctx, rb.to_matrix(fresh), rb.to_matrix(before), problems, whence)

    def _reference(self, ctx: BatchContext, now_total: rb.Reading) -> tuple[rb.Reading, str]:
        """What "before the batch" is; chosen once per batch, so judging a batch again
        (after a pause) never compares it with its own results."""
        if self._before is not None and self._before[0] == ctx.batch:
            return self._before[1], "the probes' results read before the batch"
        if ctx.batch in self._references:
            return self._references[ctx.batch]
        if self._last_fresh is not None and self._last_fresh[0] != ctx.batch:
            chosen = self._last_fresh[1], "the fresh round of the previous batch's gate"
        else:
            chosen = now_total, ("no reading from before the batch: the probes' results so "
                                 "far (a cell with any failure on its datapath is not compared)")
        self._references = {ctx.batch: chosen}
        return chosen


def judge(ctx: BatchContext, fresh: mx.Matrix, before: mx.Matrix, problems: Sequence[str],
          whence: str) -> GateResult:
    """The gate's answer from the fresh round's matrix and the one before the batch."""
    failures: list[str] = []
    missing: list[str] = []
    for node in ctx.batch:
        datapath = fresh.datapaths.get(node)
        if datapath is None:
            missing.append(f"{node}: no probe result for this node")
            continue
        if datapath != EBPF:
            missing.append(f"{node}: the probes still see it on {datapath}")
            continue
        for check in fresh.checks:
            cell = fresh.cell(check, node)
            if cell.status == r.FAIL:
                failures.append(f"{check} on {node}: fail"
                                + (f" ({cell.failures[0]})" if cell.failures else ""))
            elif cell.status == mx.NONE:
                missing.append(f"{check} on {node}: {cell.reason}")
    regressions = _regressions(ctx, fresh, before)
    checked = len(fresh.checks) * len(ctx.batch)
    basis = f"compared with {whence}"
    if failures or regressions:
        reason = (f"{len(failures)} check(s) failed on the batch's nodes, "
                  f"{len(regressions)} regression(s) on other nodes")
        return GateResult(NAME, FAIL, reason, _cap([*failures, *regressions, basis]))
    if problems or missing:
        reason = ("no fresh full round of every probe" if problems
                  else f"{len(missing)} of {checked} batch cells without a result on eBPF")
        return GateResult(NAME, INCONCLUSIVE, reason, _cap([*problems, *missing]))
    if not ctx.batch:
        return GateResult(NAME, INCONCLUSIVE, "the batch has no node")
    passed = sum(1 for n in ctx.batch for c in fresh.checks
                 if fresh.cell(c, n).status == r.PASS)
    return GateResult(NAME, PASS, f"{passed} check(s) passed on {len(ctx.batch)} batch "
                      "node(s) (the others do not apply); no regression on other nodes",
                      (basis,))


def _regressions(ctx: BatchContext, fresh: mx.Matrix, before: mx.Matrix) -> list[str]:
    """Cells of non-batch nodes that passed before and fail now on the same datapath."""
    out = []
    others = sorted({*ctx.control, *ctx.migrated} - set(ctx.batch))
    for node in others:
        if node not in fresh.datapaths or before.datapaths.get(node) != fresh.datapaths[node]:
            continue
        for check in fresh.checks:
            now = fresh.cell(check, node)
            if now.status == r.FAIL and before.cells.get((check, node), _NO).status == r.PASS:
                out.append(f"{check} on {node} ({fresh.datapaths[node]}): passed before the "
                           "batch, fails now")
    return out


_NO = mx.Cell(mx.NONE)


def _cap(lines: Sequence[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_EVIDENCE:
        return tuple(lines)
    return (*lines[:MAX_EVIDENCE - 1], f"... and {len(lines) - MAX_EVIDENCE + 1} more")


__all__ = ["NAME", "PASS", "ProbeReader", "ProbeUnavailable", "StaticProbes", "VerifyGate",
           "judge"]
