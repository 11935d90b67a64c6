"""The command line: contract flags exist, check-config prints or lists every problem."""

import logging
import os
import re
import socket
import subprocess
import sys

import pytest

from exporter import cli


@pytest.mark.parametrize(
    "command, flags",
    [
        ("run", ["--config.file", "--web.listen-address", "--hubble.address", "--hubble.tls.ca-file",
                 "--hubble.tls.cert-file", "--hubble.tls.key-file", "--hubble.tls.server-name",
                 "--agents.static", "--datapath.static", "--webhook.token-file", "--rollback.mode",
                 "--log.format", "--log.level"]),
        ("simulate", ["--scenario", "--seed", "--speed", "--grpc.listen-address",
                      "--agents.listen-address"]),
        ("demo", ["--scenario", "--seed", "--speed", "--duration", "--web.listen-address"]),
        ("check-config", ["--config.file"]),
    ],
)
def test_contract_flags_are_accepted(command, flags, capsys):
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    known = {s for action in sub._actions for s in action.option_strings}
    missing = [f for f in flags if f not in known]
    assert not missing, f"{command} lacks {missing}"


def test_check_config_prints_the_effective_configuration(capsys, monkeypatch):
    monkeypatch.setenv("KPR_HUBBLE_ADDRESS", "relay.example:4245")
    assert cli.main(["check-config", "--log.level", "debug"]) == 0
    out = capsys.readouterr().out
    assert "address: relay.example:4245" in out
    assert "level: debug" in out


def test_check_config_lists_every_problem_and_exits_non_zero(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nonsense: 1\n")
    code = cli.main(["check-config", "--config.file", str(bad), "--datapath.static", "a=nope",
                     "--web.listen-address", "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown key 'nonsense'" in err
    assert "node 'a' has datapath 'nope'" in err
    assert "'x' is not [host]:port" in err


@pytest.mark.parametrize("command", ["run", "simulate", "demo", "check-config", "backup",
                                     "rollback", "preflight", "baseline", "report"])
def test_every_command_prints_its_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    assert "--config.file" in capsys.readouterr().out


# --- check-config refuses what run refuses ------------------------------------------------------

def _refusals(tmp_path):
    empty = tmp_path / "empty-token"
    empty.write_text("")
    return {
        "enforce without a token": (
            ["--rollback.mode", "enforce", "--kube.enabled", "false"],
            "rollback.mode enforce needs --webhook.token-file"),
        "missing TLS files": (
            ["--webhook.listen-address", "127.0.0.1:0", "--webhook.tls.cert-file",
             str(tmp_path / "none.crt"), "--webhook.tls.key-file", str(tmp_path / "none.key")],
            "webhook.tls.cert_file"),
        "empty token file": (["--webhook.token-file", str(empty)], "is empty"),
        "missing Hubble CA": (["--hubble.tls.ca-file", str(tmp_path / "ca.pem")],
                              "hubble.tls.ca_file"),
    }


@pytest.mark.parametrize("case", ["enforce without a token", "missing TLS files",
                                  "empty token file", "missing Hubble CA"])
def test_check_config_refuses_what_run_refuses(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no kubeconfig of the machine's user
    flags, reason = _refusals(tmp_path)[case]
    answers = {}
    for command in ("check-config", "run"):
        code = cli.main([command, "--kube.enabled", "false", *flags])
        captured = capsys.readouterr()
        answers[command] = (code, reason in captured.err, captured.out)
    assert answers["check-config"] == (2, True, "")
    assert answers["run"] == (2, True, "")


# --- each command shows its own flags -------------------------------------------------------------

SIMULATOR_FLAGS = ("--scenario", "--seed", "--speed", "--grpc.listen-address",
                   "--agents.listen-address")


@pytest.mark.parametrize("command, shown", [("run", False), ("check-config", False),
                                            ("simulate", True), ("demo", True)])
def test_simulator_flags_appear_only_where_the_simulator_runs(command, shown, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert [f in out for f in SIMULATOR_FLAGS] == [shown] * len(SIMULATOR_FLAGS)
    if command in ("run", "check-config"):
        assert "--web.listen-address" in out and "--judge.short-window-seconds DURATION" in out


def test_run_refuses_a_simulator_flag():
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args(["run", "--scenario", "baseline"])
    assert done.value.code == 2


def test_verify_shows_only_the_sections_it_reads(capsys):
    """verify reads the probes' /metrics; with --from-cluster it finds the probe pods as the
    exporter does (exporter/probe_pods.py): Kubernetes access (kube) and the probe discovery
    (probes: selector, namespace, node name, port, path). No other section is offered."""
    with pytest.raises(SystemExit):
        cli.main(["verify", "--help"])
    out = capsys.readouterr().out
    assert set(re.findall(r"^ +--([a-z-]+)\.", out, re.M)) == {"config", "kube", "probes", "log"}
    for flag in ("--probes.selector", "--probes.namespace", "--probes.node-name",
                 "--probes.port", "--probes.path", "--kube.kubeconfig", "--kube.context"):
        assert f"{flag} " in out, flag
    for argv in (["--hubble.address", "x:1"], ["--probe.node-name", "n"],
                 ["--judge.source", "prometheus"], ["--rollback.mode", "enforce"]):
        with pytest.raises(SystemExit) as done:
            cli.build_parser(demo_help=False).parse_args(["verify", *argv])
        assert done.value.code == 2, argv


def test_demo_durations_take_prometheus_style_values():
    args = cli.build_parser().parse_args(["demo", "--duration", "2m", "--interval", "500ms"])
    assert (args.duration, args.interval) == (120.0, 0.5)


def test_an_unknown_kpr_variable_is_warned_about(capsys, monkeypatch):
    monkeypatch.setenv("KPR_HUBBLE_ADRESS", "relay:80")
    assert cli.main(["check-config"]) == 0
    err = capsys.readouterr().err
    assert ("kpr-exporter check-config: warning: environment variable KPR_HUBBLE_ADRESS matches "
            "no setting and is ignored; did you mean KPR_HUBBLE_ADDRESS (--hubble.address)?") in err


# --- a port in use: one line naming the address and the flag, non-zero exit ---------------------

LISTENERS = [
    ("run", "--web.listen-address", []),
    ("run", "--webhook.listen-address", ["--web.listen-address", "127.0.0.1:0"]),
    ("simulate", "--grpc.listen-address", ["--agents.listen-address", "127.0.0.1:0"]),
    ("simulate", "--agents.listen-address", ["--grpc.listen-address", "127.0.0.1:0"]),
    ("demo", "--web.listen-address", []),
    ("demo", "--grpc.listen-address", ["--web.listen-address", "127.0.0.1:0"]),
    ("demo", "--agents.listen-address", ["--web.listen-address", "127.0.0.1:0"]),
]


@pytest.fixture
def taken_address():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield f"127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture
def command_env(tmp_path, monkeypatch):
    """The environment of a fresh shell without ``KPR_*`` variables and with an empty home;
    the root logger as it was before the command set it up."""
    for name in [k for k in os.environ if k.startswith("KPR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield {k: v for k, v in os.environ.items()}
    root.handlers[:] = handlers
    root.setLevel(level)


def _in_use_argv(command: str, flag: str, others: list[str], address: str) -> list[str]:
    argv = [command, flag, address, *others, "--log.level", "error"]
    if command == "run":
        argv += ["--kube.enabled", "false", "--hubble.address", "127.0.0.1:1"]
    return argv


def _one_line(command: str, flag: str, address: str) -> list[str]:
    return [f"kpr-exporter {command}: cannot listen on {address}: address already in use; "
            f"choose another address with {flag}"]


@pytest.mark.parametrize("command, flag, others", LISTENERS,
                         ids=[f"{c}{f}" for c, f, _ in LISTENERS])
def test_a_port_in_use_prints_one_line_and_exits_non_zero(command, flag, others, taken_address,
                                                           command_env, capfd):
    # In this process (the modules are loaded already); capfd also catches what a library
    # writes to the file descriptor itself, as gRPC's own log would.
    code = cli.main(_in_use_argv(command, flag, others, taken_address))
    err = capfd.readouterr().err
    assert code == 1, err
    assert err.splitlines() == _one_line(command, flag, taken_address), err


def test_the_console_command_prints_the_same_one_line(taken_address, command_env, tmp_path):
    """``python -m exporter`` in a fresh interpreter: its exit code and all of its stderr."""
    command, flag, others = LISTENERS[2]  # simulate: gRPC would log a failed bind itself
    done = subprocess.run([sys.executable, "-m", "exporter",
                           *_in_use_argv(command, flag, others, taken_address)],
                          capture_output=True, text=True, timeout=120, env=command_env,
                          cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == _one_line(command, flag, taken_address), done.stderr


def test_rollback_dry_run_is_the_tree_s_rollback_mode():
    parse = cli.build_parser().parse_args
    assert cli.load_settings(parse(["rollback"]), {}).rollback.mode == "dry-run"
    enforce = {"KPR_ROLLBACK_MODE": "enforce"}
    assert cli.load_settings(parse(["rollback"]), enforce).rollback.mode == "enforce"
    # --dry-run is the flag of rollback.mode: it wins over the environment like any flag.
    assert cli.load_settings(parse(["rollback", "--dry-run"]), enforce).rollback.mode == "dry-run"
    assert cli.load_settings(parse(["rollback", "--rollback.mode", "enforce"]),
                             {}).rollback.mode == "enforce"


def test_baseline_capture_reads_the_exporter_of_this_configuration(tmp_path, capsys, monkeypatch):
    with socket.socket() as closed:  # a free port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("KPR_WEB_LISTEN_ADDRESS", f"127.0.0.1:{port}")
    store = ["--baseline.file", str(tmp_path / "baseline.json")]
    assert cli.main(["baseline", "capture", *store]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and f"127.0.0.1:{port}" in err, err
    monkeypatch.setenv("KPR_WEB_LISTEN_ADDRESS", ":1")
    assert cli.main(["baseline", "capture", *store, "--exporter-url",
                     f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and f"127.0.0.1:{port}" in err, err
    assert not (tmp_path / "baseline.json").exists()
