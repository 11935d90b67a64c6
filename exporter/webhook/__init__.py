"""Alertmanager webhook: strict payload parsing, the pure rollback decision, and the HTTP glue.

Layering: ``payload`` and ``decision`` are pure (no aiohttp, no kubernetes);
``receiver`` is the only module that speaks HTTP and it only glues the parser,
the decision and the rollback runner together.
"""
