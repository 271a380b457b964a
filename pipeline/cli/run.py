"""``smdown run`` and ``smdown backfill``: daily map production."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd() -> None:
        """Make the downscaled map of one day into the Zarr cube."""
        raise SmdownError("'smdown run' is not available in this version yet")

    @app.command("backfill")
    def backfill_cmd() -> None:
        """Make the maps of every day in a range that is not yet final."""
        raise SmdownError("'smdown backfill' is not available in this version yet")
