"""The echo server: its identity and the client address it saw, over HTTP and plain TCP,
and ``kpr-exporter echo`` as a process."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from exporter import cli
from exporter.verify.echo import EchoError, EchoServer, Identity

HOST = "127.0.0.1"
CLIENT = "127.0.0.23"  # any 127/8 address is local on Linux: the echo must report this one


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer(Identity("echo-abc", "node-1"), HOST, read_timeout=1.0)
    await server.start()
    yield server
    await server.stop()


async def _connect(server: EchoServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, server.port, local_addr=(CLIENT, 0))


async def test_http_get_answers_json_with_the_client_address(echo: EchoServer) -> None:
    reader, writer = await _connect(echo)
    port = writer.get_extra_info("sockname")[1]
    writer.write(b"GET /anything HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = await reader.read()  # the echo closes after one answer
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: application/json" in head
    assert json.loads(body) == {"pod": "echo-abc", "node": "node-1", "client": f"{CLIENT}:{port}",
                                "client_ip": CLIENT, "client_port": port}


async def test_plain_tcp_answers_every_line_on_one_connection(echo: EchoServer) -> None:
    reader, writer = await _connect(echo)
    answers = []
    for text in (b"hello\n", b"ping\n", b"ping\n"):
        writer.write(text)
        answers.append(json.loads(await reader.readline()))
    writer.write_eof()
    assert await reader.read() == b""  # closes when the client does
    writer.close()
    assert len(answers) == 3 and all(a["client_ip"] == CLIENT for a in answers)
    assert {a["pod"] for a in answers} == {"echo-abc"}


async def test_head_has_no_body_and_oversized_lines_are_dropped(echo: EchoServer) -> None:
    reader, writer = await _connect(echo)
    writer.write(b"HEAD / HTTP/1.1\r\n\r\n")
    raw = await reader.read()
    writer.close()
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"\r\n\r\n")

    reader, writer = await _connect(echo)
    writer.write(b"x" * 20000 + b"\n")
    assert await reader.read() == b""  # nothing answered, connection closed
    writer.close()


async def test_a_taken_port_is_a_clear_error(echo: EchoServer) -> None:
    with pytest.raises(EchoError, match=f"cannot listen on {HOST}:{echo.port}"):
        await EchoServer(Identity("b", "n"), HOST, echo.port).start()


def test_the_command_takes_the_echo_settings() -> None:
    args = cli.build_parser().parse_args(
        ["echo", "--echo.listen-address", "127.0.0.1:0", "--echo.pod-name", "p",
         "--echo.node-name", "n"])
    settings = cli.load_settings(args, env={})
    assert (settings.echo.listen_address, settings.echo.pod_name, settings.echo.node_name) == (
        "127.0.0.1:0", "p", "n")
    from_env = cli.load_settings(cli.build_parser().parse_args(["echo"]),
                                 env={"KPR_ECHO_NODE_NAME": "node-7"})
    assert from_env.echo.node_name == "node-7"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--echo.pod-name", "p"])  # not a run flag


def test_the_command_serves_until_terminated() -> None:
    env = {**os.environ, "KPR_ECHO_NODE_NAME": "node-9", "KPR_ECHO_POD_NAME": "echo-x"}
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "echo",
                             "--echo.listen-address", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)  # printed once it listens
        line = proc.stdout.readline() if ready else ""
        if not line:
            proc.kill()
            pytest.fail(f"no listening line; stderr: {proc.stderr.read()}")
        assert "echo echo-x on node node-9 listening on 127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"hi\n")
            reply = json.loads(sock.makefile().readline())
        assert reply["pod"] == "echo-x" and reply["node"] == "node-9"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_command_exits_1_on_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "exporter", "echo",
                               "--echo.listen-address", f"127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


async def test_a_sink_connection_reads_everything_and_answers_the_byte_count(
        echo: EchoServer) -> None:
    reader, writer = await _connect(echo)
    writer.write(b"SINK\n")
    for _ in range(5):
        writer.write(b"x" * 100_000 + b"\n")  # far beyond a line's limit: no line parsing
        await writer.drain()
    writer.write_eof()
    answer = json.loads(await reader.readline())
    assert await reader.read() == b""  # then the echo closes
    writer.close()
    assert answer["received"] == 500_005 == echo.sunk_bytes
    assert answer["pod"] == "echo-abc" and answer["client_ip"] == CLIENT
