"""``smdown bench``: Run the benchmarks and write JSON and Markdown tables."""

from __future__ import annotations

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_cmd() -> None:
        """Run the benchmarks and write JSON and Markdown tables."""
        raise SmdownError("'smdown bench' is not available in this version yet")
