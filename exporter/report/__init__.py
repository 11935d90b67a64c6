"""``kpr-exporter report``: the migration report from any Prometheus that scraped the exporter.

Layers, each testable alone:

* ``timeparse`` - ``--from`` / ``--to`` values (RFC 3339, ``now``, ``-2h``, Unix seconds);
* ``client``    - Prometheus HTTP API v1 over aiohttp, plain data back, ``PrometheusError``;
* ``queries``   - the PromQL, against raw metrics of the contract (no recording rule needed);
* ``fetch``     - runs the queries: timeline first, then the before/after window totals;
* ``timeline``, ``cohorts``, ``verdicts`` - pure: phases and events, before/after cohorts,
  verdict words with their explanation;
* ``evidence``  - pure: why each verdict came out so, from the judge's own tests re-run on
  the counts in Prometheus (embedded, so the report outlives the exporter);
* ``claims`` (with ``claims_queries``, ``claims_judge``, ``claims_scale``, ``claims_model``)
  - pure: claims vs measured (throughput, latency, CPU, programming) judged with the
  judge's statistics, the Service count against published results (``docs/claims.md``);
* ``assemble``  - pure: raw results -> ``model.Report`` (all of the above, changes, lines);
* ``charts``    - model -> PNG (matplotlib, Agg canvas);
* ``render_html`` (with ``html_verdicts``, ``html_claims``, ``html_parts``) / ``render_md``
  (with ``md_claims``) - model ->
  ``report.html`` (self-contained) / ``summary.md``.

``report_cmd.cmd_report`` ties them together for the CLI: exit 0 on success, 2 on a bad
argument, 1 when Prometheus cannot be queried (or the output cannot be written).
"""
