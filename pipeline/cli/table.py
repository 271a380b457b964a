"""``smdown table``: Build the training table: in-situ days paired with the nine inputs."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli._common import state


def register(app: typer.Typer) -> None:
    @app.command("table")
    def table_cmd(
        ctx: typer.Context,
        out: Path = typer.Option(
            None, "--out", help="Parquet file to write; default: [table] path."
        ),
        insitu: Path = typer.Option(
            None,
            "--insitu",
            help="Daily in-situ table from 'smdown insitu' (default: [table] insitu_path, "
            "else insitu.parquet beside [table] path).",
        ),
        mode: str = typer.Option(
            "training",
            "--mode",
            help="Products: 'training' (8-day LST, 500 m NDVI, paper 3.2) or 'maps' (daily LST).",
        ),
    ) -> None:
        """Build the training table: in-situ days paired with the nine inputs.

        Each (site, day) of the in-situ table gets the nine inputs and the three
        static references at the site's 90 m pixel through the maps' own feature
        block, a site-disjoint train/validation split, CV folds and balanced
        weights. Prints the row count after each step and every kind of bad input
        (sites outside the grid, days without SMAP, missing static layers).
        """
        from pipeline.errors import TableError
        from pipeline.table.build import build_from_settings, table_metadata_for
        from pipeline.table.schema import write_table

        if mode not in ("training", "maps"):
            raise TableError(f"--mode must be 'training' or 'maps', got {mode!r}")
        settings = state(ctx).settings()
        result = build_from_settings(
            settings,
            insitu=insitu,
            mode=mode,  # type: ignore[arg-type]
            progress=typer.echo,
        )
        for line in result.report.lines()[len(result.report.steps) :]:
            typer.echo(line)
        dest = out if out is not None else Path(settings.table.path)
        path = write_table(result.table, dest, table_metadata_for(result, settings.table))
        n_sites = result.table["site_id"].nunique()
        typer.echo(f"wrote {len(result.table):,d} rows from {n_sites:,d} sites to {path}")
