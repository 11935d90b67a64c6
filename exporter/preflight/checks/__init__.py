"""Preflight checks: one pure function each, ``check(facts, settings) -> Row``."""
