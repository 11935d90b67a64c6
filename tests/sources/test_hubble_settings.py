"""HubbleSettings validation, TLS switch, target, and the filter syntax.

Matrix: defaults valid; address forms (host:port, tls://, unix://, bad); TLS on
by CA / client cert / tls:// and off otherwise; cert without key; backoff
bounds; filter terms of every kind and every error.
"""

from __future__ import annotations

import pytest

from exporter.config_constraints import problems as check
from exporter.sources.settings import (
    FilterSyntaxError,
    HubbleSettings,
    HubbleTLSSettings,
    parse_filter,
)


def test_defaults_are_valid() -> None:
    settings = HubbleSettings()
    assert check(settings, "hubble") == []
    assert settings.address == "hubble-relay.kube-system.svc:80"
    assert not settings.tls_enabled
    assert settings.backoff() == (0.5, 30.0, 0.2)


@pytest.mark.parametrize(
    ("address", "target", "tls", "ok"),
    [
        ("relay:4245", "relay:4245", False, True),
        ("tls://relay:443", "relay:443", True, True),
        ("unix:///var/run/cilium/hubble.sock", "unix:///var/run/cilium/hubble.sock", False, True),
        ("[::1]:4245", "[::1]:4245", False, True),
        ("relay", "relay", False, False),
        ("relay:http", "relay:http", False, False),
        ("unix://", "unix://", False, False),
        ("", "", False, False),
    ],
)
def test_address_forms(address: str, target: str, tls: bool, ok: bool) -> None:
    settings = HubbleSettings(address=address)
    assert settings.target == target and settings.tls_enabled is tls
    assert (settings.problems() == []) is ok


def test_tls_turns_on_with_a_ca_or_a_client_certificate() -> None:
    assert HubbleSettings(tls=HubbleTLSSettings(ca_file="ca.pem")).tls_enabled
    assert HubbleSettings(tls=HubbleTLSSettings(cert_file="c", key_file="k")).tls_enabled
    assert HubbleTLSSettings(cert_file="c").problems()
    assert HubbleTLSSettings(server_name="a b").problems()


def test_every_problem_is_reported() -> None:
    settings = HubbleSettings(
        backoff_initial_seconds=5, backoff_max_seconds=1, backoff_jitter=2,
        status_interval_seconds=0, resume_overlap_seconds=-1, dedup_memory=-1,
        allowlist=("verdict=NOPE",), denylist=("color=red",),
    )
    problems = "\n".join(check(settings, "hubble"))
    for needle in ("backoff_max_seconds", "backoff_jitter", "status_interval_seconds",
                   "resume_overlap_seconds", "dedup_memory", "allowlist", "denylist"):
        assert needle in problems


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("verdict=DROPPED", [("verdict", 2)]),
        ("verdict=dropped verdict=7", [("verdict", 2), ("verdict", 7)]),
        ("destination_pod=shop/ protocol=tcp", [("destination_pod", "shop/"), ("protocol", "tcp")]),
        ("drop_reason_desc=SERVICE_BACKEND_NOT_FOUND", [("drop_reason_desc", 158)]),
        ("traffic_direction=egress ip_version=IPv6", [("traffic_direction", 2), ("ip_version", 2)]),
        ("source_identity=30001 reply=false", [("source_identity", 30001), ("reply", False)]),
        ("event_type=7 event_type=4:3", [("event_type", (7, None)), ("event_type", (4, 3))]),
        ("http_status_code=5+", [("http_status_code", "5+")]),
    ],
)
def test_filter_terms(text: str, terms: list) -> None:
    assert parse_filter(text) == terms


@pytest.mark.parametrize(
    "text",
    ["", "verdict", "=x", "verdict=", "verdict=MAYBE", "reply=yes", "source_identity=a",
     "event_type=x:1", "event_type=1:", "tcp_flags=SYN", "color=red"],
)
def test_filter_errors(text: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(text)


def test_first_message_timeout_is_a_setting_with_key_flag_and_env() -> None:
    from exporter import config

    assert HubbleSettings().first_message_timeout_seconds == 30.0
    assert check(HubbleSettings(first_message_timeout_seconds=0), "hubble") == []  # 0: off
    assert any("first_message_timeout_seconds" in p
               for p in check(HubbleSettings(first_message_timeout_seconds=-1), "hubble"))
    path = ("hubble", "first_message_timeout_seconds")
    [option] = [o for o in config.options() if o.path == path]
    assert option.flag == "--hubble.first-message-timeout-seconds"
    assert option.env == "KPR_HUBBLE_FIRST_MESSAGE_TIMEOUT_SECONDS"
    from_env = config.load(env={option.env: "7.5"}, flags={})
    assert from_env.hubble.first_message_timeout_seconds == 7.5
    from_flag = config.load(env={}, flags={option.flag: "0"})
    assert from_flag.hubble.first_message_timeout_seconds == 0
