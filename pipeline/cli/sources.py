"""``smdown sources``: Check which covariate files serve a date (sources check)."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("sources")
    def sources_cmd() -> None:
        """Check which covariate files serve a date (sources check)."""
        raise SmdownError("'smdown sources' is not available in this version yet")
