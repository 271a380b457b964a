"""Error types of the pipeline: each carries the file or key at fault."""

from __future__ import annotations

from typing import Any


class SmdownError(Exception):
    """Base class of every error the pipeline raises on purpose.

    The CLI prints these as one line and exits non-zero. Instances pickle with their
    type, message and attributes (``path``, ``problem``, ...) whatever the subclass's
    ``__init__`` signature, so an error raised in a Dask task on another process reaches
    the driver as itself.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Dask pickles the cause chain too (tblib), and some library errors do not unpickle
        # (rasterio's CPLE_* errors): a foreign cause travels as its text only.
        for attr in ("__cause__", "__context__"):
            cause = getattr(self, attr)
            if cause is not None and not isinstance(cause, SmdownError | CauseText):
                setattr(self, attr, CauseText(f"{type(cause).__qualname__}: {cause}"))
        return (_rebuild_error, (type(self), self.args, dict(self.__dict__)))


class CauseText(Exception):
    """The text of a library error that caused a ``SmdownError`` (kept when pickling)."""


def _rebuild_error(
    cls: type[SmdownError], args: tuple[Any, ...], state: dict[str, Any]
) -> SmdownError:
    """Unpickle an error without calling its ``__init__`` (subclasses take other arguments)."""
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


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


class StoreWriteError(RunError):
    """A file of a local store could not be written (disk full, read-only); names the file."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")
