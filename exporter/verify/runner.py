"""Run checks from one node: each check's results, and an ``error`` result instead of an
exception when the probe itself could not run a check. Failures are logged with the
address, the expected and the observed outcome."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from exporter.verify import results as r
from exporter.verify.checks import REGISTRY, Check, ProbeContext
from exporter.verify.net import ProbeError

log = logging.getLogger(__name__)


class UnknownCheck(ValueError):
    """A check name outside the vocabulary."""


async def run_checks(ctx: ProbeContext, names: Iterable[str] = r.CHECKS, *,
                     registry: Mapping[str, Check] = REGISTRY) -> list[r.CheckResult]:
    """Run ``names`` in order from ``ctx.node``; raises UnknownCheck before running any
    when a name is outside the vocabulary."""
    chosen = list(names)
    unknown = [n for n in chosen if n not in registry]
    if unknown:
        raise UnknownCheck(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(r.CHECKS)}")
    out: list[r.CheckResult] = []
    for name in chosen:
        try:
            found = await registry[name](ctx)
        except ProbeError as exc:
            found = [_error(ctx, name, str(exc))]
        except Exception as exc:  # a bug in a check must not stop the round
            log.exception("check %s from %s raised", name, ctx.node)
            found = [_error(ctx, name, f"internal error: {exc!r}")]
        for res in found:
            if res.result != r.PASS:
                log.warning("%s", res.describe())
        out.extend(found)
    return out


def _error(ctx: ProbeContext, check: str, why: str) -> r.CheckResult:
    return r.CheckResult(check, ctx.node, ctx.datapath, "", "", r.ERROR, "the check to run", why)
