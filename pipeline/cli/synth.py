"""``smdown synth``: a synthetic world in the real formats, with a known 90 m truth."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("synth")
    def synth_cmd() -> None:
        """Write a synthetic world in the real products' formats, with a known 90 m truth."""
        raise SmdownError("'smdown synth' is not available in this version yet")
