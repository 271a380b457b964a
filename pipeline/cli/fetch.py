"""``smdown fetch``: Download a product into the provider layout under the sources root."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    def fetch_cmd() -> None:
        """Download a product into the provider layout under the sources root."""
        raise SmdownError("'smdown fetch' is not available in this version yet")
