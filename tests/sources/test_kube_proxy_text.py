"""kube-proxy's /metrics read by the streaming filter, against fixtures of the three modes.

Matrix:
- iptables (Kubernetes 1.33, IPv4 ``ip_family``), IPVS (1.31, no ``ip_family``) and
  nftables (1.34, dual-stack): process CPU, sync duration and programming latency
  histograms bucket by bucket, and last sync time, equal to an independent parse
  (prometheus_client's parser); the full/partial sync families are not mixed in;
- fed in odd chunk sizes: the same snapshot as the whole body;
- bad input: a non-cumulative histogram, a missing +Inf bucket, a negative CPU, a body
  without any kube-proxy sample (an agent's) -> ``KubeProxyScrapeError("parse")``;
- the series cap counts what it drops;
- the agent side keeps its process CPU (both spellings) and its Service implementation
  delay histogram; an invalid delay histogram is left out and the counters stay.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.sources.agent_text import ExpositionFilter, parse_agent_metrics
from exporter.sources.kube_proxy_text import (
    KUBE_PROXY_FAMILIES,
    KubeProxyScrapeError,
    KubeProxySnapshot,
    parse_kube_proxy_metrics,
)
from exporter.sources.errors import SourceError
from tests.sources.agent_harness import fixture as agent_fixture

DATA = Path(__file__).resolve().parents[1] / "data" / "kube_proxy_metrics"
MODES = {"iptables": {"IPv4"}, "ipvs": {""}, "nftables": {"IPv4", "IPv6"}}


def text(mode: str) -> str:
    return (DATA / f"{mode}.txt").read_text()


def reference(body: str, family: str) -> dict[str, list[tuple[str, float]]]:
    """ip_family -> [(le, cumulative count)] of a histogram family, by prometheus_client."""
    out: dict[str, list[tuple[str, float]]] = {}
    for fam in text_string_to_metric_families(body):
        if fam.name != family:
            continue
        for s in fam.samples:
            if s.name == family + "_bucket":
                out.setdefault(s.labels.get("ip_family", ""), []).append((s.labels["le"], s.value))
    return out


def sample(body: str, name: str) -> dict[str, float]:
    return {s.labels.get("ip_family", ""): s.value
            for fam in text_string_to_metric_families(body) for s in fam.samples if s.name == name}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_fixture_reads_as_an_independent_parser_reads_it(mode: str) -> None:
    body = text(mode)
    snap = parse_kube_proxy_metrics(body)

    assert snap.cpu_seconds == sample(body, "process_cpu_seconds_total")[""]
    assert snap.last_sync == sample(body, "kubeproxy_sync_proxy_rules_last_timestamp_seconds")
    assert set(snap.last_sync) == MODES[mode]
    for got, family in ((snap.programming, "kubeproxy_network_programming_duration_seconds"),
                        (snap.sync_duration, "kubeproxy_sync_proxy_rules_duration_seconds")):
        want = reference(body, family)
        assert {h.label("ip_family") for h in got} == set(want) == MODES[mode]
        for hist in got:
            assert [(float(le), n) for le, n in hist.buckets] == [
                (float(le), n) for le, n in want[hist.label("ip_family")]]
            assert hist.count == hist.buckets[-1][1] > 0
            sums = sample(body, family + "_sum")
            assert hist.sum == sums[hist.label("ip_family")]
    # 15 exponential bounds + Inf; 0, 0.25, 0.5, 1..59, 60..115, 120..300 + Inf
    assert all(len(h.buckets) == 16 for h in snap.sync_duration)
    assert all(len(h.buckets) == 82 for h in snap.programming)
    assert snap.series_dropped == snap.duplicates == 0


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("size", [1, 7, 113, 4096])
def test_chunked_feeding_reads_the_same(mode: str, size: int) -> None:
    data = text(mode).encode()
    reader = ExpositionFilter(max_series=2000, families=KUBE_PROXY_FAMILIES)
    for start in range(0, len(data), size):
        reader.feed(data[start:start + size])
    snap = reader.finish()
    assert isinstance(snap, KubeProxySnapshot)
    assert snap == parse_kube_proxy_metrics(text(mode))


_NON_CUMULATIVE = """\
# TYPE kubeproxy_network_programming_duration_seconds histogram
kubeproxy_network_programming_duration_seconds_bucket{le="1"} 5
kubeproxy_network_programming_duration_seconds_bucket{le="2"} 3
kubeproxy_network_programming_duration_seconds_bucket{le="+Inf"} 5
kubeproxy_network_programming_duration_seconds_sum 4.2
"""
_NO_INF = """\
kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.001"} 1
kubeproxy_sync_proxy_rules_duration_seconds_sum 0.0008
"""


@pytest.mark.parametrize(("body", "message"), [
    (_NON_CUMULATIVE, "not cumulative"),
    (_NO_INF, "no +Inf bucket"),
    ("kubeproxy_proxy_healthz_total 1\nprocess_cpu_seconds_total -3\n", "not a CPU time"),
    ('kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="x"} 1\n', "not a number"),
    ("process_cpu_seconds_total 12\n", "no kube-proxy metrics"),
    ("kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family=IPv4} 1\n", "malformed labels"),
])
def test_bad_bodies_are_parse_errors(body: str, message: str) -> None:
    with pytest.raises(KubeProxyScrapeError) as caught:
        parse_kube_proxy_metrics(body)
    assert caught.value.kind == "parse"
    assert message in str(caught.value)
    assert isinstance(caught.value, SourceError)


def test_an_agent_body_is_not_kube_proxy() -> None:
    with pytest.raises(KubeProxyScrapeError, match="no kube-proxy metrics"):
        parse_kube_proxy_metrics(agent_fixture("cilium-1.18.txt"))


def test_the_series_cap_counts_what_it_drops() -> None:
    # The nftables body's first read family is the IPv4 programming histogram (83 series):
    # a cap of 100 keeps it whole and cuts the IPv6 one, which is left out, not an error.
    snap = parse_kube_proxy_metrics(text("nftables"), max_series=100)
    assert snap.series_dropped > 0
    assert [h.label("ip_family") for h in snap.programming] == ["IPv4"]
    assert snap.sync_duration == ()
    assert snap.cpu_seconds is None  # past the cap too: absent, not zero


def test_the_agent_keeps_its_process_cpu_and_implementation_delay() -> None:
    snap = parse_agent_metrics(agent_fixture("cilium-1.18.txt"))
    assert snap.cpu_seconds == 3512.46
    by_action = {h.label("action"): h for h in snap.programming}
    assert set(by_action) == {"delete", "update"}
    assert by_action["update"].count == 4987 and by_action["update"].sum == 38.1187
    assert snap.drops and snap.forwards  # the rest of the snapshot is unchanged


def test_the_agent_accepts_the_unprefixed_cpu_spelling_and_drops_a_broken_histogram() -> None:
    body = (
        'cilium_forward_count_total{direction="INGRESS"} 10\n'
        "process_cpu_seconds_total 7.5\n"
        'cilium_service_implementation_delay_bucket{action="update",le="1"} 9\n'
        'cilium_service_implementation_delay_bucket{action="update",le="+Inf"} 4\n'
        'cilium_service_implementation_delay_sum{action="update"} 1\n'
    )
    snap = parse_agent_metrics(body)
    assert snap.cpu_seconds == 7.5
    assert snap.programming == ()
    assert snap.forwards == {"INGRESS": 10.0}


def test_an_agent_without_cpu_or_delay_reports_none() -> None:
    snap = parse_agent_metrics(agent_fixture("untyped.txt"))
    assert snap.cpu_seconds is None or snap.cpu_seconds >= 0
    assert parse_agent_metrics('cilium_forward_count_total{direction="EGRESS"} 1\n').cpu_seconds is None
