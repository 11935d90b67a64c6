"""Which datapath translates Services on each node: ``kube-proxy`` or ``ebpf``.

``decide`` holds the pure rules (signal precedence, the migration phase) on top of
``exporter.cilium`` (``kube-proxy-replacement`` values, CiliumNodeConfig selection,
phase names, shared with the rollback planner); ``tracker`` keeps the
per-node state fed by the agent scraper and the Kubernetes watchers, records switch
times and exports it. Pure package: no kubernetes, grpc or aiohttp.
"""
