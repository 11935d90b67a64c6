"""The judge over Prometheus: the evidence source that reads the exporters' series there.

In node mode every exporter sees one node; only Prometheus (or Thanos, Mimir) sees them all.
``PrometheusEvidence`` queries the same bucket and counter increases the in-process judge
takes from its snapshots, summed over every exporter instance per service and datapath,
for the short and the long window at the evaluation time, and hands the judge an
``exporter.judge.evidence.Evidence``. The statistics stay in ``exporter.judge``.

Modules:

* ``queries``  - the PromQL (window increases reuse ``exporter.report.queries``; health);
* ``assemble`` - query results -> windows, per-service partial data, the health verdict (pure);
* ``source``   - ``PrometheusEvidence``: the HTTP client side (auth, TLS, timeout, errors).

Each window's per-node Hubble events (flows, the stream's and the agent's lost events, by
exporter) feed the lost-events gate: a lossy exporter's series are queried again without
it. ``window_at`` reads one window the same way for the baseline (node mode).

Unreachable, slow, refusing or warning Prometheus, and series missing for a service's
datapath, are inconclusive verdicts with the reason, never a pass.
"""

from exporter.judge_prom.source import PrometheusEvidence

__all__ = ["PrometheusEvidence"]
