"""``smdown table``: Build the training table: in-situ days paired with the nine inputs."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("table")
    def table_cmd() -> None:
        """Build the training table: in-situ days paired with the nine inputs."""
        raise SmdownError("'smdown table' is not available in this version yet")
