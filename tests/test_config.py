"""The settings tree: precedence file < env < flags, derived names, all problems at once."""

import pytest

from exporter import config


def test_defaults_match_the_cli_contract():
    s = config.load(env={})
    assert s.web.listen_address == ":9977"
    assert s.hubble.address == "hubble-relay.kube-system.svc:80"
    assert s.log.format == "logfmt"
    assert s.datapath.static == {}


def test_every_flag_env_and_key_is_unique_and_derived():
    opts = config.options()
    flags = [o.flag for o in opts]
    assert len(flags) == len(set(flags)), "two settings claim the same flag"
    by_flag = {o.flag: o for o in opts}
    assert by_flag["--hubble.tls.ca-file"].env == "KPR_HUBBLE_TLS_CA_FILE"
    assert by_flag["--hubble.tls.ca-file"].key == "hubble.tls.ca_file"
    assert by_flag["--web.listen-address"].env == "KPR_WEB_LISTEN_ADDRESS"


def test_file_then_env_then_flags(tmp_path):
    cfg = tmp_path / "kpr.yaml"
    cfg.write_text(
        "web:\n  listen-address: 127.0.0.1:1000\n"
        "log:\n  level: debug\n"
        "datapath:\n  static: {node-a: ebpf}\n"
        "hubble:\n  address: from-file:80\n"
    )
    s = config.load(
        config_file=str(cfg),
        env={"KPR_WEB_LISTEN_ADDRESS": "127.0.0.1:2000", "KPR_HUBBLE_ADDRESS": "from-env:80"},
        flags={"--web.listen-address": "127.0.0.1:3000"},
    )
    assert s.web.listen_address == "127.0.0.1:3000"  # flag wins
    assert s.hubble.address == "from-env:80"  # env beats file
    assert s.log.level == "debug"  # file beats default
    assert s.datapath.static == {"node-a": "ebpf"}


def test_static_maps_parse_from_text():
    s = config.load(env={"KPR_DATAPATH_STATIC": "node-a=ebpf, node-b=kube-proxy"})
    assert s.datapath.static == {"node-a": "ebpf", "node-b": "kube-proxy"}


def test_every_problem_is_reported_at_once(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("web:\n  listen_adress: oops\nlog:\n  format: xml\n")
    with pytest.raises(config.ConfigError) as err:
        config.load(
            config_file=str(cfg),
            env={"KPR_DATAPATH_STATIC": "node-a=iptables"},
            flags={"--web.listen-address": "nowhere"},
        )
    text = "\n".join(err.value.problems)
    assert "unknown key 'web.listen_adress'" in text
    assert "log.format: 'xml' is not one of logfmt, json" in text
    assert "node 'node-a' has datapath 'iptables'" in text
    assert "web.listen_address 'nowhere' is not [host]:port" in text
    assert len(err.value.problems) >= 4


def test_unreadable_and_malformed_files_are_problems(tmp_path):
    with pytest.raises(config.ConfigError, match="config file .*missing.yaml"):
        config.load(config_file=str(tmp_path / "missing.yaml"), env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("web: [unclosed\n")
    with pytest.raises(config.ConfigError, match="not valid YAML"):
        config.load(config_file=str(bad), env={})


def test_rendered_configuration_loads_back_to_the_same_settings(tmp_path):
    s = config.load(env={"KPR_DATAPATH_STATIC": "node-a=ebpf", "KPR_LOG_FORMAT": "json"})
    out = tmp_path / "effective.yaml"
    out.write_text(config.render(s))
    assert config.load(config_file=str(out), env={}) == s
