"""``smdown export``: one day of the cube as COG, NetCDF or a quicklook PNG."""

from __future__ import annotations

import datetime as dt

import typer

from pipeline.cli._common import state


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        ctx: typer.Context,
        date: str = typer.Option(..., "--date", "-d", help="Day to export, YYYY-MM-DD."),
        fmt: str = typer.Option(
            ..., "--format", "-f", help="cog (GeoTIFF), netcdf, or png (quicklook map)."
        ),
        out: str = typer.Option(
            None, "--out", "-o", help="Output file (default: <store>_<date>.<ext> here)."
        ),
        store: str = typer.Option(
            None, "--store", help="Cube to read (default: latest.json under output.store)."
        ),
    ) -> None:
        """Export one day of the cube as COG, NetCDF or a quicklook PNG."""
        from pipeline.export import FORMATS, export_day, resolve_store

        try:
            day = dt.date.fromisoformat(date)
        except ValueError as exc:
            raise typer.BadParameter(f"{date!r} is not a date", param_hint="--date") from exc
        if fmt not in FORMATS:
            raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
        settings = state(ctx).settings()
        opts = dict(settings.output.storage_options)
        url = store or resolve_store(settings.output.store, opts)
        path = export_day(url, day, fmt, out, storage_options=opts)
        typer.echo(f"wrote {path}")
