"""The probe's target file: what the emulator's targets dump to loads back, YAML and JSON
alike, and every problem of a bad file is named at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.verify import targetfile
from exporter.verify.targetfile import TargetFileError

GOOD: dict[str, Any] = {
    "cluster_ip": "10.96.0.10:80", "node_port": 30080, "loadbalancer": "[2001:db8::10]:80",
    "etp_local_node_port": 30081, "health_check_node_port": 30082,
    "affinity": "10.96.0.11:80", "no_endpoints": "10.96.0.12:80", "apiserver": "10.96.0.1:443",
    "hostport": 30090,
    "nodes": [{"name": "worker-1", "datapath": "ebpf", "addresses": ["10.0.0.1", "fd00::1"],
               "etp_local_endpoints": 2, "hostport": True},
              {"name": "worker-2", "addresses": ["10.0.0.2"]}],
}


def test_a_full_document_parses() -> None:
    got = targetfile.parse(GOOD)
    assert got.cluster_ip == ("10.96.0.10", 80)
    assert got.loadbalancer == ("2001:db8::10", 80)
    assert got.loopback == "127.0.0.1"
    assert got.node("worker-1").addresses == ("10.0.0.1", "fd00::1")
    assert got.node("worker-1").etp_local_endpoints == 2 and got.node("worker-1").hostport
    assert got.node("worker-2").datapath == "kube-proxy" and not got.node("worker-2").hostport


async def test_the_emulators_targets_round_trip_through_yaml_and_json(
        emulate: Callable[..., Any], tmp_path: Path) -> None:
    cluster = await emulate({"nodes": [{"name": "a"}, {"name": "b", "datapath": "ebpf"}]})
    doc = targetfile.dump(cluster.targets())
    as_yaml, as_json = tmp_path / "t.yaml", tmp_path / "t.json"
    as_yaml.write_text(yaml.safe_dump(doc))
    as_json.write_text(json.dumps(doc))
    assert targetfile.load(str(as_yaml)) == cluster.targets()
    assert targetfile.load(str(as_json)) == cluster.targets()


def test_every_problem_is_named() -> None:
    bad = {**GOOD, "cluster_ip": "10.96.0.10", "node_port": "x", "colour": 1,
           "nodes": [{"name": "n", "datapath": "ipvs", "addresses": []},
                     {"name": "m", "addresses": ["1.2.3.4"]},
                     {"name": "m", "addresses": ["1.2.3.5"]}]}
    with pytest.raises(TargetFileError) as err:
        targetfile.parse(bad)
    assert err.value.problems == ["unknown key 'colour'"]
    del bad["colour"]
    with pytest.raises(TargetFileError) as err:
        targetfile.parse(bad)
    text = "\n".join(err.value.problems)
    for part in ("cluster_ip: expected host:port", "node_port: expected a port number",
                 "nodes[0]: datapath 'ipvs'", "nodes[0]: addresses must be",
                 "nodes[2]: node 'm' is listed twice"):
        assert part in text
    assert len(err.value.problems) == 5


def test_missing_keys_are_listed() -> None:
    with pytest.raises(TargetFileError) as err:
        targetfile.parse({"nodes": []})
    assert "cluster_ip is required" in err.value.problems
    assert "hostport is required" in err.value.problems
    with pytest.raises(TargetFileError):
        targetfile.parse(["not", "a", "mapping"])


def test_unreadable_and_invalid_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(TargetFileError, match="cannot read .*absent.yaml"):
        targetfile.load(str(missing))
    broken = tmp_path / "broken.yaml"
    broken.write_text("nodes: [\n")
    with pytest.raises(TargetFileError, match="broken.yaml: not valid YAML or JSON"):
        targetfile.load(str(broken))
    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump({**GOOD, "hostport": 0}))
    with pytest.raises(TargetFileError, match="partial.yaml: hostport: expected a port"):
        targetfile.load(str(partial))
