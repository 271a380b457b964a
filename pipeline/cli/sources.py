"""``smdown sources``: which covariate files serve a date (check) or a date range (availability)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import numpy as np
import typer

from models.variables import daily_names
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


DAILY = daily_names()


def _fallback_text(var: str, status: str, levels: list | None, base: Path) -> str:
    """Which fallback level serves a daily input whose own file is absent ("-": none needed)."""
    if levels is None or status != "missing":
        return "-"
    if not levels:
        return "none"
    label, prov = levels[0]
    file = _short(prov.files[0], base) if prov.files else "?"
    what = {"composite": f"{prov.product} composite"}.get(label, label)
    if var == "smap":
        what = f"SMAP {label.replace('age ', '')} day(s) old"
    return f"{what}: {file}"


def _pixel_lines(cat: object, mode: str, date: dt.date, settings: object, rules: object) -> list:
    """Pixels per fallback level and still missing, per daily input, over [grid] region."""
    from grids import Grid
    from pipeline.errors import SourceError
    from pipeline.run.fallback import serve_daily

    region = getattr(getattr(settings, "grid", None), "region", None)
    if region is None:
        return ["pixels: [grid] region is the whole grid; give a region to count pixels"]
    west, south, east, north = region
    step = 0.01
    shape = (max(1, round((north - south) / step)), max(1, round((east - west) / step)))
    target = Grid("EPSG:4326", (step, 0.0, west, 0.0, -step, north), shape)
    srcs = cat.sources(mode)  # type: ignore[attr-defined]
    comp = cat.sources("training") if mode == "maps" else {}  # type: ignore[attr-defined]
    need = np.ones(shape, dtype=bool)
    n = int(need.sum())
    lines = [f"pixels of a {shape[0]} x {shape[1]} check grid (0.01 degree) over {list(region)}:"]
    for var in DAILY:
        try:
            got = serve_daily(var, srcs, comp, date, region, target, rules, need)  # type: ignore[arg-type]
        except SourceError as exc:
            lines.append(f"  {var}: cannot be read: {exc}")
            continue
        levels = ", ".join(f"{u.label} {u.n_pixels}" for u in got.levels) or "no file"
        missing = int((~np.isfinite(got.values)).sum())
        lines.append(f"  {var}: {levels}; missing {missing} of {n}")
    return lines


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
        mode: str = typer.Option(
            "maps", "--mode", help="maps (what 'smdown run' uses) or training."
        ),
        fail_on_missing: bool = typer.Option(
            False, "--fail-on-missing", help="Exit 1 when an input is missing."
        ),
        pixels: bool = typer.Option(
            False,
            "--pixels",
            help="Also read the inputs over [grid] region (on a 0.01 degree check grid) and "
            "count the pixels each fallback level serves and those still missing.",
        ),
    ) -> None:
        """Per variable: the file chosen, its product, age, days padded, status, and the
        fallback level that serves a daily input when its own file is absent."""
        from rich.table import Table

        from pipeline.sources.catalog import MODES, Catalog

        if mode not in MODES:
            raise typer.BadParameter(f"must be one of {', '.join(MODES)}", param_hint="--mode")
        cfg = state(ctx).settings().sources
        cat = Catalog.from_settings(cfg, root=root)
        base = Path(root if root is not None else cfg.root)
        from pipeline.run.fallback import FallbackRules, chain_files

        settings = state(ctx).settings()
        rules = FallbackRules.from_sources(cfg)
        rows = cat.check(date.date(), mode)  # type: ignore[arg-type]
        srcs = cat.sources(mode)  # type: ignore[arg-type]
        comp = cat.sources("training") if mode == "maps" else {}
        chains = {
            r.variable: chain_files(r.variable, srcs, comp, date.date(), rules)
            for r in rows
            if r.variable in DAILY
        }
        table = Table(title=f"sources for {date.date()} ({mode}, family {cat.family}) under {base}")
        # The fallback column only when an input's own file is absent (a chain serves it).
        falls = any(r.status == "missing" and r.variable in chains for r in rows)
        for col in (
            *("variable", "file", "product", "age (d)", "padded (d)", "status"),
            *(("fallback",) if falls else ()),
            "note",
        ):
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
                *((_fallback_text(r.variable, r.status, chains.get(r.variable), base),) * falls),
                r.note,
            )
        console = _console()
        console.print(table)  # type: ignore[attr-defined]
        missing = [r.variable for r in rows if r.status == "missing" and not chains.get(r.variable)]
        typer.echo(f"missing: {', '.join(missing) if missing else 'none'}")
        if pixels:
            for line in _pixel_lines(cat, mode, date.date(), settings, rules):
                typer.echo(line)
        if missing and fail_on_missing:
            raise typer.Exit(1)

    @sources_app.command("availability")
    def availability_cmd(
        ctx: typer.Context,
        start: dt.datetime = typer.Option(..., "--start", formats=DATE_FORMATS, help="First day."),
        end: dt.datetime = typer.Option(..., "--end", formats=DATE_FORMATS, help="Last day."),
        root: Path | None = typer.Option(None, "--root", help="Sources root (default: config)."),
        mode: str = typer.Option(
            "maps", "--mode", help="maps (what 'smdown run' uses) or training."
        ),
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
