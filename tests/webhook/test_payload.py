"""Payload parsing: fixtures from tests/data/alertmanager -> Notification, or PayloadError.

Matrix: firing (year-1 endsAt -> None), resolved (real endsAt), mixed group (status
firing, one resolved alert inside), truncatedAlerts, unknown keys at both levels,
timestamp precisions (none, ms, ns, offsets), and the failures: cut-off JSON,
malformed JSON, wrong version, wrong field types, non-object bodies.
"""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from exporter.webhook.payload import PayloadError, parse, parse_timestamp

DATA = Path(__file__).resolve().parents[1] / "data" / "alertmanager"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_firing_alert_has_no_end():
    n = parse(load("firing.json"))
    assert n.version == "4" and n.status == "firing" and n.truncated_alerts == 0
    assert n.receiver == "kpr-rollback"
    assert n.group_key == '{}:{alertname="KprServiceConnectLatencyWorse"}'
    (alert,) = n.alerts
    assert alert.firing
    assert alert.ends_at is None
    assert alert.starts_at == datetime(2026, 11, 24, 19, 45, 24, 957000, tzinfo=timezone.utc)
    assert alert.labels["kpr_action"] == "rollback"
    assert alert.fingerprint == "a99282f49545a961"
    assert n.common_labels["service"] == "cart"


def test_resolved_alert_keeps_its_end():
    (alert,) = parse(load("resolved.json")).alerts
    assert not alert.firing
    assert alert.ends_at == datetime(2026, 11, 24, 20, 5, 9, 30000, tzinfo=timezone.utc)
    assert alert.generator_url == ""


def test_mixed_group_lists_each_alert_status():
    n = parse(load("mixed.json"))
    assert n.status == "firing"
    assert [a.status for a in n.alerts] == ["resolved", "firing", "firing"]
    assert n.alerts[1].starts_at == datetime(2026, 11, 24, 19, 50, 3, 500000, tzinfo=timezone.utc)


def test_truncated_alerts_are_counted():
    assert parse(load("truncated.json")).truncated_alerts == 3


def test_unknown_keys_are_tolerated():
    n = parse(load("unknown_keys.json"))
    (alert,) = n.alerts
    assert alert.labels["kpr_scope"] == "cluster"
    assert alert.starts_at == datetime(2026, 11, 24, 18, 45, 24, 957123, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-24T19:45:03Z", datetime(2026, 11, 24, 19, 45, 3, tzinfo=timezone.utc)),
    ("2026-11-24T19:45:03.1Z", datetime(2026, 11, 24, 19, 45, 3, 100000, tzinfo=timezone.utc)),
    ("2026-11-24T19:45:03.123456789Z", datetime(2026, 11, 24, 19, 45, 3, 123456, tzinfo=timezone.utc)),
    ("2026-11-24T21:45:03+02:00", datetime(2026, 11, 24, 19, 45, 3, tzinfo=timezone.utc)),
    ("0001-01-01T00:00:00Z", None),
])
def test_timestamps_of_any_precision(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["2026-11-24", "2026-11-24T19:45:03", "yesterday", "2026-13-24T19:45:03Z"])
def test_bad_timestamps(text):
    with pytest.raises(PayloadError):
        parse_timestamp(text)


@pytest.mark.parametrize("fixture, message", [
    ("cut_off.json", "not valid JSON"),
    ("malformed.json", "not valid JSON"),
    ("wrong_version.json", "unsupported payload version"),
    ("bad_types.json", "labels['replica'] must be a string"),
])
def test_bad_fixtures_raise_payload_error(fixture, message):
    with pytest.raises(PayloadError, match=message.replace("[", r"\[")):
        parse(load(fixture))


@pytest.mark.parametrize("body, message", [
    (b"[]", "must be a JSON object"),
    (b'"4"', "must be a JSON object"),
    (b"\xff\xfe", "not valid JSON"),
    (b'{"version":"4","status":"firing","groupKey":"g","alerts":{}}', "'alerts' must be a list"),
    (b'{"version":"4","status":"firing","alerts":[]}', "groupKey is missing"),
    (b'{"version":"4","status":"burning","groupKey":"g","alerts":[]}', "status must be"),
    (b'{"version":"4","status":"firing","groupKey":"g","alerts":[],"truncatedAlerts":-1}',
     "truncatedAlerts"),
    (b'{"version":"4","status":"firing","groupKey":"g","alerts":[1]}', r"alerts\[0\] must be an object"),
    (b'{"version":"4","status":"firing","groupKey":"g","alerts":[{"status":"firing",'
     b'"startsAt":"2026-11-24T19:45:03Z","fingerprint":""}]}', "fingerprint is empty"),
    (b'{"version":"4","status":"firing","groupKey":"g","alerts":[{"status":"firing",'
     b'"startsAt":"0001-01-01T00:00:00Z","fingerprint":"f"}]}', "startsAt is the zero time"),
    (b'{"version":"4","status":"firing","groupKey":"g","alerts":[{"status":"firing",'
     b'"startsAt":"2026-11-24T19:45:03Z","endsAt":5,"fingerprint":"f"}]}', "endsAt must be a string"),
    (b"[" * 100000, "not valid JSON"),
])
def test_structural_errors(body, message):
    with pytest.raises(PayloadError, match=message):
        parse(body)


def test_minimal_payload_gets_defaults():
    n = parse(b'{"version":"4","status":"resolved","groupKey":"g","alerts":[]}')
    assert n.alerts == () and n.receiver == "" and dict(n.common_labels) == {}


def test_dedup_key_is_stable_across_resends():
    a = parse(load("firing.json")).alerts[0]
    b = parse(load("firing.json")).alerts[0]
    assert a.dedup_key() == b.dedup_key()
    assert a.dedup_key() != parse(load("resolved.json")).alerts[0].dedup_key()
