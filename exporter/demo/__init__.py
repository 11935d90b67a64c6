"""``kpr-exporter demo``: the simulator and the exporter on loopback, with a live summary.

Only the demo command imports this package (lazily); ``kpr-exporter run`` never loads it,
and an import-linter contract keeps the exporter's own modules from importing it.

``session.Demo`` runs the demo on an injected clock and sleep; ``summary`` writes what it
prints every interval, ``text`` its words, ``defaults`` the settings it uses where they differ
from the tree's, ``alert`` the stand-in for Prometheus and Alertmanager. ``localstack``
starts the real Prometheus and Alertmanager binaries (``--with-prometheus``), from the
pieces in ``processes``, ``servers``, ``prometheus`` and ``alertmanager``.
``verification`` runs the emulated datapath and its probes; ``migration`` (with
``migration_cluster``) plays the guided-migration stories: the migration controller on the
simulated Kubernetes API of ``exporter.simulator.kubeapi``.
"""
