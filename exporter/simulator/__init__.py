"""The simulated Cilium cluster: Hubble Relay's Observer API and agent metrics, from scenarios.

``scenarios`` holds the named scenarios as data, ``flows`` turns one into the
flows Hubble would emit (pure, deterministic), ``encode`` writes them as Hubble
protobuf, ``timeline`` releases them as scenario time passes, ``server`` and
``agents`` serve them over gRPC and HTTP, and ``runner.Simulator`` wires it all.
"""
