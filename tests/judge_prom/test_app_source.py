"""The exporter with ``judge.source: prometheus`` judges what Prometheus holds, not its own
snapshots: ``kpr_verdict``, ``/api/v1/verdicts`` and the source's error counter show it;
an unreachable Prometheus turns every known verdict inconclusive. The settings refuse the
source without a URL, and a malformed URL."""

from __future__ import annotations

import math

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import app as app_module
from exporter import config
from tests.judge.samples import BOUNDS
from tests.judge_prom.fakeprom import FakePrometheus
from tests.judge_prom.test_source import LONG, NOW, SHORT, fleet

BASE_FLAGS = {"--web.listen-address": "127.0.0.1:0", "--kube.enabled": "false",
              "--datapath.static": "node-a=kube-proxy,node-b=ebpf"}


def _verdict_values(text: str) -> dict[tuple[str, str, str], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "kpr_verdict":
            for s in fam.samples:
                out[(s.labels["service"], s.labels["sli"], s.labels["comparison"])] = s.value
    return out


async def test_the_exporter_judges_prometheus_evidence():
    async with FakePrometheus(config.load(env={}).judge, NOW, BOUNDS) as prom:
        prom.set_window(SHORT, fleet(1))
        prom.set_window(LONG, fleet(6))
        settings = config.load(env={}, flags={**BASE_FLAGS, "--judge.source": "prometheus",
                                              "--judge.prometheus.url": prom.url})
        exporter = app_module.Exporter(settings, clock=lambda: NOW)
        await exporter.server.start()
        try:
            await exporter.judge_once()
            async with aiohttp.ClientSession() as http:
                async with http.get(exporter.url + "/api/v1/verdicts") as response:
                    body = await response.json()
                async with http.get(exporter.url + "/metrics") as response:
                    metrics = await response.text()
            values = _verdict_values(metrics)
            assert values[("cart", "connect_duration", "canary-vs-control")] == 1.0
            assert {v["service"] for v in body["verdicts"]} == {"cart", "ledger"}
            assert "source" not in body["settings"] and "prometheus" not in body["settings"]
            assert 'kpr_judge_source_errors_total{kind="unreachable"} 0.0' in metrics

            await prom.stop()  # Prometheus goes away
            await exporter.judge_once()
            values = _verdict_values(generate_latest(exporter.registry).decode())
            assert values and all(math.isnan(v) for v in values.values())
            assert exporter.judge.problem.startswith("Prometheus unreachable")
            assert 'kpr_judge_source_errors_total{kind="unreachable"} 1.0' in (
                generate_latest(exporter.registry).decode())
        finally:
            await exporter.server.stop()


@pytest.mark.parametrize(("flags", "problem"), [
    ({"--judge.source": "prometheus"}, "judge.source prometheus needs judge.prometheus.url"),
    ({"--judge.source": "prometheus", "--judge.prometheus.url": "prometheus:9090"},
     "is not an http:// or https:// URL with a host"),
    ({"--judge.prometheus.timeout-seconds": "0"}, "timeout_seconds must be positive"),
    ({"--judge.prometheus.basic-auth.username": "judge"}, "must be given together"),
])
def test_settings_refuse_an_unusable_prometheus_source(flags, problem):
    with pytest.raises(config.ConfigError, match=problem):
        config.load(env={}, flags=flags)


def test_the_default_source_is_in_process():
    settings = config.load(env={})
    assert settings.judge.source == "in-process"
    assert app_module.Exporter(settings).judge_evidence is None
