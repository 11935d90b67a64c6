"""The SLI engine's own errors."""

from __future__ import annotations


class SliError(Exception):
    """Base of the SLI engine's errors."""


class SliConfigError(SliError):
    """The SLI settings are invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class UnknownHandlerError(SliConfigError):
    """A handler name that is not in the registry (the message lists the known ones)."""
