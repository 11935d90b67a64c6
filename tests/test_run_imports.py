"""``kpr-exporter run`` loads no simulator, demo or benchmark code.

import-linter keeps the exporter's own modules from importing them (the contract in
pyproject.toml); this test covers the command layer on top, which imports the demo and the
simulator lazily for their own commands: in a fresh interpreter, ``kpr-exporter run`` goes
through the command line, starts the exporter on loopback and stops, and then no module of
``exporter.demo``, ``exporter.simulator`` or ``bench`` is loaded. The check itself is shown
to see them when the same interpreter then imports the demo session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("exporter.demo", "exporter.simulator", "bench")

# `run` as the console script runs it, with the wait for a signal returning at once; then,
# in the same interpreter, the demo session imported on top.
_SCRIPT = """
import json, sys
from exporter import cli, commands

async def _no_wait(duration=0.0, sleep=None):
    return None

commands._until_signalled = _no_wait
code = cli.main(["run", "--web.listen-address", "127.0.0.1:0",
                 "--webhook.listen-address", "127.0.0.1:0", "--hubble.address", "127.0.0.1:1",
                 "--log.level", "error"])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
from exporter.demo import session
print(json.dumps({"modules": sorted(sys.modules)}))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> list[dict]:
    """What the interpreter had loaded after `run`, and after the demo session on top: one
    fresh interpreter for both tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPR_") and k != "KUBECONFIG"}
    # no ~/.kube/config: the exporter runs without Kubernetes
    env["HOME"] = str(tmp_path_factory.mktemp("home"))
    done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.strip().splitlines()[-2:]]


def _loaded(modules: list[str], prefix: str) -> list[str]:
    return [m for m in modules if m == prefix or m.startswith(prefix + ".")]


def test_run_loads_no_simulator_demo_or_bench_code(loaded):
    result = loaded[0]
    assert result["code"] == 0
    modules = result["modules"]
    # The check can fail: the run path did load the exporter itself.
    assert _loaded(modules, "exporter.app") and _loaded(modules, "exporter.commands")
    for prefix in FORBIDDEN:
        assert _loaded(modules, prefix) == [], f"`kpr-exporter run` loaded {prefix}"


def test_the_check_sees_the_demo_when_it_is_loaded(loaded):
    """The same check finds the demo and the simulator once the demo session is imported."""
    modules = loaded[1]["modules"]
    assert _loaded(modules, "exporter.demo") and _loaded(modules, "exporter.simulator")
