"""``smdown train``: Train an ensemble, export members to ONNX, write the manifest."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd() -> None:
        """Train an ensemble, export members to ONNX, write the manifest."""
        raise SmdownError("'smdown train' is not available in this version yet")
