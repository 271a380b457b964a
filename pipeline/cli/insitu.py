"""``smdown insitu``: Read ISMN and AmeriFlux data, apply quality control, write daily series."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("insitu")
    def insitu_cmd() -> None:
        """Read ISMN and AmeriFlux data, apply quality control, write daily series."""
        raise SmdownError("'smdown insitu' is not available in this version yet")
