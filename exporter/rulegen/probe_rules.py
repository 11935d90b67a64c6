"""Alerting rules on the probes' results (``kpr_probe_checks_total``).

A check *fails on a node* when more than half of its pass/fail results there failed in the
short window (``error`` results, the probe's own trouble, are no verdict and never count).
Results belong to the node whose datapath handled the path, so a NodePort broken on one
eBPF node fails on that node whichever probe saw it.

* ``KprProbeCheckFailing``: a check fails on an eBPF node while it passes on at least one
  kube-proxy node: the eBPF datapath broke what kube-proxy serves. One alert per (check,
  node), with the ``node`` label the webhook scopes by, so only those nodes roll back.
* ``KprProbeCheckFailingEverywhere``: a check fails on every node that reported it. Not
  the switch's fault as far as the probes can tell (the echo, the Service, the network):
  it pages, never rolls back.

Probe traffic is steady, so neither needs an application traffic guard. Pure functions.
"""

from __future__ import annotations

from typing import Final

from exporter.rulegen import names as n
from exporter.rulegen.alerting import ROLLBACK_LABELS, alert_rule, paren
from exporter.rulegen.profiles import Profile, format_duration

#: More than this share of a check's results on a node failed: the check fails there.
FAILING_SHARE: Final = 0.5
FAILING: Final = "KprProbeCheckFailing"
EVERYWHERE: Final = "KprProbeCheckFailingEverywhere"


def _increase(window: str, result: str, datapath: str | None = None) -> str:
    """Results per (check, node) in ``window``: ``result`` is a regex of results."""
    selector = f'result=~"{result}"' if "|" in result else f'result="{result}"'
    if datapath is not None:
        selector = f'datapath="{datapath}",{selector}'
    return f"sum by (check, node) (increase({n.PROBE_CHECKS}{{{selector}}}[{window}]))"


def _failing(window: str, datapath: str | None) -> str:
    """(check, node) where more than half the results failed (on ``datapath``, or any)."""
    return (f"{_increase(window, 'fail', datapath)}\n/\n{_increase(window, 'pass|fail', datapath)}"
            f"\n> {FAILING_SHARE:g}")


def failing_expr(window: str) -> str:
    """A check failing on an eBPF node while some kube-proxy node passes it."""
    kube_proxy = n.DATAPATH_KUBE_PROXY
    passing = (f"{_increase(window, 'pass', kube_proxy)} > 0\nunless on (check, node)\n"
               f"{paren(_failing(window, kube_proxy))}")
    return (f"{paren(_failing(window, n.DATAPATH_EBPF))}\nand on (check)\n"
            f"count by (check) {paren(passing)}")


def everywhere_expr(window: str) -> str:
    """A check failing on every node that reported a pass or a fail for it."""
    reporting = f"{_increase(window, 'pass|fail')} > 0"
    return (f"count by (check) {paren(_failing(window, None))}\n"
            f"== on (check)\ncount by (check) {paren(reporting)}")


def probe_rules(p: Profile, runbook: str) -> list[dict[str, object]]:
    short = p.window("short")
    held = format_duration(p.for_regression)
    rule = (f"Failing means more than {FAILING_SHARE:.0%} of the check's pass/fail results on "
            f"the node failed over the last {short}; this has held for {held}.")
    return [
        alert_rule(
            FAILING, failing_expr(short), p.for_regression,
            {**ROLLBACK_LABELS, "sli": "probe_checks", "comparison": n.COMPARISON_CANARY},
            "A verification check fails on an eBPF (KPR) node while it passes on kube-proxy "
            "nodes.",
            "Check {{ $labels.check }} fails on eBPF node {{ $labels.node }} "
            "({{ $value | humanizePercentage }} of its results failed) while it passes on "
            f"kube-proxy nodes. {rule} `kpr-exporter verify` shows the matrix; the probes' "
            "logs name the address, the expected and the observed outcome. Requests a "
            "rollback of this node.",
            runbook,
        ),
        alert_rule(
            EVERYWHERE, everywhere_expr(short), p.for_regression,
            {"severity": "critical"},
            "A verification check fails on every node, whatever its datapath.",
            "Check {{ $labels.check }} fails on all {{ $value }} nodes that reported it, "
            f"kube-proxy and eBPF alike. {rule} Not a rollback case: the probes' target "
            "Services, their echo pods or the network are broken for every datapath.",
            runbook,
        ),
    ]
