"""One recording split into rules that each select a part of the raw series.

In node mode a sum over the collectors' raw series selects every node's series, and
Prometheus' cost per evaluation follows the series a rule selects (``docs/scaling.md``). A
sum (or a quantile) whose result keeps a bounded label (``le`` of the bucket rates,
``datapath``) can be written as one rule per value of that label, all recording the same
name: each rule selects that value's series only, its result series are the ones of the
whole expression that carry that value, and each is computed from exactly the same input
series in the same order, so the recorded series are the unsplit rule's, bit for bit. A last rule takes every other
value (``label!~"v1|v2|..."``), so a value nobody listed, or spelt differently, is still
counted once. Pure functions over PromQL text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from exporter import metrics_contract as mc
from exporter.rulegen import names as n

#: The ``le`` values of the handshake histogram, as the collectors export them.
CONNECT_LE: Final = mc.SERVICE_CONNECT_DURATION.le_values
#: The ``le`` values of the L7 request-latency histogram.
REQUEST_LE: Final = mc.SERVICE_REQUEST_DURATION.le_values
#: The datapaths the counter sums are split by; ``unknown`` and anything else share the rest.
DATAPATHS: Final = (n.DATAPATH_KUBE_PROXY, n.DATAPATH_EBPF)

_RE2_SPECIAL: Final = frozenset(".^$*+?()[]{}|\\")


def regex_literal(value: str) -> str:
    """``value`` as an RE2 pattern matching it literally, written for a PromQL string
    (each regex backslash doubled: ``2.5e-05`` -> ``2\\\\.5e-05``)."""
    if '"' in value:
        raise ValueError(f"label value with a double quote not supported: {value!r}")
    return "".join("\\\\" + c if c in _RE2_SPECIAL else c for c in value)


@dataclass(frozen=True, slots=True)
class Shard:
    """One rule's part: the matcher selecting its series and the rule's static labels.

    A rule for one value carries that value as a label too (``le: "0.005"``): its result
    series have that label with that value already, so nothing changes, but the rules that
    record one name differ in their labels, which is what promtool's duplicate-rule lint
    (and a reader) checks to see that they cannot write the same series."""

    matcher: str
    labels: dict[str, str]


def split(label: str, values: tuple[str, ...]) -> tuple[Shard, ...]:
    """One shard per value, then one for every other value: each series falls in one."""
    if not values or len(set(values)) != len(values):
        raise ValueError(f"shard values of {label} must be distinct and not empty: {values}")
    rest = "|".join(regex_literal(v) for v in values)
    return (*(Shard(f'{label}="{v}"', {label: v}) for v in values),
            Shard(f'{label}!~"{rest}"', {}))


def select(metric: str, *matched: str) -> str:
    """``metric{m1, m2}`` (just ``metric`` without matchers)."""
    return f"{metric}{{{', '.join(matched)}}}" if matched else metric
