"""Reading an agent's exposition text: ``parse_agent_metrics`` and the incremental
``ExpositionFilter`` under it (pure, no I/O).

Matrix:
- the families read, their spellings, extra labels summed, what is not an exposition;
- any chunking of a body reads like the whole body (1-byte chunks, lines cut anywhere,
  CRLF, no final newline);
- lines of other families are skipped whatever their length, without being kept; a
  line of a read family over ``MAX_LINE_BYTES`` is a parse error;
- label escapes, label order, timestamps, special values; malformed samples;
- repeats keep the first value and are counted; series past the cap are counted.
"""

from __future__ import annotations

import math

import pytest

from exporter.sources.agent_text import MAX_LINE_BYTES, ExpositionFilter
from exporter.sources.agents import AgentScrapeError, parse_agent_metrics
from tests.sources.agent_harness import fixture


def read(body: bytes, chunk: int, max_series: int = 2000):
    reader = ExpositionFilter(max_series=max_series)
    for start in range(0, len(body), chunk):
        reader.feed(body[start:start + chunk])
    return reader.finish()


def test_parse_prefers_the_released_spelling_and_sums_extra_labels() -> None:
    snapshot = parse_agent_metrics(
        'cilium_datapath_drop_count_total{direction="EGRESS",reason="Policy denied"} 5\n'
        'cilium_drop_count_total{direction="EGRESS",reason="Policy denied",cpu="0"} 1\n'
        'cilium_drop_count_total{direction="EGRESS",reason="Policy denied",cpu="1"} 2\n'
    )
    assert snapshot.drops == {("Policy denied", "EGRESS"): 3}
    assert snapshot.forwards == {} and snapshot.kpr_enabled is None


@pytest.mark.parametrize(
    "body",
    [
        "",
        "# only a comment\n",
        "garbage",
        '{"json": true}',
        "hubble_flows_processed_total 3\n",
        'cilium_drop_count_total{direction="EGRESS",reason="Policy denied"} many\n',
        'cilium_forward_count_total{direction="EGRESS" 1\n',
    ],
)
def test_parse_rejects_what_is_not_an_agent_exposition(body: str) -> None:
    with pytest.raises(AgentScrapeError) as caught:
        parse_agent_metrics(body)
    assert caught.value.kind == "parse"


def test_an_agent_without_the_families_is_not_an_error() -> None:
    snapshot = parse_agent_metrics("# TYPE cilium_endpoint gauge\ncilium_endpoint 37\n")
    assert (snapshot.drops, snapshot.forwards, snapshot.kpr_enabled) == ({}, {}, None)




@pytest.mark.parametrize("name", ["cilium-1.18.txt", "cilium-1.16.txt", "untyped.txt"])
@pytest.mark.parametrize("chunk", [1, 7, 100, 4096])
def test_any_chunking_reads_like_the_whole_body(name: str, chunk: int) -> None:
    body = fixture(name).encode()
    whole = parse_agent_metrics(fixture(name))
    assert whole.drops
    assert read(body, chunk) == whole
    crlf = body.replace(b"\n", b"\r\n").rstrip(b"\r\n")  # CRLF and no final newline
    assert read(crlf, chunk) == whole


def test_long_lines_of_other_families_are_skipped_and_not_kept() -> None:
    huge = b"cilium_endpoint_state{" + b"x" * (4 * MAX_LINE_BYTES) + b"} 1\n"
    body = huge + b'cilium_forward_count_total{direction="EGRESS"} 3\n' + b"#" * 50_000
    reader = ExpositionFilter(max_series=10)
    for start in range(0, len(body), 1000):
        reader.feed(body[start:start + 1000])
        assert reader.held_bytes() <= MAX_LINE_BYTES
    assert reader.finish().forwards == {"EGRESS": 3.0}


def test_a_read_family_line_over_the_line_limit_is_a_parse_error() -> None:
    line = b'cilium_drop_count_total{direction="EGRESS",reason="' + b"r" * MAX_LINE_BYTES + b'"} 1\n'
    with pytest.raises(AgentScrapeError) as caught:
        read(line, 4096)
    assert caught.value.kind == "parse" and "longer than" in str(caught.value)


def test_labels_escapes_order_timestamps_and_special_values() -> None:
    snapshot = parse_agent_metrics(
        'cilium_drop_count_total{ reason = "say \\"no\\"\\\\ \\n" , direction="EGRESS", } 2 1700000000000\n'
        'cilium_drop_count_total{direction="INGRESS",reason="a,b}c"} +Inf\n'
        'cilium_forward_count_total{direction="EGRESS"}\t1.5e3\n'
        'cilium_forward_count_total{direction="INGRESS"} NaN\n'
        'cilium_version{version="1.18.4",revision="abc"} 1\n'
    )
    assert snapshot.drops == {('say "no"\\ \n', "EGRESS"): 2.0, ("a,b}c", "INGRESS"): math.inf}
    assert snapshot.forwards["EGRESS"] == 1500.0 and math.isnan(snapshot.forwards["INGRESS"])
    assert snapshot.version == "1.18.4"


@pytest.mark.parametrize(
    "line",
    [
        'cilium_drop_count_total{direction="EGRESS",direction="INGRESS"} 1',
        'cilium_drop_count_total{direction=EGRESS} 1',
        'cilium_drop_count_total{direction="EGRESS"} 1_000',
        'cilium_drop_count_total{direction="EGRESS"} 1 2 3',
        'cilium_drop_count_total{direction="EGRESS"} 1 now',
        'cilium_drop_count_total{direction="EGRESS"}',
        'cilium_drop_count_total{1direction="EGRESS"} 1',
        'cilium_drop_count_total{direction="EGRESS} 1',
    ],
)
def test_malformed_samples_of_read_families_are_parse_errors(line: str) -> None:
    with pytest.raises(AgentScrapeError) as caught:
        parse_agent_metrics(line + "\n")
    assert caught.value.kind == "parse"


def test_repeats_keep_the_first_value_and_the_cap_counts_what_it_drops() -> None:
    body = (
        b'cilium_forward_count_total{direction="EGRESS"} 1\n'
        b'cilium_forward_count_total{direction="EGRESS"} 2\n'
        b'cilium_forward_count_total{direction="INGRESS"} 5\n'
        b'cilium_drop_count_total{direction="EGRESS",reason="Policy denied"} 4\n'
        b'cilium_forward_count_total{direction="EGRESS"} 3\n'
        b'cilium_drop_count_total{direction="EGRESS",reason="Policy denied"} 6\n'
    )
    snapshot = read(body, 13, max_series=2)
    assert snapshot.forwards == {"EGRESS": 1.0, "INGRESS": 5.0}
    assert snapshot.drops == {}
    assert (snapshot.duplicates, snapshot.series_dropped) == (2, 2)


def test_an_unknown_charset_is_a_parse_error() -> None:
    with pytest.raises(AgentScrapeError) as caught:
        ExpositionFilter(max_series=10, charset="no-such-charset")
    assert caught.value.kind == "parse"


def test_hubbles_own_lost_events_are_read_by_source_when_the_body_carries_them() -> None:
    snapshot = parse_agent_metrics(
        'cilium_version{version="1.17.3"} 1\n'
        'hubble_lost_events_total{source="perf_event_ring_buffer"} 40\n'
        'hubble_lost_events_total{source="hubble_ring_buffer"} 2\n'
    )
    assert snapshot.hubble_lost == {"perf_event_ring_buffer": 40, "hubble_ring_buffer": 2}
    assert parse_agent_metrics('cilium_version{version="1.17.3"} 1\n').hubble_lost == {}
