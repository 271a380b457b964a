"""``smdown grid``: Inspect named grids (grid info NAME)."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("grid")
    def grid_cmd() -> None:
        """Inspect named grids (grid info NAME)."""
        raise SmdownError("'smdown grid' is not available in this version yet")
