"""The settings tree: precedence file < env < flags, derived names, all problems at once."""

import pytest

from exporter import config, config_checks, config_values


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


# --- durations ------------------------------------------------------------------------------

DURATIONS = [o for o in config.options() if o.duration]


def test_every_seconds_setting_is_a_duration():
    named = {o.key for o in config.options() if o.path[-1].endswith("_seconds")}
    assert len(DURATIONS) >= 20 and {o.key for o in DURATIONS} == named


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1d", 86400.0),
    ("2h0m5s", 7205.0), ("0", 0.0), ("45", 45.0), ("0.25", 0.25), ("1e-3", 0.001),
])
def test_duration_text_parses_to_seconds(text, seconds):
    assert config_values.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "5m30", "1.5s", "30S", "-1", "5m5h", "nan", "inf"])
def test_malformed_durations_are_refused(text):
    if text == "5":
        assert config_values.parse_duration(text) == 5.0  # plain seconds keep working
        return
    with pytest.raises(ValueError, match="duration"):
        config_values.parse_duration(text)


@pytest.mark.parametrize("option", DURATIONS, ids=[o.key for o in DURATIONS])
def test_every_duration_accepts_prometheus_style_in_flags_env_and_yaml(option, tmp_path):
    doubled = option.default * 2  # differs from the default and keeps every min <= max rule
    text = config_values.format_duration(doubled)  # 300.0 -> "5m", 0.5 -> "500ms"
    nested = "".join(f"{'  ' * i}{p}:\n" for i, p in enumerate(option.path[:-1]))
    cfg = tmp_path / "kpr.yaml"
    cfg.write_text(f"{nested}{'  ' * (len(option.path) - 1)}{option.path[-1]}: {text}\n")

    def value(settings):
        node = settings
        for part in option.path:
            node = getattr(node, part)
        return node

    loaded = [config.load(config_file=str(cfg), env={}), config.load(env={option.env: text}),
              config.load(env={}, flags={option.flag: text}),
              config.load(env={}, flags={option.flag: repr(doubled)})]  # plain seconds
    assert option.default > 0
    assert [value(s) for s in loaded] == [doubled] * 4
    assert all(isinstance(value(s), option.type) for s in loaded)


def test_most_defaults_have_a_unit_form():
    texts = [config_values.format_duration(o.default) for o in DURATIONS]
    assert sum(t[-1].isalpha() for t in texts) >= len(texts) - 1, texts


def test_a_bad_duration_names_where_it_was_given(tmp_path):
    cfg = tmp_path / "kpr.yaml"
    cfg.write_text("judge:\n  short_window_seconds: 5 minutes\n")
    with pytest.raises(config.ConfigError) as err:
        config.load(config_file=str(cfg), env={"KPR_KUBE_RESYNC_SECONDS": "5mins"},
                    flags={"--rollback.lease-seconds": "500ms"})
    text = "\n".join(err.value.problems)
    assert "judge.short_window_seconds: expected a duration" in text
    assert "KPR_KUBE_RESYNC_SECONDS: expected a duration" in text
    assert "--rollback.lease-seconds: expected whole seconds" in text


# --- names that match no setting ---------------------------------------------------------------

def test_an_unknown_kpr_variable_is_warned_about_with_the_closest_setting():
    warnings = config.env_warnings({
        "KPR_JUDGE_SHORT_WINDOW": "5m",  # the _SECONDS suffix forgotten
        "KPR_HUBBLE_ADDRESS": "relay:80",  # a setting: no warning
        "KPR_REQUIRE_REAL_COMPONENTS": "1",  # not a setting, but known
        "KPR_BUILD_REVISION": "abc123",
        "PATH": "/bin",
        "KPR_ZZZ": "1",
    })
    assert len(warnings) == 2, warnings
    assert "KPR_JUDGE_SHORT_WINDOW matches no setting" in warnings[0]
    assert ("did you mean KPR_JUDGE_SHORT_WINDOW_SECONDS (--judge.short-window-seconds)"
            in warnings[0])
    assert warnings[1].startswith("environment variable KPR_ZZZ matches no setting")
    assert "did you mean" not in warnings[1]


def test_unknown_keys_and_flags_name_the_closest_setting(tmp_path):
    cfg = tmp_path / "kpr.yaml"
    cfg.write_text("web:\n  listen_adress: 127.0.0.1:1\n")
    with pytest.raises(config.ConfigError) as err:
        config.load(config_file=str(cfg), env={}, flags={"--hubble.adress": "x:1"})
    text = "\n".join(err.value.problems)
    assert "unknown key 'web.listen_adress' (did you mean web.listen_address?)" in text
    assert "unknown flag --hubble.adress (did you mean --hubble.address?)" in text


# --- what starting needs: one validation for run and check-config --------------------------------

def test_enforce_mode_needs_a_token_and_kubernetes_in_the_settings_alone():
    with pytest.raises(config.ConfigError) as err:
        config.load(env={}, flags={"--rollback.mode": "enforce", "--kube.enabled": "false"})
    text = "\n".join(err.value.problems)
    assert "rollback.mode enforce needs --webhook.token-file" in text
    assert "rollback.mode enforce needs Kubernetes access (kube.enabled is false)" in text


def _self_signed(tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kpr-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_files_read_at_start_must_be_readable_and_load(tmp_path):
    cert, key = _self_signed(tmp_path)
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    not_pem = tmp_path / "not-pem"
    not_pem.write_text("hello\n")
    flags = {
        "--webhook.token-file": str(empty),
        "--webhook.listen-address": "127.0.0.1:0",
        "--webhook.tls.cert-file": str(tmp_path / "missing.crt"),
        "--webhook.tls.key-file": key,
        "--hubble.tls.ca-file": str(not_pem),
        "--kube.enabled": "false",
    }
    config.load(env={}, flags=flags)  # the settings alone are consistent
    with pytest.raises(config.ConfigError) as err:
        config.load(env={}, flags=flags, startup=True)
    text = "\n".join(err.value.problems)
    assert "webhook.token_file" in text and "is empty" in text
    assert "webhook.tls.cert_file" in text and "missing.crt" in text and "no such file" in text
    assert "hubble.tls:" in text and "does not load as a PEM CA bundle" in text
    assert len(err.value.problems) == 3, err.value.problems

    token = tmp_path / "token"
    token.write_text("s3cret\n")
    good = {**flags, "--webhook.token-file": str(token), "--webhook.tls.cert-file": cert,
            "--webhook.tls.client-ca-file": cert, "--hubble.tls.ca-file": cert}
    settings = config.load(env={}, flags=good, startup=True)
    assert settings.webhook.tls.cert_file == cert


def test_requested_kubernetes_access_must_be_usable(tmp_path):
    missing = str(tmp_path / "no-kubeconfig")
    with pytest.raises(config.ConfigError, match="kube.kubeconfig .*no such file"):
        config.load(env={}, flags={"--kube.kubeconfig": missing}, startup=True)
    with pytest.raises(config.ConfigError, match="kube.enabled asks for Kubernetes access"):
        config.load(env={"HOME": str(tmp_path)}, flags={"--kube.enabled": "true"}, startup=True)
    # auto without any configuration runs without Kubernetes: not a problem in dry-run.
    settings = config.load(env={"HOME": str(tmp_path)}, startup=True)
    assert settings.kube.enabled == "auto"


def test_every_file_setting_is_classified():
    """A new ``*_file`` setting is either checked at start or named here as written/optional."""
    # probe.targets_file and probe.kubeconfig are the probe's own: the target file is re-read
    # every round (errors counted, last good targets kept), and the kubeconfig is loaded by the
    # probe command only when extra Services are selected (`probe` refuses to start without a
    # usable one); neither is read by the exporter's start.
    written_or_optional = {"baseline.file", "rollback.kill_switch_file", "rollback.backup_file",
                           "probe.targets_file", "probe.kubeconfig"}
    files = {o.key for o in config.options()
             if o.path[-1].endswith("file") or o.path[-1] == "kubeconfig"}
    assert len(files) >= 8
    assert files == set(config_checks.READ_AT_START) | written_or_optional
    flags = {o.key: o.flag for o in config.options()}
    assert all(flags[k] == f for k, f in config_checks.READ_AT_START.items())


@pytest.mark.parametrize(("text", "parts", "url"), [
    (":9977", ("0.0.0.0", 9977), "http://127.0.0.1:9977"),
    ("127.0.0.1:0", ("127.0.0.1", 0), "http://127.0.0.1:0"),
    ("[::1]:80", ("::1", 80), "http://[::1]:80"),
    ("10.0.0.5:9977", ("10.0.0.5", 9977), "http://10.0.0.5:9977"),
])
def test_the_one_listen_address_parser(text, parts, url):
    assert config_values.parse_listen(text) == parts
    assert config_values.local_url(text) == url


@pytest.mark.parametrize("text", ["9977", "host:", "host:x", ":65536", ""])
def test_a_bad_listen_address_is_a_clear_error(text):
    with pytest.raises(ValueError, match=r"is not \[host\]:port"):
        config_values.parse_listen(text)
