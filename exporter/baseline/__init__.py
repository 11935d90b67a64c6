"""The frozen pre-switch baseline: collected while every node runs kube-proxy, frozen when
the first node switches, persisted so restarts keep it.

Modules:

* ``settings``  - ``BaselineSettings`` (section ``baseline``);
* ``model``     - ``Baseline`` and its JSON document (pure);
* ``keeper``    - ``BaselineKeeper``: collect, freeze once, capture and clear by hand (pure);
* ``store``     - ``BaselineStore`` with ``FileStore`` and ``ConfigMapStore``;
* ``service``   - ``BaselineService``: keeper + store for the running exporter;
* ``collector`` - ``kpr_baseline_*`` gauges;
* ``cli``       - ``cmd_baseline`` for ``kpr-exporter baseline show|capture|clear``.
"""
