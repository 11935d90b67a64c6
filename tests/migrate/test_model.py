"""The migration as data: spec checks and parsing, status round trip, the timeline."""

from __future__ import annotations

import json

import pytest

from exporter.migrate.model import (
    STEP_LABEL, STEP_PENDING, STEP_PREFLIGHT, STEPS, GateOutcome, MigrationSpec, MigrationStatus,
    SpecError, parse_batches, parse_gates,
)


def test_steps_are_declared_once_in_order():
    assert len(STEPS) == len(set(STEPS)) and STEPS[0] == STEP_PENDING


def test_batches_and_gates_parse_and_bad_ones_are_named():
    assert parse_batches("1, 10%,50%,100%") == ("1", "10%", "50%", "100%")
    with pytest.raises(SpecError, match="'x'.*'0%'"):
        parse_batches("x,0%")
    assert parse_gates("none") == () and parse_gates("verify,judge,verify") == ("verify", "judge")
    with pytest.raises(SpecError, match="bogus"):
        parse_gates("verify,bogus")


def test_spec_problems_and_gate_warnings():
    assert MigrationSpec("m").problems() == [] and MigrationSpec("m").gate_warnings() == ()
    bad = MigrationSpec("m", batches=(), on_fail="ignore", wait_seconds=0)
    assert len(bad.problems()) == 3
    assert "verify, judge, alerts turned off" in MigrationSpec("m", gates=()).gate_warnings()[0]


def test_spec_and_status_survive_json():
    spec = MigrationSpec("m", gates=("verify",), drain=True)
    assert MigrationSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    status = MigrationStatus(batches=(("a",), ("b",)), migrated=("a",), restarting={"b": "uid"},
                             gate_results=(GateOutcome("verify", "pass", "ok", 0, 5.0, ("e",)),))
    status = status.at_step(STEP_PREFLIGHT, 10.0, "started").at_step(STEP_LABEL, 11.0)
    assert MigrationStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status


def test_the_timeline_records_what_the_step_left_behind_did():
    status = MigrationStatus().at_step(STEP_PREFLIGHT, 1.0, "started").at_step(STEP_LABEL, 2.0, "ok")
    assert [(h.step, h.message) for h in status.history] == [
        (STEP_PENDING, "started"), (STEP_PREFLIGHT, "ok")]
    assert status.step == STEP_LABEL and status.message == "ok" and status.updated_at == 2.0


def test_soak_end_and_batch_results():
    status = MigrationStatus(batch=1, soak_started=100.0, soak_extended_seconds=30.0,
                             gate_results=(GateOutcome("v", "pass", "", 0, 1.0),
                                           GateOutcome("v", "fail", "", 1, 2.0)))
    assert status.soak_ends(60.0) == 190.0
    assert [r.result for r in status.batch_results()] == ["fail"]
    assert MigrationStatus().soak_ends(60.0) is None
