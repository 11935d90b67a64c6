"""The checks of the settings tree that only the machine can answer.

Starting the exporter reads these files and builds these clients; a problem here
would stop ``run`` after it had started. ``config.load(startup=True)`` runs them
for ``run`` and ``check-config`` alike, so both refuse the same configurations:

* every file a setting names that is read at start (webhook token, TLS
  certificates and keys, kubeconfig) is a readable file; the token is not empty;
* TLS certificates, keys and CA bundles load as PEM;
* Kubernetes access is usable when asked for (``kube.enabled=true``, an explicit
  kubeconfig) or needed (``rollback.mode=enforce``).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exporter.config import Settings

#: Settings naming a file that is read when the exporter starts: key -> flag.
READ_AT_START = {
    "webhook.token_file": "--webhook.token-file",
    "webhook.tls.cert_file": "--webhook.tls.cert-file",
    "webhook.tls.key_file": "--webhook.tls.key-file",
    "webhook.tls.client_ca_file": "--webhook.tls.client-ca-file",
    "hubble.tls.ca_file": "--hubble.tls.ca-file",
    "hubble.tls.cert_file": "--hubble.tls.cert-file",
    "hubble.tls.key_file": "--hubble.tls.key-file",
    "kube.kubeconfig": "--kube.kubeconfig",
    "judge.prometheus.bearer_token_file": "--judge.prometheus.bearer-token-file",
    "judge.prometheus.basic_auth.password_file": "--judge.prometheus.basic-auth.password-file",
    "judge.prometheus.tls.ca_file": "--judge.prometheus.tls.ca-file",
}


def startup_problems(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """Every reason the exporter could not start with ``settings`` on this machine."""
    found: list[str] = []
    unreadable: set[str] = set()
    for key, flag in READ_AT_START.items():
        path = _get(settings, key)
        why = _unreadable(path) if path else None
        if why:
            unreadable.add(key)
            found.append(f"{key} {path!r} ({flag}): {why}")
    token = settings.webhook.token_file
    if token and "webhook.token_file" not in unreadable and not _read(token).strip():
        found.append(f"webhook.token_file {token!r} (--webhook.token-file) is empty")
    for prefix, (cert, key, ca) in {
        "webhook.tls": ("cert_file", "key_file", "client_ca_file"),
        "hubble.tls": ("cert_file", "key_file", "ca_file"),
    }.items():
        if any(f"{prefix}.{name}" in unreadable for name in (cert, key, ca)):
            continue
        tls = _get(settings, prefix)
        found.extend(_tls_problems(prefix, getattr(tls, cert), getattr(tls, key), getattr(tls, ca)))
    if "kube.kubeconfig" not in unreadable:
        found.extend(_kube_problems(settings, env))
    return found


def _get(settings: Any, key: str) -> Any:
    node = settings
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _unreadable(path: str) -> str | None:
    if not os.path.exists(path):
        return "no such file"
    if not os.path.isfile(path):
        return "not a regular file"
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _tls_problems(prefix: str, cert: str, key: str, ca: str) -> list[str]:
    found = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cert and key:
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError, ValueError) as exc:
            found.append(f"{prefix}: cert_file {cert!r} and key_file {key!r} do not load as a "
                         f"PEM certificate and its key ({exc})")
    if ca:
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError, ValueError) as exc:
            found.append(f"{prefix}: {ca!r} does not load as a PEM CA bundle ({exc})")
    return found


def _kube_problems(settings: Settings, env: Mapping[str, str]) -> list[str]:
    kube = settings.kube
    enforce = settings.rollback.mode == "enforce"
    if kube.enabled == "false" or not (kube.enabled == "true" or kube.kubeconfig or enforce):
        return []
    from exporter.kube.client import load_api_client
    from exporter.kube.errors import KubeError

    try:
        api = load_api_client(kube.kubeconfig, kube.context, environ=env, pool_size=1)
    except KubeError as exc:
        need = "rollback.mode enforce needs Kubernetes access" if enforce else \
            "kube.enabled asks for Kubernetes access"
        return [f"{need}: {exc}"]
    api.close()  # type: ignore[no-untyped-call]  # the kubernetes client is untyped
    return []
