"""``smdown point``: the cube's time series at points, with SMAP and flags beside."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from pipeline.cli._common import state


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD", param_hint=option) from exc


def point_cmd(
    ctx: typer.Context,
    lat: float = typer.Option(None, "--lat", metavar="DEGREES", help="Latitude (north)."),
    lon: float = typer.Option(None, "--lon", metavar="DEGREES", help="Longitude (east)."),
    name: str = typer.Option("", "--name", metavar="NAME", help="Name of the point."),
    points: Path = typer.Option(
        None, "--points", metavar="CSV", help="CSV file of points with header name,lat,lon."
    ),
    start: str = typer.Option(..., "--start", metavar="YYYY-MM-DD", help="First day."),
    end: str = typer.Option(..., "--end", metavar="YYYY-MM-DD", help="Last day (inclusive)."),
    out: Path = typer.Option(
        ..., "--out", "-o", metavar="FILE", help="Output table: .csv or .parquet."
    ),
    store: str = typer.Option(
        None,
        "--store",
        metavar="ZARR",
        help="Cube to read (default: latest.json under output.store).",
    ),
    smap: bool = typer.Option(
        True, "--smap/--no-smap", help="Read SMAP beside from [sources] (default on)."
    ),
) -> None:
    """Write the cube's daily series at a point (or at every point of a CSV file).

    One row per published day and point: soil moisture, its sd and member spread, the
    day's status, SMAP at the pixel and the quality flags decoded. Only the chunks
    holding the points are read.
    """
    from pipeline.export import resolve_store
    from pipeline.point import Point, check_latlon, check_out, read_points, series, write_series

    first, last = _date(start, "--start"), _date(end, "--end")
    if last < first:
        raise typer.BadParameter(f"{end} is before --start {start}", param_hint="--end")
    if points is not None and (lat is not None or lon is not None):
        raise typer.BadParameter("give either --points or --lat/--lon", param_hint="--points")
    if points is None and (lat is None or lon is None):
        raise typer.BadParameter(
            "give --lat and --lon (or --points FILE.csv)", param_hint="--lat/--lon"
        )
    check_out(out)  # before reading anything
    if points is not None:
        pts = read_points(points)
    else:
        check_latlon(lat, lon, "--lat/--lon")
        pts = [Point(name, lat, lon)]
    settings = state(ctx).settings()
    opts = dict(settings.output.storage_options)
    url = store or resolve_store(settings.output.store, opts)
    smap_at = None
    if smap:
        from pipeline.point import smap_sampler
        from pipeline.sources.catalog import Catalog

        smap_at = smap_sampler(Catalog.from_settings(settings.sources))
    frame = series(url, pts, first, last, storage_options=opts, smap_at=smap_at)
    path = write_series(frame, out)
    days = frame["date"].nunique() if len(frame) else 0
    typer.echo(f"wrote {path}: {len(pts)} point(s), {days} published day(s) of {url}")


def register(app: typer.Typer) -> None:
    app.command("point")(point_cmd)
