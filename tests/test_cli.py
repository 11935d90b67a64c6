"""The command line: contract flags exist, check-config prints or lists every problem."""

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
