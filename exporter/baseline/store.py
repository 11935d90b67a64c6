"""Persistence of the frozen baseline: a JSON file or a ConfigMap.

Both stores keep one baseline document (``exporter.baseline.model``). ``FileStore`` writes
a temporary file next to the target, fsyncs it and renames it over the target, so a crash
leaves either the old or the new document. ``ConfigMapStore`` keeps the document under the
``baseline.json`` key of one ConfigMap through the project's Kubernetes client
(``exporter.kube.client.KubeClient``: ``get``/``create``/``replace``), with
compare-and-swap on ``resourceVersion`` and a few retries on conflicts. Every failure is a
``StoreError``; a missing document is ``None``, never an empty baseline.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from exporter.baseline.model import Baseline, BaselineFormatError
from exporter.baseline.settings import CONFIGMAP, BaselineSettings
from exporter.kube.errors import Conflict, KubeError, NotFound
from exporter.kube.resources import CONFIGMAPS, Resource

KEY: Final = "baseline.json"
#: A ConfigMap holds at most 1 MiB; leave room for metadata.
MAX_CONFIGMAP_BYTES: Final = 1_000_000
_CONFLICT_RETRIES: Final = 3
LABELS: Final = {"app.kubernetes.io/name": "kpr-exporter", "app.kubernetes.io/component": "baseline"}


class StoreError(Exception):
    """The baseline could not be read or written."""


@runtime_checkable
class BaselineStore(Protocol):
    """Keeps one frozen baseline across restarts."""

    async def load(self) -> Baseline | None: ...

    async def save(self, baseline: Baseline) -> None: ...

    async def clear(self) -> None: ...

    def describe(self) -> str: ...


class ConfigMapClient(Protocol):
    """The part of ``exporter.kube.client.KubeClient`` the ConfigMap store uses."""

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict: ...

    async def create(self, resource: Resource, body: Mapping[str, Any],
                     namespace: str | None = None) -> dict: ...

    async def replace(self, resource: Resource, body: Mapping[str, Any],
                      namespace: str | None = None) -> dict: ...


def encode(baseline: Baseline, *, compact: bool = False) -> str:
    """The JSON document; ``compact`` leaves out derived figures and whitespace."""
    doc = baseline.to_dict()
    if compact:
        for item in doc["services"]:
            for derived in ("connections", "connect_duration_quantiles", "connect_failure_ratio",
                            "drop_ratio", "kpr_sensitive_drop_ratio"):
                item.pop(derived, None)
        return json.dumps(doc, separators=(",", ":"), allow_nan=False)
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def decode(text: str, where: str) -> Baseline:
    try:
        return Baseline.from_dict(json.loads(text))
    except (ValueError, BaselineFormatError) as exc:
        raise StoreError(f"{where}: unreadable baseline: {exc}") from exc


class FileStore:
    """The baseline as a JSON file, replaced atomically."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"file {self.path}"

    async def load(self) -> Baseline | None:
        return await asyncio.to_thread(self._load)

    async def save(self, baseline: Baseline) -> None:
        await asyncio.to_thread(self._write, encode(baseline))

    async def clear(self) -> None:
        await asyncio.to_thread(self._clear)

    def _load(self) -> Baseline | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from exc
        return decode(text, str(self.path))

    def _write(self, text: str) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                       dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_directory(directory)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path}: {exc}") from exc

    def _clear(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot remove {self.path}: {exc}") from exc


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not supported here; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ConfigMapStore:
    """The baseline under key ``baseline.json`` of ConfigMap ``namespace/name``."""

    def __init__(self, client: ConfigMapClient, namespace: str, name: str) -> None:
        self._client = client
        self.namespace = namespace
        self.name = name

    def describe(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    async def load(self) -> Baseline | None:
        found = await self._get()
        if found is None:
            return None
        text = (found.get("data") or {}).get(KEY)
        return None if text is None else decode(text, self.describe())

    async def save(self, baseline: Baseline) -> None:
        text = encode(baseline, compact=True)
        if len(text.encode("utf-8")) > MAX_CONFIGMAP_BYTES:
            raise StoreError(f"{self.describe()}: the baseline ({len(text)} bytes, "
                             f"{len(baseline.services)} services) is too large for a "
                             "ConfigMap; use the file store")
        for _ in range(_CONFLICT_RETRIES):
            found = await self._get()
            try:
                if found is None:
                    await self._client.create(CONFIGMAPS, self._body({KEY: text}), self.namespace)
                else:
                    data = dict(found.get("data") or {})
                    data[KEY] = text
                    await self._client.replace(CONFIGMAPS, {**found, "data": data},
                                               self.namespace)
                return
            except Conflict:
                continue  # created or changed meanwhile: read again
            except KubeError as exc:
                raise StoreError(f"cannot write {self.describe()}: {exc}") from exc
        raise StoreError(f"cannot write {self.describe()}: it kept changing "
                         f"({_CONFLICT_RETRIES} conflicts)")

    async def clear(self) -> None:
        for _ in range(_CONFLICT_RETRIES):
            found = await self._get()
            if found is None or KEY not in (found.get("data") or {}):
                return
            data = {k: v for k, v in (found.get("data") or {}).items() if k != KEY}
            try:
                await self._client.replace(CONFIGMAPS, {**found, "data": data}, self.namespace)
                return
            except Conflict:
                continue
            except KubeError as exc:
                raise StoreError(f"cannot clear {self.describe()}: {exc}") from exc
        raise StoreError(f"cannot clear {self.describe()}: it kept changing")

    async def _get(self) -> dict | None:
        try:
            return await self._client.get(CONFIGMAPS, self.name, self.namespace)
        except NotFound:
            return None
        except KubeError as exc:
            raise StoreError(f"cannot read {self.describe()}: {exc}") from exc

    def _body(self, data: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(LABELS)},
            "data": data,
        }


def make_store(settings: BaselineSettings, *, kube: ConfigMapClient | None = None) -> BaselineStore:
    """The store the settings ask for; the ConfigMap store needs a Kubernetes client."""
    if settings.store == CONFIGMAP:
        if kube is None:
            raise StoreError("baseline.store is configmap but no Kubernetes client is available")
        return ConfigMapStore(kube, settings.configmap.namespace, settings.configmap.name)
    return FileStore(settings.file)
