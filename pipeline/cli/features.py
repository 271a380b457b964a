"""``smdown features``: Feature screening and leave-one-variable-out importance report."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("features")
    def features_cmd() -> None:
        """Feature screening and leave-one-variable-out importance report."""
        raise SmdownError("'smdown features' is not available in this version yet")
