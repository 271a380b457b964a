"""``smdown evaluate``: Score ensembles against in-situ data beside SMAP; HTML report."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd() -> None:
        """Score ensembles against in-situ data beside SMAP; HTML report."""
        raise SmdownError("'smdown evaluate' is not available in this version yet")
