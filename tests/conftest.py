"""Fixtures every test folder shares: the fake Kubernetes API (``fake_kube``) and the
product's client on it (``kube``, options from ``kube_options``); see
``tests/fakekube/fixtures.py``. Every test's named emulated scenarios (the demo's stories)
run on its worker's own network (``tests/emulated_networks.py``)."""

import pytest

from exporter.verify.emulator import scenario as emulated_scenario
from tests.emulated_networks import named_network
from tests.fakekube.fixtures import fake_kube, kube, kube_options  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _own_emulated_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulated_scenario, "DEFAULT_NETWORK", named_network())
