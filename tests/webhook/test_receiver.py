"""The receiver over real HTTP on 127.0.0.1: status codes, auth, limits, dedup, metrics.

Matrix: firing -> 200 accepted and one start; resolved / unmatched -> 200 ignored;
mixed -> acts on the firing matching alert only; truncated -> ignored with reason;
unknown keys -> accepted; cut-off and malformed JSON, wrong version, bad types -> 400;
oversized (with and without Content-Length) -> 413; wrong content type -> 415;
missing token -> 401 with WWW-Authenticate; wrong token and wrong scheme -> 403/401;
token file rotation; unreadable token -> 503; unknown phase / busy -> 503; kill
switch -> 200 refused; 50 concurrent identical deliveries -> exactly one start;
enforce mode without a token refuses to start; answers without waiting for the
rollback to finish.
"""

import asyncio
import json

import pytest

from exporter.rollback.roles import CLUSTER, ENFORCE, NODES
from exporter.webhook import decision as dec
from exporter.webhook.receiver import WebhookConfigError, build_ssl_context, token_source
from exporter.webhook.settings import WebhookSettings, WebhookTlsSettings

from .conftest import DATA


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


async def answer(resp):
    return resp.status, json.loads(await resp.text())


async def test_firing_starts_one_rollback_and_answers_at_once(make_harness):
    h = await make_harness()
    status, body = await answer(await h.post(fixture("firing.json")))
    assert (status, body["outcome"]) == (200, "accepted")
    # The rollback is still "running" (release not set): the answer did not wait for it.
    assert h.runner.busy
    (scope, trigger), = h.runner.started
    assert scope.kind == NODES and scope.nodes == ("node-b",)
    assert trigger.fingerprints == ("a99282f49545a961",)
    assert h.count("accepted") == 1


async def test_resend_is_a_duplicate(make_harness):
    h = await make_harness()
    await h.post(fixture("firing.json"))
    h.runner.release.set()
    status, body = await answer(await h.post(fixture("firing.json")))
    assert (status, body["outcome"]) == (200, "duplicate")
    assert len(h.runner.started) == 1


@pytest.mark.parametrize("name, outcome, reason", [
    ("resolved.json", "ignored", "0 firing"),
    ("truncated.json", "ignored", "3 alert(s) truncated"),
])
async def test_ignored_payloads(make_harness, name, outcome, reason):
    h = await make_harness()
    status, body = await answer(await h.post(fixture(name)))
    assert (status, body["outcome"]) == (200, outcome)
    assert reason in body["reason"]
    assert h.runner.started == []


async def test_mixed_group_acts_on_the_firing_match_only(make_harness):
    h = await make_harness()
    status, body = await answer(await h.post(fixture("mixed.json")))
    assert (status, body["outcome"]) == (200, "accepted")
    (scope, trigger), = h.runner.started
    assert scope.nodes == ("node-b",) and trigger.fingerprints == ("7f1e2d3c4b5a6978",)


async def test_unknown_keys_are_accepted(make_harness):
    h = await make_harness()
    status, body = await answer(await h.post(fixture("unknown_keys.json")))
    assert (status, body["outcome"]) == (200, "accepted")
    assert h.runner.started[0][0].kind == CLUSTER


@pytest.mark.parametrize("name, reason", [
    ("cut_off.json", "not valid JSON"),
    ("malformed.json", "not valid JSON"),
    ("wrong_version.json", "unsupported payload version"),
    ("bad_types.json", "must be a string"),
])
async def test_malformed_is_400(make_harness, name, reason):
    h = await make_harness()
    status, body = await answer(await h.post(fixture(name)))
    assert (status, body["outcome"]) == (400, "malformed")
    assert reason in body["reason"]
    assert h.count("malformed") == 1 and h.runner.started == []


async def test_oversized_is_413(make_harness, token_file):
    h = await make_harness(settings=WebhookSettings(token_file=str(token_file), max_body_bytes=2048))
    big = json.dumps({"version": "4", "pad": "x" * 5000})
    status, body = await answer(await h.post(big))
    assert (status, body["outcome"]) == (413, "too_large")


async def test_oversized_chunked_without_length_is_413(make_harness, token_file):
    h = await make_harness(settings=WebhookSettings(token_file=str(token_file), max_body_bytes=2048))

    async def chunks():
        for _ in range(10):
            yield b"x" * 1000

    resp = await h.post(chunks())
    assert resp.status == 413
    assert h.count("too_large") == 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_wrong_content_type_is_415(make_harness, content_type):
    h = await make_harness()
    status, body = await answer(await h.post(fixture("firing.json"), content_type=content_type))
    assert (status, body["outcome"]) == (415, "unsupported_media_type")


async def test_json_with_charset_is_fine(make_harness):
    h = await make_harness()
    resp = await h.post(fixture("firing.json"), content_type="application/json; charset=utf-8")
    assert resp.status == 200


async def test_missing_token_is_401(make_harness):
    h = await make_harness()
    resp = await h.post(fixture("firing.json"), token=None)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert h.count("unauthorized") == 1 and h.runner.started == []


async def test_wrong_token_is_403(make_harness):
    h = await make_harness()
    resp = await h.post(fixture("firing.json"), token="s3cr3t-t0kem")
    assert resp.status == 403
    assert h.count("forbidden") == 1 and h.runner.started == []


async def test_basic_auth_is_401(make_harness):
    h = await make_harness()
    resp = await h.post(fixture("firing.json"), token=None, headers={"Authorization": "Basic eDp5"})
    assert resp.status == 401


async def test_auth_is_checked_before_anything_else(make_harness):
    h = await make_harness()
    resp = await h.post(b"not json", token="wrong", content_type="text/plain")
    assert resp.status == 403


async def test_token_rotation_is_picked_up(make_harness, token_file):
    h = await make_harness()
    token_file.write_text("rotated-token-longer\n")
    assert (await h.post(fixture("resolved.json"))).status == 403
    assert (await h.post(fixture("resolved.json"), token="rotated-token-longer")).status == 200


async def test_unreadable_token_is_503(make_harness, token_file):
    h = await make_harness()
    token_file.unlink()
    resp = await h.post(fixture("firing.json"))
    assert resp.status == 503 and h.count("unavailable") == 1


async def test_unknown_phase_defers_with_503(make_harness):
    h = await make_harness()
    h.view.current = "unknown"
    h.view.by_datapath = {}
    status, body = await answer(await h.post(fixture("firing.json")))
    assert (status, body["outcome"]) == (503, "deferred")
    # Not remembered: the retry after sync acts.
    h.view.current = "canary"
    h.view.by_datapath = {"ebpf": {"node-b"}}
    status, body = await answer(await h.post(fixture("firing.json")))
    assert (status, body["outcome"]) == (200, "accepted")


async def test_busy_defers_a_different_alert(make_harness):
    h = await make_harness(policy=dec.Policy(cooldown_seconds=0, max_per_window=10))
    await h.post(fixture("firing.json"))
    status, body = await answer(await h.post(fixture("mixed.json")))
    assert (status, body["outcome"]) == (503, "deferred")
    h.runner.release.set()
    await asyncio.wait_for(_until(lambda: not h.runner.busy), 5)
    status, body = await answer(await h.post(fixture("mixed.json")))
    assert (status, body["outcome"]) == (200, "accepted")


async def test_kill_switch_refuses_with_200(make_harness):
    h = await make_harness(kill=lambda: True)
    status, body = await answer(await h.post(fixture("firing.json")))
    assert (status, body["outcome"]) == (200, "refused")
    assert "kill switch" in body["reason"]


async def test_concurrent_identical_deliveries_start_exactly_one(make_harness):
    h = await make_harness()
    responses = await asyncio.gather(*(h.post(fixture("firing.json")) for _ in range(50)))
    outcomes = sorted([json.loads(await r.text())["outcome"] for r in responses])
    assert outcomes.count("accepted") == 1 and outcomes.count("duplicate") == 49
    assert len(h.runner.started) == 1


async def test_no_token_in_dry_run_accepts_anonymous(make_harness):
    h = await make_harness(settings=WebhookSettings(), use_token=False)
    assert (await h.post(fixture("firing.json"), token=None)).status == 200


def test_enforce_without_token_refuses_to_start(tmp_path):
    with pytest.raises(WebhookConfigError, match="enforce needs --webhook.token-file"):
        token_source(WebhookSettings(), ENFORCE)
    with pytest.raises(WebhookConfigError, match="cannot read"):
        token_source(WebhookSettings(token_file=str(tmp_path / "absent")), ENFORCE)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(WebhookConfigError, match="is empty"):
        token_source(WebhookSettings(token_file=str(empty)), ENFORCE)
    assert token_source(WebhookSettings(), "dry-run") is None


def test_settings_problems():
    assert WebhookSettings().problems() == []
    assert WebhookSettings(match_labels={}).problems()
    assert WebhookTlsSettings(cert_file="c").problems()
    assert WebhookTlsSettings(client_ca_file="ca").problems()
    assert build_ssl_context(WebhookTlsSettings()) is None


async def _until(predicate):
    while not predicate():
        await asyncio.sleep(0)


@pytest.mark.parametrize("status, next_outcome", [("planned", "cooldown"), ("refused", "accepted")])
async def test_cooldown_starts_when_a_rollback_finished_not_when_it_was_refused(
        make_harness, status, next_outcome):
    from tests.webhook.conftest import RecordingRunner

    runner = RecordingRunner(status)
    h = await make_harness(runner=runner)
    first = json.loads(fixture("firing.json"))
    _, body = await answer(await h.post(json.dumps(first).encode()))
    assert body["outcome"] == "accepted"
    runner.release.set()
    await asyncio.gather(*runner._tasks)
    second = {**first, "alerts": [{**a, "fingerprint": "another"} for a in first["alerts"]]}
    _, body = await answer(await h.post(json.dumps(second).encode()))
    assert body["outcome"] == next_outcome, body
