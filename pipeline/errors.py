"""Error types of the pipeline: each carries the file or key at fault."""

from __future__ import annotations


class SmdownError(Exception):
    """Base class of every error the pipeline raises on purpose.

    The CLI prints these as one line and exits non-zero.
    """


class ConfigError(SmdownError):
    """The configuration file or an environment override is invalid."""


class SourceError(SmdownError):
    """A covariate file is missing, corrupt, or inconsistent."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class InsituError(SmdownError):
    """An in-situ (ISMN or AmeriFlux) file cannot be read."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class TableError(SmdownError):
    """The training table cannot be built or read."""


class RunError(SmdownError):
    """Daily map production failed or was refused by a guard."""


class PublishGuardError(RunError):
    """A write was refused before anything was written (structure, retraction, overwrite)."""
