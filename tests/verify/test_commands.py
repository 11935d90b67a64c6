"""``kpr-exporter probe`` and ``kpr-exporter verify`` as commands: their flags, their
refusals, and the probe as a separate process checking the emulated datapath's NodePorts
from its node's address, read back by ``verify --wait``."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter import cli
from exporter.verify import results as r
from exporter.verify.verify_cmd import cmd_verify
from tests.verify.test_probe_loop import write_targets


def flags_of(command: str) -> set[str]:
    sub = cli.build_parser(demo_help=False)._subparsers._group_actions[0].choices[command]
    return {s for action in sub._actions for s in action.option_strings}


def test_the_commands_take_their_flags() -> None:
    assert {"--probe.node-name", "--probe.targets-file", "--probe.listen-address",
            "--probe.interval-seconds", "--probe.sample-size", "--probe.checks",
            "--probe.host-address", "--probe.pod-address"} <= flags_of("probe")
    assert {"--exporter-url", "--format", "--wait", "--max-age"} <= flags_of("verify")
    assert not {f for f in flags_of("run") if f.startswith("--probe.")}


def test_the_probe_refuses_to_start_without_its_node_and_targets(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["probe"]) == 2
    assert "--probe.node-name is required" in capsys.readouterr().err
    assert cli.main(["probe", "--probe.checks", "nodeport-anywhere"]) == 2
    assert "probe.checks: unknown check(s) nodeport-anywhere" in capsys.readouterr().err


def test_verify_exits_2_when_the_exporter_cannot_be_read(
        capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cli.main(["verify", "--exporter-url", f"http://127.0.0.1:{port}"]) == 2
    assert f"cannot read http://127.0.0.1:{port}/metrics" in capsys.readouterr().err


NODE_CHECKS = (r.NODEPORT_LOCAL, r.NODEPORT_REMOTE, r.ETP_LOCAL_HEALTHCHECK, r.HOSTPORT)


async def _poll_often(seconds: float) -> None:
    """``verify --wait`` reads the probe every 0.1 s instead of every 2 s (its rounds here
    are 0.1 s apart)."""
    await asyncio.sleep(min(seconds, 0.1))


async def test_the_probe_process_checks_real_node_ports(
        emulate: Callable[..., Any], tmp_path: Path) -> None:
    """NodePorts, the health-check port and the hostPort are real listeners on the
    emulated nodes' addresses, so a probe process with the kernel's view reaches them."""
    cluster = await emulate({"nodes": [{"name": "node-a"}, {"name": "node-b", "datapath": "ebpf"}]})
    path = write_targets(cluster, tmp_path / "targets.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPR_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "probe", "--probe.node-name", "node-a",
        "--probe.targets-file", path, "--probe.listen-address", "127.0.0.1:0",
        "--probe.interval-seconds", "0.1", "--probe.checks", ",".join(NODE_CHECKS),
        "--probe.host-address", cluster.addresses(1).node_ip,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert "probe on node node-a: 4 checks every 0.1s" in line, line
        url = line.split("metrics at ")[1].split()[0]
        out = io.StringIO()
        code = await cmd_verify([url], fmt="json", wait=30.0, max_age=60.0, out=out,
                                err=io.StringIO(), sleep=_poll_often)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0  # SIGTERM ends it cleanly
    doc = json.loads(out.getvalue())
    assert doc["problems"] == []
    cells = {(c["check"], c["node"]): c["status"] for c in doc["cells"]}
    passed = {k for k, v in cells.items() if v == r.PASS}
    # node-a's own NodePort and node-b's from node-a (a remote node is never "local")
    assert passed == {(r.NODEPORT_LOCAL, "node-a"), (r.NODEPORT_REMOTE, "node-b"),
                      (r.ETP_LOCAL_HEALTHCHECK, "node-a"), (r.ETP_LOCAL_HEALTHCHECK, "node-b"),
                      (r.HOSTPORT, "node-a"), (r.HOSTPORT, "node-b")}, cells
    # every other cell has no result (no fail, no error): verify cannot vouch for them
    assert code == 2 and {cells[k] for k in set(cells) - passed} == {"none"}


def test_the_probe_exits_1_on_a_taken_port(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    targets = tmp_path / "targets.yaml"
    targets.write_text("nodes: []\n")  # never read: the listener fails first
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["probe", "--probe.node-name", "node-a", "--probe.targets-file",
                         str(targets), "--probe.listen-address", f"127.0.0.1:{port}"])
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
