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


#: The tests that take seconds each (stories on injected clocks, promtool, crash/resume
#: matrices). Run first, they overlap with the many short tests on the other workers
#: instead of ending the run alone on one.
LONG_FIRST = ("tests/test_demo.py", "tests/demo/", "tests/e2e/", "tests/alerts/test_rules.py",
              "tests/migrate/test_abort.py", "tests/migrate/gates/test_verify.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.replace("\\", "/")
        return next((i for i, prefix in enumerate(LONG_FIRST) if path.startswith(prefix)),
                    len(LONG_FIRST))
    items.sort(key=rank)  # stable: the order within each file stays
