"""Generated protobuf and gRPC modules for Hubble's Observer API.

Do not edit: change ``exporter/protos/hubble/**.proto`` and run
``python -m exporter.protos.generate``. Only ``exporter.sources`` and
``exporter.simulator`` should import these modules.
"""
