"""The emulated datapath behind a simulator story: the demo's one mapping from the story's
profiles to the emulator's numbers.

The demo's probes run on an emulated loopback datapath (``exporter.verify.emulator``) next
to the simulated cluster. What each datapath costs there comes from the story's profiles
(``exporter.simulator.profiles``), so the probes measure what the simulated agents report
and the claims table is checked against one set of numbers:

* ``programming_seconds``: each profile's programming median (a new echo endpoint is served
  that long after it was added);
* ``throughput_bytes_per_second``: each profile's ``stream_bytes_per_s`` (each proxied
  connection is forwarded at most that fast);
* ``connect_seconds``: each profile's handshake median and 99th percentile (the cost each
  handshake through the datapath pays).

A named emulated scenario or one from a file keeps its nodes and faults, and whichever of
these numbers it states; the story fills the rest. Without one, the story's own nodes run
a healthy emulated datapath.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from exporter.model import EBPF, KUBE_PROXY
from exporter.simulator.scenarios import Scenario as Story
from exporter.verify.emulator import scenario as emulator


def datapath_numbers(story: Story) -> dict[str, Any]:
    """The emulator's per-datapath numbers from the story's two profiles."""
    profiles = {KUBE_PROXY: story.kube_proxy, EBPF: story.ebpf}
    return {
        "programming_seconds": {dp: p.programming.median_s for dp, p in profiles.items()},
        "throughput_bytes_per_second": {dp: p.stream_bytes_per_s for dp, p in profiles.items()},
        "connect_seconds": {dp: (p.connect.median_s, p.connect.p99_s)
                            for dp, p in profiles.items()},
    }


def story_nodes(story: Story) -> emulator.Scenario:
    """A healthy emulated datapath on the story's nodes, each on its datapath at the start."""
    return emulator.load({
        "name": story.name,
        "nodes": [{"name": name, "datapath": story.datapath_at(name, 0.0)}
                  for name in story.cluster.node_names],
    })


def for_story(story: Story, base: emulator.Scenario | None = None) -> emulator.Scenario:
    """``base`` (or the story's nodes, healthy) with the story's per-datapath numbers
    wherever ``base`` states none."""
    scenario = base if base is not None else story_nodes(story)
    numbers = datapath_numbers(story)
    return replace(
        scenario,
        programming_seconds={**numbers["programming_seconds"], **scenario.programming_seconds},
        throughput_bytes_per_second={**numbers["throughput_bytes_per_second"],
                                     **scenario.throughput_bytes_per_second},
        connect_seconds={**numbers["connect_seconds"], **scenario.connect_seconds})
