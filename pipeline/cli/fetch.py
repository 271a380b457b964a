"""``smdown fetch``: download a product into the provider layout under the sources root."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import typer

from pipeline.cli._common import state

DATE_FORMATS = ["%Y-%m-%d"]


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    def fetch_cmd(
        ctx: typer.Context,
        product: str | None = typer.Option(
            None,
            "--product",
            "-p",
            help="A NASA short name (MOD11A2, MOD21A1D, MOD13A1, MOD13Q1, MOD16A2, MCD12Q1, "
            "the MYD* Aqua twins, VNP21A1D, VNP21A2, VNP13A1, VNP16A2, VJ121A1D, VJ113A1, "
            "VJ116A2, VJ2*, SPL3SMP_E), CHIRPS (2.0), CHIRPS3, SoilGrids, MERIT or Koeppen.",
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
            None, "--base-url", help="CHIRPS address to use instead (a mirror)."
        ),
        cmr_url: str | None = typer.Option(
            None,
            "--cmr-url",
            help="CMR granule search to use instead of "
            "https://cmr.earthdata.nasa.gov/search/granules.umm_json.",
        ),
        tiles: list[str] | None = typer.Option(
            None,
            "--tile",
            help="Sinusoidal tile hHHvVV (repeatable; default: [sources] modis_tiles).",
        ),
        access: str = typer.Option(
            "https",
            "--access",
            help="https (anywhere, Earthdata token) or s3 (inside AWS us-west-2 only).",
        ),
        s3_endpoint_url: str | None = typer.Option(
            None, "--s3-endpoint-url", help="Another S3-compatible endpoint for --access s3."
        ),
        flavor: str = typer.Option(
            "rnl", "--flavor", help="CHIRPS3 daily: rnl (ERA5-disaggregated) or sat (IMERG)."
        ),
        cog: bool = typer.Option(False, "--cog", help="CHIRPS3: the cloud-optimised GeoTIFFs."),
        tries: int = typer.Option(
            6, "--tries", min=1, help="Tries per request (exponential backoff with jitter)."
        ),
        inputs: bool = typer.Option(
            False,
            "--inputs",
            help="Every dated product the family needs in --mode (instead of --product); "
            "the static ones are listed.",
        ),
        family: str | None = typer.Option(
            None, "--family", help="Product family for --inputs (default: [sources] family)."
        ),
        mode: str = typer.Option("maps", "--mode", help="training or maps, for --inputs."),
    ) -> None:
        """Download a product into the provider layout under the sources root.

        NASA products are found through CMR and need an Earthdata Login token in
        $EARTHDATA_TOKEN (or a urs.earthdata.nasa.gov login in ~/.netrc). Files
        already present are skipped; a failed download leaves nothing behind.
        """
        from pipeline.sources.cmr import Backoff
        from pipeline.sources.fetch import (
            CHIRPS3_FLAVORS,
            MANUAL,
            PRODUCTS,
            ManualDownloadRequired,
            fetch,
        )

        if inputs:
            if product is not None:
                raise typer.BadParameter(
                    "give --product or --inputs, not both", param_hint="--inputs"
                )
            product = "(inputs)"
        elif product is None:
            raise typer.BadParameter(
                "give a product (or --inputs for every product of the family)",
                param_hint="--product",
            )
        elif product not in PRODUCTS:
            raise typer.BadParameter(
                f"must be one of {', '.join(PRODUCTS)}", param_hint="--product"
            )
        if access not in ("https", "s3"):
            raise typer.BadParameter("must be https or s3", param_hint="--access")
        if flavor not in CHIRPS3_FLAVORS:
            raise typer.BadParameter(
                f"must be one of {', '.join(CHIRPS3_FLAVORS)}", param_hint="--flavor"
            )
        if mode not in ("training", "maps"):
            raise typer.BadParameter("must be training or maps", param_hint="--mode")
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
        if base_url is not None and not inputs and not product.startswith("CHIRPS"):
            raise typer.BadParameter(
                f"applies to CHIRPS; {product} is found through CMR (--cmr-url)",
                param_hint="--base-url",
            )
        cfg = state(ctx).settings().sources
        target = root if root is not None else Path(cfg.root)

        def one(name: str) -> None:
            paths = fetch(
                name,
                start.date(),
                end.date(),
                target,
                base_url=base_url if name.startswith("CHIRPS") else None,
                cmr_url=cmr_url,
                tiles=tiles or cfg.modis_tiles,
                access=access,
                s3_endpoint_url=s3_endpoint_url,
                flavor=flavor,
                cog=cog,
                backoff=Backoff(tries=tries),
            )
            for p in paths:
                typer.echo(str(p))
            typer.echo(f"{len(paths)} file(s) of {name} under {target}")

        if inputs:
            _fetch_inputs(one, family or cfg.family, mode)
            return
        try:
            one(product)
        except ManualDownloadRequired as exc:
            typer.echo(exc.problem)
            raise typer.Exit(1) from exc


def _fetch_inputs(one: Callable[[str], None], family: str, mode: str) -> None:
    """Fetch every dated product of ``family`` in ``mode``; a failed product is one line on
    stderr and the others still run (exit 1 at the end); a missing token stops at once."""
    from pipeline.sources.fetch import FetchError, MissingTokenError, inputs_of

    try:
        dated, manual = inputs_of(family, mode)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--family") from exc
    failed = []
    for name in dated:
        try:
            one(name)
        except MissingTokenError:
            raise
        except FetchError as exc:
            typer.echo(f"{name}: {exc}", err=True)
            failed.append(name)
    typer.echo(
        f"static inputs of {family} ({mode}), fetched once: "
        + ", ".join(f"smdown fetch --product {m}" for m in manual)
    )
    if failed:
        typer.echo(
            f"{len(failed)} of {len(dated)} product(s) failed: {', '.join(failed)}", err=True
        )
        raise typer.Exit(1)
