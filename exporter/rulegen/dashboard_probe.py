"""The active-verification row of the migration overview: the probes' checks × nodes matrix
over time, their failures and their connect time (``kpr_probe_*``). Pure functions."""

from __future__ import annotations

from typing import Final

from exporter.rulegen import names as n
from exporter.rulegen.grafana import NODE, Panel, Row, Target, quantile, summed_rate, value_map

CHECK_NODE: Final = ("check", "node")
#: A (check, node) cell per interval: 2 any result failed, 1 passed, 0 only probe errors.
MATRIX_MAP: Final = value_map([("0", "error", "orange"), ("1", "pass", "green"),
                               ("2", "fail", "red")])


def _any(result: str, code: int) -> str:
    counted = summed_rate(n.PROBE_CHECKS, CHECK_NODE, NODE, f'result="{result}"', fn="increase")
    return f"({counted} > 0) * 0 + {code}"


def matrix_expr() -> str:
    """2 where a check failed on a node in the interval, else 1 where it passed, else 0."""
    return "\nor\n".join((_any("fail", 2), _any("pass", 1), _any("error", 0)))


def verification_row() -> Row:
    return Row("Active verification: the probes' checks on every node", [
        Panel("state-timeline", "Verification matrix over time",
              "Each check on each node (the node whose datapath handled the path) per "
              "interval: fail when any result failed, pass when results passed, error when "
              "the probe could not run the check. `kpr-exporter verify` prints the same "
              "matrix now.", "none",
              [Target(matrix_expr(), "{{node}} {{check}}")], width=24, height=10,
              mappings=MATRIX_MAP),
        Panel("timeseries", "Failed checks per second by check and node",
              "Failed verification checks; the probes' logs name the address, the expected "
              "and the observed outcome.", "cps",
              [Target(summed_rate(n.PROBE_CHECKS, ("check", "node", "datapath"), NODE,
                                  'result="fail"'), "{{check}} {{node}} ({{datapath}})")]),
        Panel("timeseries", "Probe handshake p99 by node and datapath",
              "99th percentile of the probes' TCP handshake time, per node whose datapath "
              "handled the path.", "s",
              [Target(quantile(0.99, n.PROBE_DURATION, ("node", "datapath"), NODE),
                      "{{node}} ({{datapath}})")]),
    ])
