"""``smdown sources``: which covariate files serve a date (check) or a date range (availability)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import typer

from pipeline.cli._common import state

DATE_FORMATS = ["%Y-%m-%d"]
SYMBOL = {"ok": "ok", "padded": "pad", "missing": "--"}


def _console() -> object:
    from rich.console import Console

    width = None if sys.stdout.isatty() else 160
    return Console(width=width, highlight=False)


def _short(path: str, root: Path) -> str:
    try:
        return os.path.relpath(path, root) if Path(path).is_relative_to(root) else path
    except ValueError:
        return path


def register(app: typer.Typer) -> None:
    sources_app = typer.Typer(
        name="sources",
        help="Check which covariate files serve a date (sources check, sources availability).",
        no_args_is_help=True,
    )

    @sources_app.command("check")
    def check_cmd(
        ctx: typer.Context,
        date: dt.datetime = typer.Option(..., "--date", formats=DATE_FORMATS, help="The day."),
        root: Path | None = typer.Option(None, "--root", help="Sources root (default: config)."),
        mode: str = typer.Option("training", "--mode", help="training or maps."),
        fail_on_missing: bool = typer.Option(
            False, "--fail-on-missing", help="Exit 1 when an input is missing."
        ),
    ) -> None:
        """Per variable: the file chosen, its product, age, days padded and status."""
        from rich.table import Table

        from pipeline.sources.catalog import MODES, Catalog

        if mode not in MODES:
            raise typer.BadParameter(f"must be one of {', '.join(MODES)}", param_hint="--mode")
        cfg = state(ctx).settings().sources
        cat = Catalog.from_settings(cfg, root=root)
        base = Path(root if root is not None else cfg.root)
        rows = cat.check(date.date(), mode)  # type: ignore[arg-type]
        table = Table(title=f"sources for {date.date()} ({mode}, family {cat.family}) under {base}")
        for col in ("variable", "file", "product", "age (d)", "padded (d)", "status", "note"):
            table.add_column(col)
        for r in rows:
            file = _short(r.files[0], base) if r.files else "-"
            if len(r.files) > 1:
                file += f" (+{len(r.files) - 1})"
            table.add_row(
                r.variable,
                file,
                r.product,
                "-" if r.age_days is None else str(r.age_days),
                "-" if r.days_stale is None else str(r.days_stale),
                r.status,
                r.note,
            )
        console = _console()
        console.print(table)  # type: ignore[attr-defined]
        missing = [r.variable for r in rows if r.status == "missing"]
        typer.echo(f"missing: {', '.join(missing) if missing else 'none'}")
        if missing and fail_on_missing:
            raise typer.Exit(1)

    @sources_app.command("availability")
    def availability_cmd(
        ctx: typer.Context,
        start: dt.datetime = typer.Option(..., "--start", formats=DATE_FORMATS, help="First day."),
        end: dt.datetime = typer.Option(..., "--end", formats=DATE_FORMATS, help="Last day."),
        root: Path | None = typer.Option(None, "--root", help="Sources root (default: config)."),
        mode: str = typer.Option("training", "--mode", help="training or maps."),
        csv: Path | None = typer.Option(None, "--csv", help="Also write the matrix as CSV."),
    ) -> None:
        """The date x variable matrix: ok, pad (padded composite) or -- (missing)."""
        from rich.table import Table

        from pipeline.sources.catalog import MODES, Catalog

        if mode not in MODES:
            raise typer.BadParameter(f"must be one of {', '.join(MODES)}", param_hint="--mode")
        if end < start:
            raise typer.BadParameter("is before --start", param_hint="--end")
        cfg = state(ctx).settings().sources
        frame = Catalog.from_settings(cfg, root=root).availability(
            start.date(),
            end.date(),
            mode,  # type: ignore[arg-type]
        )
        table = Table(title=f"availability {start.date()}..{end.date()} ({mode})")
        table.add_column("date")
        for col in frame.columns:
            table.add_column(str(col))
        for day, row in frame.iterrows():
            table.add_row(f"{day:%Y-%m-%d}", *(SYMBOL[v] for v in row))
        _console().print(table)  # type: ignore[attr-defined]
        complete = int((frame != "missing").all(axis=1).sum())
        typer.echo(f"{complete} of {len(frame)} day(s) have every input")
        if csv is not None:
            frame.to_csv(csv)

    app.add_typer(sources_app, name="sources")
