"""Fixtures of the SLI engine tests: example flows, an injected clock, a pipeline factory."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import model
from exporter.sli import Pipeline, SliSettings, StaticDatapathResolver
from tests.sli.flowjson import load_examples

#: The reference examples' nodes: the kube-proxy client runs on node-a, the KPR client on node-b.
NODES = {"node-a": model.KUBE_PROXY, "node-b": model.EBPF}
START = 1_764_000_000.0


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def examples() -> dict[str, model.Flow]:
    return load_examples()


@pytest.fixture
def make(clock):
    """``make(**settings) -> (pipeline, registry)``; ``datapaths=``/``directory=`` pass through."""

    def build(*, datapaths=None, directory=None, **overrides):
        registry = CollectorRegistry()
        pipeline = Pipeline(
            SliSettings(**overrides), registry,
            datapaths=StaticDatapathResolver(NODES if datapaths is None else datapaths),
            directory=directory, clock=clock,
        )
        return pipeline, registry

    return build


def replace(flow: model.Flow, **changes) -> model.Flow:
    return dataclasses.replace(flow, **changes)


def samples_of(text: str, names: set[str] | None = None) -> set:
    """The (name, labels, value) samples of an exposition, of families in ``names`` if given."""
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for fam in text_string_to_metric_families(text)
        if names is None or fam.name in names
        for s in fam.samples
    }


def assert_exposition(registry: CollectorRegistry, expected: str) -> None:
    """The registry's samples of the families named in ``expected`` are exactly those."""
    wanted = samples_of(expected)
    names = {fam.name for fam in text_string_to_metric_families(expected)}
    got = samples_of(generate_latest(registry).decode(), names)
    assert got == wanted, (
        f"missing: {sorted(wanted - got)}\nunexpected: {sorted(got - wanted)}"
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)
