"""Emulated-datapath scenarios as data: the documented schema, its errors, the faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.model import EBPF, KUBE_PROXY
from exporter.verify import results as r
from exporter.verify.emulator import scenario as sc
from exporter.verify.emulator.cluster import load_scenario

DOC_EXAMPLE = """
name: canary-datapath-faults
network: 77
loadbalancer: true
etp_local_nodes: [node-a]
nodes:
  - name: node-a
    datapath: kube-proxy
    faults:
      ebpf: [nodeport-loopback-refused, affinity-ignored]
  - name: node-b
"""


def test_the_documented_example_loads() -> None:
    got = sc.load_yaml(DOC_EXAMPLE)
    assert got.name == "canary-datapath-faults" and got.network == 77 and got.loadbalancer
    assert got.node_names == ("node-a", "node-b") and got.etp_local_nodes == ("node-a",)
    a = got.nodes[0]
    assert a.datapath == KUBE_PROXY and a.faults_on(KUBE_PROXY) == ()
    assert a.faults_on(EBPF) == ("nodeport-loopback-refused", "affinity-ignored")
    assert "etp_local_nodes: [node-a]" in sc.__doc__ and "nodes:" in sc.__doc__


def test_defaults() -> None:
    got = sc.load({"nodes": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})
    assert got.network == sc.DEFAULT_NETWORK and got.loadbalancer is True
    assert got.etp_local_nodes == ("a", "b")  # every node but the last
    assert {n.datapath for n in got.nodes} == {KUBE_PROXY}


@pytest.mark.parametrize(("data", "problem"), [
    ([], "must be a mapping"),
    ({}, "at least one node"),
    ({"nodes": [{"name": "a"}, {"name": "a"}]}, "names must be unique"),
    ({"nodes": [{"name": "a", "datapath": "ipvs"}]}, "datapath 'ipvs' is not one of"),
    ({"nodes": [{"name": "a", "faults": {"ebpf": ["gremlins"]}}]}, "unknown fault 'gremlins'"),
    ({"nodes": [{"name": "a", "faults": {"nft": []}}]}, "unknown datapath 'nft'"),
    ({"nodes": [{"name": "a", "faults": ["affinity-ignored"]}]}, "faults must map a datapath"),
    ({"nodes": [{"name": "a"}], "network": 300}, "network: expected an integer 1..254"),
    ({"nodes": [{"name": "a"}], "etp_local_nodes": ["z"]}, "no node 'z'"),
    ({"nodes": [{"name": "a"}], "colour": "red"}, "unknown key 'colour'"),
    ({"nodes": "a"}, "nodes: expected a list"),
    ({"nodes": [{"name": "a"}], "programming_seconds": [1]}, "programming_seconds: expected a"),
    ({"nodes": [{"name": "a"}], "programming_seconds": {"ipvs": 1}}, "unknown datapath 'ipvs'"),
    ({"nodes": [{"name": "a"}], "programming_seconds": {"ebpf": -1}},
     "programming_seconds.ebpf: expected seconds 0..300"),
    ({"nodes": [{"name": "a"}], "programming_seconds": {"kube-proxy": "1s"}},
     "programming_seconds.kube-proxy: expected seconds"),
])
def test_invalid_scenarios_name_the_problem(data: object, problem: str) -> None:
    with pytest.raises(sc.ScenarioError, match=problem):
        sc.load(data)


def test_not_yaml_is_a_scenario_error() -> None:
    with pytest.raises(sc.ScenarioError, match="not YAML"):
        sc.load_yaml("nodes: [a, b")


def test_each_fault_changes_one_behaviour_and_names_a_check() -> None:
    healthy = sc.behaviour(())
    assert len(sc.FAULTS) == 7
    assert set(sc.FAULTS.values()) <= set(r.CHECKS)
    assert len(set(sc.FAULTS.values())) == len(sc.FAULTS)  # one check per fault
    changed = set()
    for fault in sc.FAULTS:
        broken = sc.behaviour((fault,))
        diff = [f for f in healthy.__slots__ if getattr(broken, f) != getattr(healthy, f)]
        assert len(diff) == 1, (fault, diff)
        changed.add(diff[0])
    assert len(changed) == len(sc.FAULTS)


def test_named_scenarios_load() -> None:
    assert set(sc.NAMED) >= {"healthy", "canary-datapath-faults"}
    canary = sc.named("canary-datapath-faults")
    broken = {n.name: n.faults_on(EBPF) for n in canary.nodes if n.faults_on(EBPF)}
    assert broken == {"node-b": ("nodeport-loopback-refused", "affinity-ignored")}
    with pytest.raises(sc.ScenarioError, match="no scenario named"):
        sc.named("nope")


def test_scenarios_load_by_name_or_from_a_file(tmp_path: Path) -> None:
    assert load_scenario("canary-datapath-faults").name == "canary-datapath-faults"
    path = tmp_path / "faults.yaml"
    path.write_text(DOC_EXAMPLE, encoding="utf-8")
    assert load_scenario(file=str(path)).node_names == ("node-a", "node-b")
    path.write_text("nodes: [{name: a, datapath: ipvs}]", encoding="utf-8")
    with pytest.raises(sc.ScenarioError, match=f"{path}: nodes\\[0\\]: datapath 'ipvs'"):
        load_scenario(file=str(path))
    with pytest.raises(sc.ScenarioError, match="cannot read .*missing.yaml"):
        load_scenario(file=str(tmp_path / "missing.yaml"))


def test_programming_delays_are_data_and_default_to_the_simulators_medians() -> None:
    from exporter.simulator.scenarios import EBPF_IMPROVED, KUBE_PROXY_PROFILE

    assert sc.DEFAULT_PROGRAMMING == {KUBE_PROXY: KUBE_PROXY_PROFILE.programming.median_s,
                                      EBPF: EBPF_IMPROVED.programming.median_s}
    assert sc.load({"nodes": [{"name": "a"}]}).programming(KUBE_PROXY) == 1.2
    custom = sc.load({"nodes": [{"name": "a"}], "programming_seconds": {"kube-proxy": 3}})
    assert (custom.programming(KUBE_PROXY), custom.programming(EBPF)) == (3.0, 0.004)
    for name in sc.NAMED:  # every named scenario: kube-proxy slower than eBPF, as the demo's
        got = sc.named(name)
        assert got.programming(KUBE_PROXY) > got.programming(EBPF) > 0
    assert "programming_seconds:" in sc.__doc__
