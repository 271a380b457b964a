"""``smdown fetch``: download a product into the provider layout under the sources root."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from pipeline.cli._common import state

DATE_FORMATS = ["%Y-%m-%d"]


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    def fetch_cmd(
        ctx: typer.Context,
        product: str = typer.Option(
            ...,
            "--product",
            "-p",
            help="SPL3SMP_E, MOD11A2, MOD21A1D, MOD13A1, MOD13Q1, MOD16A2, MCD12Q1, CHIRPS, "
            "SoilGrids, MERIT or Koeppen.",
        ),
        start: dt.datetime | None = typer.Option(
            None,
            "--start",
            formats=DATE_FORMATS,
            metavar="YYYY-MM-DD",
            help="First day (daily and composite products).",
        ),
        end: dt.datetime | None = typer.Option(
            None, "--end", formats=DATE_FORMATS, metavar="YYYY-MM-DD", help="Last day."
        ),
        root: Path | None = typer.Option(None, "--root", help="Sources root (default: config)."),
        base_url: str | None = typer.Option(
            None, "--base-url", help="Provider address to use instead (a mirror)."
        ),
        tiles: list[str] | None = typer.Option(
            None, "--tile", help="MODIS tile hHHvVV (repeatable; default: [sources] modis_tiles)."
        ),
    ) -> None:
        """Download a product into the provider layout under the sources root.

        NASA products need an Earthdata Login token in $EARTHDATA_TOKEN. Files
        already present are skipped; a failed download leaves nothing behind.
        """
        from pipeline.sources.fetch import MANUAL, PRODUCTS, ManualDownloadRequired, fetch

        if product not in PRODUCTS:
            raise typer.BadParameter(
                f"must be one of {', '.join(PRODUCTS)}", param_hint="--product"
            )
        if product in MANUAL:  # static products: no dates, the manual steps are printed
            start = end = start or end or dt.datetime(2000, 1, 1)
        if start is None or end is None:
            missing = "--start" if start is None else "--end"
            raise typer.BadParameter(
                f"{product} is fetched by date: give --start and --end YYYY-MM-DD "
                f"({', '.join(MANUAL)} need no dates)",
                param_hint=missing,
            )
        if end < start:
            raise typer.BadParameter("is before --start", param_hint="--end")
        cfg = state(ctx).settings().sources
        target = root if root is not None else Path(cfg.root)
        try:
            paths = fetch(
                product,
                start.date(),
                end.date(),
                target,
                base_url=base_url,
                tiles=tiles or cfg.modis_tiles,
            )
        except ManualDownloadRequired as exc:
            typer.echo(exc.problem)
            raise typer.Exit(1) from exc
        for p in paths:
            typer.echo(str(p))
        typer.echo(f"{len(paths)} file(s) of {product} under {target}")
