"""The judge: worse / not worse / inconclusive, per service and SLI, with its reasons. Pure.

Modules:

* ``settings``  - ``JudgeSettings`` (section ``judge``);
* ``source_settings`` - where the evidence comes from (``judge.source``, ``judge.prometheus``);
* ``evidence``  - ``Evidence`` (the windows judged), the ``EvidenceSource`` role and the
  in-process source (the Prometheus one is ``exporter.judge_prom``);
* ``losses``    - the lost-events gate: per node and window, Hubble's lost share; nodes
  above ``max_lost_share`` leave the window and the verdicts name them;
* ``histogram`` - quantiles (PromQL-style interpolation), Mann-Whitney U and Hodges-Lehmann
  on bucket counts, the tail split;
* ``counts``    - the exact conditional rate test for drops and connect failures;
* ``history``   - compact snapshot history, windows and cohorts;
* ``compare``   - one SLI in one window -> ``WindowVerdict``;
* ``verdict``   - outcomes, names, ``Verdict`` and how two windows combine;
* ``driver``    - ``Judge``: periodic evaluation of every service and comparison;
* ``collector`` - ``kpr_verdict`` and ``kpr_verdict_effect_size``;
* ``api``       - the body of ``GET /api/v1/verdicts``.

No I/O and no transport imports here (an import-linter contract enforces it).
"""
