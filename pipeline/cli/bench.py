"""``smdown bench``: run the benchmarks and write JSON and Markdown tables."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.errors import SmdownError


def _known() -> tuple[str, ...]:
    try:
        from benchmarks import BENCHMARKS
    except ImportError:  # installed without the source tree
        return ()
    return tuple(BENCHMARKS)


def register(app: typer.Typer) -> None:
    known = _known()

    @app.command("bench")
    def bench_cmd(
        only: list[str] = typer.Option(
            None,
            "--only",
            metavar="|".join(known) or "NAME",
            help=f"Run only this benchmark (repeatable): one of {', '.join(known)}."
            if known
            else "Run only this benchmark (repeatable; needs a source checkout).",
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
            raise SmdownError(
                f"--only: unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}"
            )
        json_path, md_path = run_all(names, out, quick=quick, log=typer.echo)
        typer.echo(md_path.read_text())
        typer.echo(f"wrote {json_path} and {md_path}")
