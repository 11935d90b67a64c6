"""Fixtures for the chart tests: the chart loaded by the real Helm engine, rendered offline.

``render(values)`` returns a ``Rendered``: every manifest parsed (empty documents dropped),
plus NOTES.txt. Every render also checks that no two objects share (kind, namespace, name):
such a release keeps only one of them, or fails to install. ``ci_values(name)`` reads
``chart/ci/<name>-values.yaml`` through Helm's own values parser, exactly as ``helm install -f``
would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "chart"
RELEASE = "kpr"
NAMESPACE = "kpr-system"


#: Kinds that live outside any namespace; every other object of the chart is namespaced.
CLUSTER_SCOPED = frozenset({"ClusterRole", "ClusterRoleBinding", "Namespace",
                            "CustomResourceDefinition", "PriorityClass", "StorageClass"})


def object_key(doc: dict[str, Any], namespace: str) -> tuple[str, str, str]:
    """What identifies an object in the cluster: kind, namespace (the release's when the
    manifest names none), name."""
    meta = doc["metadata"]
    ns = "" if doc["kind"] in CLUSTER_SCOPED else meta.get("namespace") or namespace
    return doc["kind"], ns, meta["name"]


def shared_keys(docs: list[dict[str, Any]], namespace: str) -> dict[tuple[str, str, str], int]:
    """The (kind, namespace, name) keys more than one document renders, with their counts."""
    counts: dict[tuple[str, str, str], int] = {}
    for doc in docs:
        key = object_key(doc, namespace)
        counts[key] = counts.get(key, 0) + 1
    return {key: n for key, n in counts.items() if n > 1}


@dataclass(frozen=True)
class Rendered:
    """The manifests of one render, in template order, and the release notes."""

    docs: list[dict[str, Any]]
    notes: str

    def kinds(self) -> list[str]:
        return [d["kind"] for d in self.docs]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]

    def config_map(self) -> dict[str, Any]:
        """The exporter's own ConfigMap (the config file), not the dashboards'."""
        found = [d for d in self.of_kind("ConfigMap") if "config.yaml" in d.get("data", {})]
        assert len(found) == 1, f"expected one config ConfigMap, got {len(found)}"
        return found[0]

    def exporter(self, kind: str) -> list[dict[str, Any]]:
        """The exporter's own objects of ``kind``: not the verification echo and probes,
        which carry app.kubernetes.io/part-of."""
        return [d for d in self.of_kind(kind)
                if "app.kubernetes.io/part-of" not in d["metadata"].get("labels", {})]

    def verification(self, kind: str) -> list[dict[str, Any]]:
        """The verification objects of ``kind`` (echo targets and probes)."""
        mine = {id(d) for d in self.exporter(kind)}
        return [d for d in self.of_kind(kind) if id(d) not in mine]

    def workload(self, kind: str | None = None) -> dict[str, Any]:
        """The pods that read Hubble: relay mode's Deployment, or node mode's DaemonSet of
        collectors; ``kind="Deployment"`` in node mode is the central Deployment."""
        found = (self.exporter(kind) if kind
                 else (self.exporter("DaemonSet") or self.exporter("Deployment")))
        assert len(found) == 1, f"expected one workload, got {[d['kind'] for d in found]}"
        return found[0]

    def container(self, kind: str | None = None) -> dict[str, Any]:
        containers = self.workload(kind)["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]


@dataclass(frozen=True)
class Release:
    """Where the tests install the chart, and the repository it comes from."""

    name: str = RELEASE
    namespace: str = NAMESPACE
    root: Path = ROOT
    chart_dir: Path = CHART_DIR

    @property
    def fullname(self) -> str:
        return f"{self.name}-kpr-exporter"


@pytest.fixture(scope="session")
def release() -> Release:
    return Release()


@pytest.fixture(scope="session")
def chart() -> Iterator[Any]:
    loaded = helm.Chart.load(CHART_DIR)
    try:
        yield loaded
    finally:
        loaded.close()


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_manifests(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(text, Loader=_Loader) if d]


@pytest.fixture(scope="session")
def render(chart: Any) -> Callable[..., Rendered]:
    def _render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE) -> Rendered:
        out = chart.render(values or {}, name=RELEASE, namespace=namespace, is_install=True)
        docs: list[dict[str, Any]] = []
        notes = ""
        for path in sorted(out):
            if path.endswith("NOTES.txt"):
                notes = out[path]
                continue
            docs.extend(parse_manifests(out[path]))
        shared = shared_keys(docs, namespace)
        assert not shared, f"objects rendered more than once (kind, namespace, name): {shared}"
        return Rendered(docs, notes)

    return _render


@pytest.fixture(scope="session")
def ci_values() -> Callable[[str], dict[str, Any]]:
    def _read(name: str) -> dict[str, Any]:
        text = (CHART_DIR / "ci" / f"{name}-values.yaml").read_text()
        return helm.values_from_yaml(text)

    return _read
