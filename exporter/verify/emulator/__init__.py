"""An emulated Service datapath on loopback, per node, that scenarios can break on purpose.

``scenario`` is the data (pure): nodes, their datapath, the faults of each datapath, and
the behaviour those imply. ``cluster.EmulatedCluster`` runs it: echo backends, and per node
a small userspace load-balancer (``node``) built from asyncio TCP proxies (``proxy``).
"""
