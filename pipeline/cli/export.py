"""``smdown export``: Export one day of the cube as COG, NetCDF or a quicklook PNG."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd() -> None:
        """Export one day of the cube as COG, NetCDF or a quicklook PNG."""
        raise SmdownError("'smdown export' is not available in this version yet")
