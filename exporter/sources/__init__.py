"""Data sources: the edges where Hubble (gRPC) and Cilium agents (HTTP) enter.

Everything here converts a wire format into ``exporter.model`` types and
wraps transport failures in ``exporter.sources.errors``. Generated protobuf
code is imported only inside this package (and by the simulator). The shapes
consumers rely on are the ``FlowSource`` Protocol in ``exporter.roles``.
"""
