"""Where the Kubernetes connection comes from: an explicit kubeconfig, the in-cluster
service account, or ``$KUBECONFIG`` / ``~/.kube/config``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from exporter.kube.errors import KubeConfigError

SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def load_api_client(kubeconfig: str = "", context: str = "", *,
                    environ: Mapping[str, str] | None = None,
                    pool_size: int = 32) -> k8s_client.ApiClient:
    """Build an ``ApiClient``: the explicit ``kubeconfig`` if given, else the in-cluster
    service account when running in a pod, else ``$KUBECONFIG`` or ``~/.kube/config``."""
    env = os.environ if environ is None else environ
    configuration = k8s_client.Configuration()
    try:
        if kubeconfig:
            source = kubeconfig
            k8s_config.load_kube_config(config_file=kubeconfig, context=context or None,
                                        client_configuration=configuration)
        elif env.get("KUBERNETES_SERVICE_HOST") and SERVICE_ACCOUNT_TOKEN.exists():
            source = "in-cluster service account"
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            source = env.get("KUBECONFIG") or str(Path(env.get("HOME", "~")) / ".kube" / "config")
            k8s_config.load_kube_config(config_file=os.path.expanduser(source),
                                        context=context or None,
                                        client_configuration=configuration)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise KubeConfigError(f"no usable Kubernetes configuration ({source}): {exc}") from exc
    # Every open watch holds a connection; keep them pooled instead of discarded.
    configuration.connection_pool_maxsize = pool_size
    return k8s_client.ApiClient(configuration)
