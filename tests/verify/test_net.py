"""The probe's dialer: answers read whole, outcomes classified, nothing raised but the
probe's own errors."""

from __future__ import annotations

import asyncio
import json
import socket

from exporter.verify import net


async def test_an_http_answer_arriving_in_pieces_is_read_whole() -> None:
    reader = asyncio.StreamReader()
    body = json.dumps({"pod": "p"}).encode()
    reader.feed_data(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
    loop = asyncio.get_running_loop()
    loop.call_soon(lambda: (reader.feed_data(body), reader.feed_eof()))  # after the first read
    raw = await net._read_to_end(reader)
    seen = net._parse_http(raw)
    assert seen.answered and seen.status == 200 and seen.reply == {"pod": "p"}


def test_answers_that_are_not_echo_answers() -> None:
    assert net._parse_line(b"").kind == net.CLOSED
    assert net._parse_line(b"SSH-2.0-OpenSSH\n").kind == net.GARBLED
    assert net._parse_line(b"[1, 2]\n").kind == net.GARBLED
    assert net._parse_http(b"garbage").kind == net.GARBLED
    not_json = net._parse_http(b"HTTP/1.1 503 Service Unavailable\r\n\r\nbusy")
    assert not_json.answered and not_json.status == 503 and not_json.reply is None


async def test_a_refusal_is_an_outcome_not_an_exception() -> None:
    with socket.socket() as held:  # bound, not listening: the kernel refuses
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        seen = await net.Dialer("127.0.0.2").line(("127.0.0.1", port), 1.0)
    assert seen.kind == net.REFUSED and seen.connect_seconds is None
    assert seen.describe() == "refused"
