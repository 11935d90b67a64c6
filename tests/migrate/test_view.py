"""The ``migrate status`` view, as golden text: a migration soaking its second batch, one
paused by an inconclusive gate, one aborted by a failed gate, a completed one and one not
started yet; and the pieces (ages, node lists, soak timer)."""

from __future__ import annotations

from dataclasses import replace
from textwrap import dedent

import pytest

from exporter.migrate import model as m
from exporter.migrate.view import age, render, state

T = 10_000.0
SPEC = m.MigrationSpec(id="kpr-1", batches=("1", "50%", "100%"), soak_seconds=900.0)
BATCHES = (("node-a",), ("node-b", "node-c"), ("node-d",))
FIRST = (
    m.GateOutcome("verify", "pass", "13 check(s) passed on 1 batch node(s)", 0, T - 1500,
                  ("compared with the probes' results read before the batch",)),
    m.GateOutcome("judge", "pass", "2 service(s) judged not worse, none worse", 0, T - 1000,
                  ("windows 300s / 900s ending 900s after the batch started",
                   "web/sparse: too little traffic to judge")),
    m.GateOutcome("alerts", "pass", 'no kpr_action="rollback" alert firing', 0, T - 1000),
)
HISTORY = (
    m.HistoryEntry(T - 2000, m.STEP_PREFLIGHT, "preflight checks pass"),
    m.HistoryEntry(T - 1800, m.STEP_LABEL, "labelled node-a", 0),
    m.HistoryEntry(T - 900, m.STEP_LABEL, "labelled node-b, node-c", 1),
    m.HistoryEntry(T - 240, m.STEP_GATES, "soak started", 1),
)
SOAKING = m.MigrationStatus(
    step=m.STEP_GATES, batch=1, batches=BATCHES, migrated=("node-a", "node-b", "node-c"),
    gate_results=(*FIRST, m.GateOutcome("verify", "pass", "13 check(s) passed on 2 batch "
                                        "node(s)", 1, T - 250)),
    soak_started=T - 240, started_at=T - 2000, history=HISTORY, message="soaking batch 2")


def test_a_batch_soaking_after_its_verify_gate_passed() -> None:
    assert render(SPEC, SOAKING, T) == dedent("""\
        Name:         kpr-1
        Status:       ◌ Progressing
        Message:      soaking batch 2
        Step:         gates (gates decide: proceed, pause or abort)
        Batch:        2/3 (50%): node-b, node-c
        Soak:         11m left of 15m
        Gates:        verify, judge, alerts (fail: abort, inconclusive: pause; verify waits 5m)
        Nodes:
          ebpf:       3  node-a, node-b, node-c
          kube-proxy: 1  node-d

        NAME                         KIND       STATUS             AGE  INFO
        ⟳ kpr-1                      Migration  ◌ Progressing   33m20s  step gates
        ├──batch 1 (1)               Batch      ✔ Passed           30m  node-a
        │  ├──verify                 Gate       ✔ pass             25m  13 check(s) passed on 1 batch node(s)
        │  │        compared with the probes' results read before the batch
        │  ├──judge                  Gate       ✔ pass          16m40s  2 service(s) judged not worse, none worse
        │  │        windows 300s / 900s ending 900s after the batch started
        │  │        web/sparse: too little traffic to judge
        │  └──alerts                 Gate       ✔ pass          16m40s  no kpr_action="rollback" alert firing
        ├──batch 2 (50%)             Batch      ◌ Soaking          15m  node-b, node-c
        │  ├──verify                 Gate       ✔ pass           4m10s  13 check(s) passed on 2 batch node(s)
        │  ├──judge                  Gate       · waiting
        │  └──alerts                 Gate       · waiting
        └──batch 3 (100%)            Batch      · Pending               node-d

        TIMELINE (latest last)
          33m20s ago  preflight          preflight checks pass
             30m ago  label              labelled node-a
             15m ago  label              labelled node-b, node-c
              4m ago  gates              soak started
        """)


def test_paused_by_an_inconclusive_gate_with_the_soak_extended() -> None:
    status = replace(
        SOAKING, paused=True, pause_reason="gate judge inconclusive: too little evidence",
        soak_extended_seconds=600.0, restarting={}, cordoned=("node-b",),
        gate_results=(*SOAKING.gate_results,
                      m.GateOutcome("judge", "inconclusive", "too little evidence: 0 "
                                    "service(s) with a conclusive verdict, 1 needed", 1, T - 5,
                                    ("windows 300s / 900s ending 900s after the batch started",)),
                      m.GateOutcome("alerts", "pass", "no alert", 1, T - 5)),
        warnings=("gate(s) judge turned off for migration kpr-0",), history=())
    text = render(SPEC, status, T + 700.0)
    head, tree = text.split("\n\n")
    assert head == dedent("""\
        Name:         kpr-1
        Status:       ॥ Paused
        Message:      gate judge inconclusive: too little evidence
        Step:         gates (gates decide: proceed, pause or abort)
        Batch:        2/3 (50%): node-b, node-c
        Soak:         9m20s left of 25m, extended by 10m
        Gates:        verify, judge, alerts (fail: abort, inconclusive: pause; verify waits 5m)
        Nodes:
          ebpf:       3  node-a, node-b, node-c
          kube-proxy: 1  node-d
          cordoned:   node-b
        Warning:      gate(s) judge turned off for migration kpr-0""")
    assert dedent("""\
        ├──batch 2 (50%)             Batch      ॥ Paused                node-b, node-c
        │  ├──verify                 Gate       ✔ pass          15m50s  13 check(s) passed on 2 batch node(s)
        │  ├──judge                  Gate       ॥ inconclusive  11m45s  too little evidence: 0 service(s) with a conclusive verdict, 1 needed
        │  │        windows 300s / 900s ending 900s after the batch started
        │  └──alerts                 Gate       ✔ pass          11m45s  no alert
        """) in tree + "\n"
    assert "TIMELINE" not in text


def test_aborted_by_a_failed_gate() -> None:
    status = replace(
        SOAKING, step=m.STEP_ABORTED, aborted=True, migrated=(),
        abort_reason="gate verify failed: 1 check(s) failed on the batch's nodes",
        gate_results=(*FIRST, m.GateOutcome(
            "verify", "fail", "1 check(s) failed on the batch's nodes, 0 regression(s) on "
            "other nodes", 1, T - 100, ("nodeport-loopback on node-b: fail (refused)",))),
        soak_started=None, history=HISTORY[-1:])
    text = render(SPEC, status, T)
    assert text.splitlines()[:6] == [
        "Name:         kpr-1", "Status:       ✖ Aborted",
        "Message:      gate verify failed: 1 check(s) failed on the batch's nodes",
        "Step:         aborted (aborted: the cluster is back on kube-proxy)",
        "Batch:        2/3 (50%): node-b, node-c", "Soak:         not running (15m per batch)"]
    assert "  ebpf:       0  -\n  kube-proxy: 4  node-a, node-b, node-c, node-d\n" in text
    assert "├──batch 1 (1)               Batch      ✖ Rolled back           node-a\n" in text
    assert ("├──batch 2 (50%)             Batch      ✖ Failed            4m  node-b, node-c\n"
            "│  └──verify                 Gate       ✖ fail           1m40s  1 check(s) failed "
            "on the batch's nodes, 0 regression(s) on other nodes\n"
            "│           nodeport-loopback on node-b: fail (refused)\n") in text


def test_completed_and_not_started() -> None:
    done = replace(SOAKING, step=m.STEP_COMPLETED, batch=2, completed=True, soak_started=None,
                   migrated=("node-a", "node-b", "node-c", "node-d"), message="")
    text = render(SPEC, done, T)
    assert state(done) == ("✔", "Completed")
    assert text.count("Batch      ✔ Passed") == 3 and "waiting" not in text
    assert "kube-proxy: 0  -" in text

    fresh = m.MigrationStatus()
    spec = replace(SPEC, gates=())
    assert render(spec, fresh, T) == dedent("""\
        Name:         kpr-1
        Status:       · Pending
        Step:         pending (recorded, not started)
        Batch:        none yet (batches 1, 50%, 100%)
        Soak:         not running (15m per batch)
        Gates:        NONE (fail: abort, inconclusive: pause; verify waits 5m)
        Nodes:
          ebpf:       0  -
          kube-proxy: 0  -
        Warning:      gate(s) verify, judge, alerts turned off for migration kpr-1: batches go ahead without that evidence

        NAME                         KIND       STATUS             AGE  INFO
        ⟳ kpr-1                      Migration  · Pending            -  step pending
        """)


def test_promoted_soak_and_many_nodes() -> None:
    nodes = tuple(f"n{i:02d}" for i in range(12))
    status = replace(SOAKING, promoted=True, batches=(nodes,), batch=0, migrated=nodes,
                     gate_results=())
    text = render(replace(SPEC, batches=("100%",)), status, T)
    assert "Soak:         skipped by promote after 4m\n" in text
    assert "  ebpf:       12  n00, n01, n02, n03, n04, n05, n06, n07, … 4 more\n" in text
    assert "└──batch 1 (100%)            Batch      ◌ Gating           30m" in text
    started = render(replace(SPEC, batches=("100%",)), replace(status, batch_started=T - 60), T)
    assert "└──batch 1 (100%)            Batch      ◌ Gating            1m  n00" in started


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (59.9, "59s"), (60, "1m"), (250, "4m10s"), (3600, "1h"), (7380, "2h3m"),
    (86400, "1d"), (93600, "1d2h"), (-5, "0s")])
def test_age(seconds: float, text: str) -> None:
    assert age(seconds) == text
