"""Fixtures every test folder shares: the fake Kubernetes API (``fake_kube``) and the
product's client on it (``kube``, options from ``kube_options``); see
``tests/fakekube/fixtures.py``."""

from tests.fakekube.fixtures import fake_kube, kube, kube_options  # noqa: F401  (fixtures)
