"""The simulated Cilium cluster: Hubble Relay's Observer API and agent metrics, from scenarios.

``scenarios`` holds the named scenarios as data; ``flows`` turns one into the
flows Hubble would emit (pure, deterministic per seed); ``timeline`` releases
them as scenario time passes; ``encode`` writes Hubble protobuf; ``server``
serves the Observer gRPC API, ``agents`` the agents' ``/metrics``;
``runner.Simulator`` wires them for ``kpr-exporter simulate`` and ``demo``.
``source.SimulatedFlowSource`` is the in-process ``FlowSource``. The settings live in
``exporter.simulator_settings``, so that the settings tree loads no simulator code; the
benchmarks' pre-serialised streams live in ``bench``.

Only ``runner``, ``server`` and ``agents`` do I/O. Nothing here is imported by the
exporter's own modules (an import-linter contract says so).
"""
