"""The simulated Cilium cluster: Hubble Relay's Observer API and agent metrics, from scenarios.

``scenarios`` holds the named scenarios as data; ``flows`` turns one into the
flows Hubble would emit (pure, deterministic per seed); ``timeline`` releases
them as scenario time passes; ``encode`` writes Hubble protobuf; ``server``
serves the Observer gRPC API, ``agents`` the agents' ``/metrics``;
``runner.Simulator`` wires them for ``kpr-exporter simulate`` and ``demo``.
``source.SimulatedFlowSource`` is the in-process ``FlowSource`` and ``fastpath``
a bare HTTP/2 streamer of pre-serialised messages for benchmarks.

Only ``runner``, ``server``, ``agents`` and ``fastpath`` do I/O; nothing here is
imported by the exporter's own pipeline.
"""
