"""The pod the chart renders starts the exporter the way its command line accepts.

The container args of every value set go through the exporter's own argument parser and
settings loader, with the rendered config file, so a renamed flag or config key fails here and
not in a cluster. The Dockerfile's entry point and user match what the chart assumes.

A flag or config-file section the chart passes that the settings tree does not declare fails,
naming it: the pod would refuse to start. Node mode's value sets are checked for both
workloads: the collectors' DaemonSet and the central Deployment. Every other container the
chart starts (the verification echo and probes, with their measurements on in
verification-measures) goes through the parser and the settings' validation too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from exporter import cli, config

VALUE_SETS = ("default", "all-on", "node-socket", "node-tls", "enforce", "verification",
              "verification-measures")
#: (value set, workload kind): None is the pods reading Hubble, "Deployment" node mode's central
WORKLOADS = [(name, None) for name in VALUE_SETS] + [
    (name, "Deployment") for name in VALUE_SETS if name.startswith("node-")]
# What the kubelet substitutes for $(VAR) references in args (downward API).
DOWNWARD = {"NODE_NAME": "worker-1", "HOST_IP": "10.0.0.11", "POD_NAME": "kpr-central-0",
            "POD_IP": "10.244.1.7"}


def _section_of(flag: str) -> str:
    return flag.removeprefix("--").split(".", 1)[0].replace("-", "_")


def _expand(arg: str) -> str:
    return re.sub(r"\$\(([A-Z_]+)\)", lambda m: DOWNWARD[m.group(1)], arg)


@pytest.mark.parametrize(("name", "kind"), WORKLOADS,
                         ids=[f"{n}-central" if k else n for n, k in WORKLOADS])
def test_rendered_args_and_config_file_load(render, ci_values, tmp_path: Path, name, kind):
    out = render({} if name == "default" else ci_values(name))
    container = out.container(kind)
    env_names = {e["name"] for e in container["env"]}
    for arg in container["args"]:
        for ref in re.findall(r"\$\(([A-Z_]+)\)", arg):
            assert ref in env_names, f"{arg} refers to ${ref} which the pod does not define"

    config_file = tmp_path / "config.yaml"
    config_file.write_text(out.config_map()["data"]["config.yaml"])
    args = []
    for arg in map(_expand, container["args"]):
        if arg.startswith("--config.file="):
            arg = f"--config.file={config_file}"
        args.append(arg)

    mounted = {o.path[0] for o in config.options()}
    flags = [a.split("=", 1)[0] for a in args[1:]]
    keys = set(yaml.safe_load(config_file.read_text()) or {})
    missing = sorted({_section_of(f) for f in flags if f != "--config.file"} - mounted
                     | keys - mounted)
    assert not missing, f"the chart passes sections the settings tree lacks: {', '.join(missing)}"

    parsed = cli.build_parser().parse_args(args)
    assert parsed.command == "run"
    settings = cli.load_settings(parsed, env={})
    effective = config.as_mapping(settings)
    assert effective["web"]["listen_address"] == ":9977"
    role = effective["web"]["role"]
    assert role == ("central" if kind else "collector" if name.startswith("node-") else "all")
    hubble = [a for a in container["args"] if a.startswith("--hubble.address=")]
    if role == "central":  # reads no Hubble; judges over Prometheus
        assert not hubble
        assert effective["judge"]["source"] == "prometheus"
    else:
        assert effective["hubble"]["address"] == _expand(hubble[0].split("=", 1)[1])
    assert effective["rollback"]["mode"] == ("enforce" if name == "enforce" else "dry-run")
    # with active verification the exporter collects the probes' results
    assert effective["probes"]["enabled"] is name.startswith("verification")
    assert effective["webhook"]["token_file"] == (
        "" if role == "collector" else "/etc/kpr-exporter/webhook/token")


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_container_the_chart_starts_takes_its_args(render, ci_values, tmp_path: Path, name):
    """Every container of every workload (the exporter's, the echo, both probes) starts a
    command that accepts each flag the chart passes, and the settings' validation (the
    probes' caps and cross-field rules included) passes: a refused flag or value would
    crash-loop the pod."""
    out = render({} if name == "default" else ci_values(name))
    config_file = tmp_path / "config.yaml"
    config_file.write_text(out.config_map()["data"]["config.yaml"])
    started = []
    for workload in out.of_kind("DaemonSet") + out.of_kind("Deployment"):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        for container in workload["spec"]["template"]["spec"]["containers"]:
            env_names = {e["name"] for e in container.get("env", [])}
            args = []
            for arg in container["args"]:
                refs = re.findall(r"\$\(([A-Z_]+)\)", arg)
                assert set(refs) <= env_names, f"{where}: {arg} refers to an undefined variable"
                arg = _expand(arg)
                args.append(f"--config.file={config_file}"
                            if arg.startswith("--config.file=") else arg)
            try:
                parsed = cli.build_parser().parse_args(args)
            except SystemExit:
                pytest.fail(f"{where}: the CLI refuses {args}")
            assert parsed.command == args[0]
            try:
                cli.load_settings(parsed, env={})
            except config.ConfigError as exc:
                pytest.fail(f"{where}: {exc}")
            started.append(parsed.command)
    assert "run" in started
    if name.startswith("verification"):
        assert sorted(started) == ["echo", "probe", "probe", "run"]


def test_the_contract_flags_the_chart_relies_on_exist_in_the_settings_tree():
    """The brief's run flags are declared by the settings tree, as the chart passes them."""
    flags = {o.flag for o in config.options()}
    for flag in ("--web.listen-address", "--hubble.address", "--hubble.tls.ca-file",
                 "--hubble.tls.cert-file", "--hubble.tls.key-file", "--hubble.tls.server-name",
                 "--log.format", "--log.level"):
        assert flag in flags, flag


def _dockerfile(root: Path) -> list[str]:
    lines, buf = [], ""
    for raw in (root / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        buf += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            lines.append(buf.strip())
            buf = ""
    return lines


def test_dockerfile_matches_the_chart(release, render):
    lines = _dockerfile(release.root)
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert froms and all(f.startswith("python:3.11-slim") for f in froms)
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")):]
    user = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user, "the runtime stage must switch to a non-root user"
    uid, _, gid = user[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric non-root uid, so runAsNonRoot can verify it"
    pod = render().workload()["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsUser"] == int(uid)
    if gid:
        assert pod["runAsGroup"] == int(gid)
    assert 'ENTRYPOINT ["kpr-exporter"]' in final
    assert any(re.match(r"RUN pip install /wheels/", line) for line in final)
    # The default image is the chart's appVersion, which is the package's version.
    project = (release.root / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', project, re.M).group(1)
    chart = yaml.safe_load((release.chart_dir / "Chart.yaml").read_text())
    assert chart["appVersion"] == version


def test_dockerignore_keeps_the_build_context_to_the_package(release):
    rules = [r for r in (release.root / ".dockerignore").read_text().splitlines()
             if r and not r.startswith("#")]
    assert rules[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!exporter/"} <= set(rules)
