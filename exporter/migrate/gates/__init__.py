"""The migration's gates: what decides whether a batch goes ahead.

Modules: ``base`` (the vocabulary and ``decide``; pure), one module per gate (``verify``,
``judge``, ``alerts``), and ``registry`` (one line per gate, ``build_gates``).
"""
