"""``smdown bench``: run the benchmarks and write JSON and Markdown tables."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.errors import SmdownError


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_cmd(
        only: list[str] = typer.Option(
            None, "--only", help="Run only these benchmarks (repeatable): grids, insitu, ..."
        ),
        quick: bool = typer.Option(False, "--quick", help="Small sizes, for a smoke run."),
        out: Path = typer.Option(Path("smdown-data/bench"), "--out", help="Output folder."),
    ) -> None:
        """Run the benchmarks (speed as ratios measured in one run); write bench.json and
        bench.md."""
        try:
            from benchmarks import BENCHMARKS
            from benchmarks.report import run_all
        except ImportError as exc:  # installed without the source tree
            raise SmdownError(f"benchmarks need a source checkout: {exc}") from exc
        names = list(only) if only else list(BENCHMARKS)
        unknown = sorted(set(names) - set(BENCHMARKS))
        if unknown:
            raise SmdownError(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
        json_path, md_path = run_all(names, out, quick=quick, log=typer.echo)
        typer.echo(md_path.read_text())
        typer.echo(f"wrote {json_path} and {md_path}")
