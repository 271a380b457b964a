"""``smdown export``: days of the cube as COG, NetCDF or a quicklook PNG."""

from __future__ import annotations

import datetime as dt

import typer

from pipeline.cli._common import state


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD", param_hint=option) from exc


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``west,south,east,north`` in degrees (``BadParameter`` naming --bbox otherwise)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r}: expected four numbers west,south,east,north", param_hint="--bbox"
        ) from exc
    if len(values) != 4:
        raise typer.BadParameter(
            f"{text!r} has {len(values)} number(s); expected four: west,south,east,north",
            param_hint="--bbox",
        )
    w, s, e, n = values
    if not (w < e and s < n):
        raise typer.BadParameter(
            f"{text!r}: need west < east and south < north", param_hint="--bbox"
        )
    return w, s, e, n


def export_cmd(
    ctx: typer.Context,
    date: str = typer.Option(
        None, "--date", "-d", metavar="YYYY-MM-DD", help="Day to export (or --start/--end)."
    ),
    start: str = typer.Option(
        None, "--start", metavar="YYYY-MM-DD", help="First day of a range (one file a day)."
    ),
    end: str = typer.Option(
        None, "--end", metavar="YYYY-MM-DD", help="Last day of the range (inclusive)."
    ),
    fmt: str = typer.Option(
        ...,
        "--format",
        "-f",
        metavar="cog|netcdf|png",
        help="cog (GeoTIFF), netcdf, or png (quicklook map).",
    ),
    bbox: str = typer.Option(
        None,
        "--bbox",
        metavar="WEST,SOUTH,EAST,NORTH",
        help="Only the pixels inside this box (degrees), e.g. -97.8,35.2,-97.4,35.6.",
    ),
    out: str = typer.Option(
        None,
        "--out",
        "-o",
        metavar="PATH",
        help="Output file for --date (default: <store>_<date>.<ext> here); "
        "output folder for a range (default: here).",
    ),
    store: str = typer.Option(
        None,
        "--store",
        metavar="ZARR",
        help="Cube to read (default: latest.json under output.store).",
    ),
) -> None:
    """Export days of the cube as COG, NetCDF or a quicklook PNG."""
    from pipeline.export import FORMATS, export_day, export_range, resolve_store

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    if (date is None) == (start is None and end is None):
        raise typer.BadParameter("give --date, or --start and --end", param_hint="--date")
    box = parse_bbox(bbox) if bbox is not None else None
    settings = state(ctx).settings()
    opts = dict(settings.output.storage_options)
    if date is not None:
        day = _date(date, "--date")
        url = store or resolve_store(settings.output.store, opts)
        path = export_day(url, day, fmt, out, storage_options=opts, bbox=box)
        typer.echo(f"wrote {path}")
        return
    if start is None or end is None:
        raise typer.BadParameter("a range needs both --start and --end", param_hint="--start")
    first, last = _date(start, "--start"), _date(end, "--end")
    if last < first:
        raise typer.BadParameter(f"{end} is before --start {start}", param_hint="--end")
    url = store or resolve_store(settings.output.store, opts)
    written, skipped = export_range(
        url, first, last, fmt, out, storage_options=opts, bbox=box, log=typer.echo
    )
    note = f"; not published (skipped): {', '.join(map(str, skipped))}" if skipped else ""
    typer.echo(f"{len(written)} day(s) of {first}..{last} written{note}")


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
