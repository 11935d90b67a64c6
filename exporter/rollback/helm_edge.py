"""The thin edge to the real Helm engine (helm-python-sdk) for ``rollback --persist`` and the
migration's last step (``kubeProxyReplacement`` through Cilium's own release).

Contract, kept small on purpose because only a real API server can prove it end to end
(it is exercised outside CI against one; ``docs/rollback.md`` says how):

* ``write_chart(document, directory)`` lays out the chart a release record stores
  (``Chart.yaml`` from its metadata, ``values.yaml``, ``values.schema.json``, templates and
  files) so that Helm loads exactly the chart that was deployed — no chart repository;
* ``upgrade(document, values, description=...)`` loads that chart and runs Helm's own
  upgrade action for the release with exactly ``values`` as the user-supplied values
  (``reset_values``: the result equals ``--reuse-values --set <key>=<value>`` on the stored
  values) and returns Helm's summary of the new revision. ``description`` is the caller's
  own (what ``helm history`` shows for the revision: ``rollback --persist`` and the
  migration's last step each say which they are). Helm writes the new release Secret and
  applies the manifests itself; nothing else here touches the cluster.

The engine is an optional dependency (``pip install 'kpr-exporter[helm]'``); without it,
:class:`HelmEngineMissing` says so.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml


class HelmEngineMissing(RuntimeError):
    """helm-python-sdk is not installed."""


class HelmUpgradeError(RuntimeError):
    """Helm refused or failed the upgrade; the message is Helm's."""


class Upgrade(Protocol):
    """What ``upgrade`` is to its callers (the engine's settings already bound)."""

    def __call__(self, document: Mapping[str, Any], values: Mapping[str, Any], *,
                 description: str) -> Mapping[str, Any]: ...


def write_chart(document: Mapping[str, Any], directory: Path) -> Path:
    """Write the chart stored in a release record under ``directory``; returns the chart root."""
    chart = document.get("chart") or {}
    meta = dict(chart.get("metadata") or {})
    root = directory / str(meta.get("name") or "chart")
    root.mkdir(parents=True, exist_ok=True)
    (root / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (root / "values.yaml").write_text(yaml.safe_dump(chart.get("values") or {}, sort_keys=False))
    if chart.get("schema"):
        (root / "values.schema.json").write_bytes(base64.b64decode(chart["schema"]))
    for item in [*(chart.get("templates") or ()), *(chart.get("files") or ())]:
        path = (root / item["name"]).resolve()
        if root.resolve() not in path.parents:
            raise HelmUpgradeError(f"the stored chart names a file outside it: {item['name']!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(item.get("data") or ""))
    return root


def upgrade(document: Mapping[str, Any], values: Mapping[str, Any], *, description: str,
            kubeconfig: str | None = None, context: str | None = None,
            timeout_seconds: int = 300) -> dict[str, Any]:
    """A new revision of the release in ``document`` with ``values``, described as
    ``description``; Helm's summary of it."""
    try:
        import helm_python
    except ImportError as exc:
        raise HelmEngineMissing("a Helm upgrade (rollback --persist, migrate run) needs the "
                                "Helm engine: pip install 'kpr-exporter[helm]'") from exc
    name, namespace = str(document["name"]), str(document["namespace"])
    with tempfile.TemporaryDirectory(prefix="kpr-persist-") as tmp:
        root = write_chart(document, Path(tmp))
        chart = helm_python.Chart.load(root)
        config = helm_python.Config(kubeconfig_path=kubeconfig, kube_context=context,
                                    namespace=namespace)
        try:
            release = config.upgrade(
                chart, name, json.loads(json.dumps(values)), namespace=namespace,
                reset_values=True, timeout=timeout_seconds, wait="watcher",
                description=description)
        except helm_python.HelmError as exc:
            raise HelmUpgradeError(str(exc)) from exc
        finally:
            config.close()
            chart.close()
    return dict(release)
