"""The kube-proxy scraper's discovery follows the chart's kubeProxy.* values.

Matrix: the defaults (the config file's kube_proxy section is kubeProxy.namespace and
kubeProxy.podSelector, which the settings read back as the scraper's namespace and selector);
both values moved (the scraper, the datapath watcher and the rollback agree, and the pods are
listable there, relay mode and node mode's collectors); a config.kube_proxy override wins and
gets its own listing grant (exactly one), none with static targets or the scraper off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from exporter import cli
from tests.chart.test_rbac import _kube_reads, _rendered

MOVED = {"kubeProxy": {"namespace": "kp", "podSelector": "app=kp,tier=node"}}


def _config(out) -> dict[str, Any]:
    return yaml.safe_load(out.config_map()["data"]["config.yaml"])


def _loaded(out, tmp_path: Path) -> Any:
    """The settings the exporter's pod runs with: its args and its rendered config file."""
    config_file = tmp_path / "config.yaml"
    config_file.write_text(out.config_map()["data"]["config.yaml"])
    args = [f"--config.file={config_file}" if a.startswith("--config.file=") else a
            for a in out.container()["args"] if "$(" not in a]
    return cli.load_settings(cli.build_parser().parse_args(args), env={})


def _pod_lists(grants: set[tuple[str, str, str, str, str]]) -> set[str]:
    return {g[0] for g in grants if g[1:4] == ("", "pods", "list")}


def test_the_defaults_reach_the_scraper(render, chart, tmp_path):
    out = render()
    values = chart.values["kubeProxy"]
    assert _config(out)["kube_proxy"] == {"namespace": values["namespace"],
                                          "selector": values["podSelector"]}
    kp = _loaded(out, tmp_path).kube_proxy
    assert (kp.namespace, kp.selector) == (values["namespace"], values["podSelector"])


def test_moved_kube_proxy_pods_are_discovered_and_listable_there(render, tmp_path):
    out = render(MOVED)
    settings = _loaded(out, tmp_path)
    assert (settings.kube_proxy.namespace, settings.kube_proxy.selector) == ("kp",
                                                                             "app=kp,tier=node")
    # one place, one answer: the datapath watcher and the rollback look there too
    assert (settings.kube.kube_proxy_namespace, settings.kube.kube_proxy_selector) == (
        "kp", "app=kp,tier=node")
    assert (settings.rollback.kube_proxy.namespace,
            settings.rollback.kube_proxy.pod_selector) == ("kp", "app=kp,tier=node")
    assert "kp" in _pod_lists(_rendered(out))
    assert "kube-system" not in _pod_lists(_rendered(render(MOVED | {
        "cilium": {"namespace": "cilium"}})))
    assert _kube_reads(out) <= _rendered(out)

    node = render({**MOVED, "mode": "node"})
    (collectors,) = [a["metadata"]["name"] for a in node.exporter("ServiceAccount")
                     if not a["metadata"]["name"].endswith("-central")]
    assert "kp" in _pod_lists(_rendered(node, collectors))


def test_a_config_override_wins_and_is_granted_its_listing(render, tmp_path):
    values = {**MOVED, "config": {"kube_proxy": {"namespace": "kp-metrics"}}}
    out = render(values)
    settings = _loaded(out, tmp_path)
    assert (settings.kube_proxy.namespace, settings.kube_proxy.selector) == (
        "kp-metrics", "app=kp,tier=node")
    assert settings.kube.kube_proxy_namespace == "kp"  # the watchers keep the values'
    added = _rendered(out) - _rendered(render(MOVED))
    assert added == {("kp-metrics", "", "pods", "list", "")}
    assert _kube_reads(out) <= _rendered(out)

    node = render({**values, "mode": "node"})
    (collectors,) = [a["metadata"]["name"] for a in node.exporter("ServiceAccount")
                     if not a["metadata"]["name"].endswith("-central")]
    assert "kp-metrics" in _pod_lists(_rendered(node, collectors))


def test_no_listing_grant_without_discovery(render):
    base = _rendered(render(MOVED))
    for kube_proxy in ({"namespace": "kp-metrics", "static": {"w1": "http://10.0.0.1:10249"}},
                       {"namespace": "kp-metrics", "enabled": False}):
        out = render({**MOVED, "config": {"kube_proxy": kube_proxy}})
        assert _rendered(out) == base, kube_proxy
