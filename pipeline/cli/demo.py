"""``smdown demo``: Run the whole chain on a generated demo world on a local Dask cluster."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd() -> None:
        """Run the whole chain on a generated demo world on a local Dask cluster."""
        raise SmdownError("'smdown demo' is not available in this version yet")
