"""``kpr-exporter verify --from-cluster``: the probe pods found through the (fake) Kubernetes
API, the way the exporter finds them, and each probe's ``/metrics`` read directly. The pods'
addresses point at real probes on loopback, checking the emulated datapath; pods that are
not running probes are left out. No probe pod, a denied listing, no Kubernetes access, or
``--exporter-url`` next to ``--from-cluster`` exit 2 with one message."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from exporter import cli, commands
from exporter.verify import results as r
from exporter.verify.emulator.scenario import NAMED
from tests.fakekube.fixtures import FakeKube, pod
from tests.verify.test_verify_e2e import failing, probes  # noqa: F401 - fixture

PROBE = {"app.kubernetes.io/name": "kpr-exporter", "app.kubernetes.io/component": "probe"}


def probe_pod(name: str, node: str, url: str, *, labels: dict[str, str] | None = None,
              phase: str = "Running") -> dict[str, Any]:
    """A probe pod whose address and ``metrics`` port are ``url``'s (a loopback listener)."""
    where = urlsplit(url)
    obj = pod(name, "kpr", node, PROBE if labels is None else labels, phase=phase)
    obj["status"]["podIP"] = where.hostname
    obj["spec"]["containers"][0]["ports"] = [{"name": "metrics", "containerPort": where.port}]
    return obj


@pytest.fixture
def refused_url() -> Iterator[str]:
    with socket.socket() as held:  # bound, never listening: connections are refused
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


async def run_verify(fake: FakeKube, *argv: str) -> int:
    args = cli.build_parser(demo_help=False).parse_args(
        ["verify", "--kube.kubeconfig", str(fake.kubeconfig), "--probes.namespace", "kpr",
         *argv])
    return await commands.verify(cli.load_settings(args, {}), args)


async def test_verify_reads_the_probe_pods_it_finds_in_the_cluster(
        probes: Any, fake_kube: FakeKube, refused_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    loops, urls = await probes(NAMED["canary-datapath-faults"])
    for loop in loops:
        await loop.round()
    for loop, url in zip(loops, urls, strict=True):
        fake_kube.seed(probe_pod(f"kpr-probe-{loop.node}", loop.node, url))
    # Not read: a pending probe, and a running pod that is no probe (both would be refused).
    fake_kube.seed(probe_pod("kpr-probe-new", "node-a", refused_url, phase="Pending"))
    fake_kube.seed(probe_pod("web", "node-a", refused_url, labels={"app": "web"}))

    code = await run_verify(fake_kube, "--from-cluster", "--format", "json")
    captured = capsys.readouterr()
    assert "kpr-exporter verify:" not in captured.err  # (the probes log their failures)
    doc = json.loads(captured.out)
    assert code == 1
    assert failing(doc) == {(r.NODEPORT_LOOPBACK, "node-b"), (r.SESSION_AFFINITY, "node-b")}
    assert doc["problems"] == []
    assert {n["name"]: n["datapath"] for n in doc["nodes"]} == {
        "node-a": "kube-proxy", "node-b": "ebpf", "node-c": "kube-proxy"}
    listings = [q for q in fake_kube.requests if q.path.endswith("/namespaces/kpr/pods")]
    assert listings, "the probe pods were not listed"
    assert listings[-1].query.get("labelSelector") == ",".join(f"{k}={v}"
                                                               for k, v in PROBE.items())


async def test_without_probe_pods_verify_says_where_it_looked(
        fake_kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_verify(fake_kube, "--from-cluster") == 2
    err = capsys.readouterr().err
    assert err.startswith("kpr-exporter verify: no running probe pod")
    assert "in namespace 'kpr'" in err and len(err.strip().splitlines()) == 1


async def test_a_denied_listing_is_an_error_not_an_empty_matrix(
        fake_kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    fake_kube.deny("list", "pods", "kpr")
    assert await run_verify(fake_kube, "--from-cluster") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("kpr-exporter verify: cannot list the probe pods")


async def test_from_cluster_needs_kubernetes_and_no_exporter_url(
        fake_kube: FakeKube, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_verify(fake_kube, "--from-cluster",
                            "--exporter-url", "http://127.0.0.1:9977") == 2
    assert "drop --exporter-url" in capsys.readouterr().err
    args = cli.build_parser(demo_help=False).parse_args(
        ["verify", "--from-cluster", "--kube.kubeconfig", str(tmp_path / "missing")])
    assert await commands.verify(cli.load_settings(args, {}), args) == 2
    assert "no usable Kubernetes configuration" in capsys.readouterr().err
    assert not [q for q in fake_kube.requests if q.path.endswith("/pods")]
