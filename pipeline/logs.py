"""Logging set-up shared by every command: rich on a terminal, plain lines elsewhere."""

from __future__ import annotations

import logging
import sys

LOGGER_NAMES = ("pipeline", "models", "grids")


def configure_logging(verbosity: int = 0) -> None:
    """Set the level of our loggers: -1 quiet (warnings), 0 info, 1+ debug."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    for name in LOGGER_NAMES:
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level)
        log.propagate = False
    if verbosity < 1:
        for noisy in ("distributed", "tensorflow", "absl", "h5py", "rasterio", "fsspec"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
