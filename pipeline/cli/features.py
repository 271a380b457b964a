"""``smdown features``: Feature screening and leave-one-variable-out importance report."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli._common import state


def register(app: typer.Typer) -> None:
    @app.command("features")
    def features_cmd(
        ctx: typer.Context,
        table: Path = typer.Option(
            None, "--table", help="Training table (Parquet); default: [table] path."
        ),
        out: Path = typer.Option(
            Path("smdown-data/features"), "--out", help="Directory for screening.md/.json."
        ),
    ) -> None:
        """Feature screening and leave-one-variable-out importance report.

        Marks each input by Pearson/Kendall/Spearman correlation with in-situ
        soil moisture and by random-forest importance (paper 2.0.1), ranks the
        inputs by leave-one-variable-out RMSE increase (2.0.2), and writes
        screening.md and screening.json. A table of the extended feature set
        ([models] feature_set = "extended") screens its added inputs too.
        """
        from pipeline.table.schema import read_table, table_feature_names
        from pipeline.table.screening import screen_features, write_report

        settings = state(ctx).settings()
        path = table if table is not None else Path(settings.table.path)
        df = read_table(path)
        # Every input the table holds: the paper's nine, or the extended set's.
        report = screen_features(df, settings.table, features=table_feature_names(df))
        md, js = write_report(report, out)
        typer.echo(f"screened {len(report.variables)} variables on {report.n_rows} rows")
        typer.echo(f"kept: {', '.join(report.kept) or '(none)'}")
        typer.echo(f"dropped: {', '.join(report.dropped) or '(none)'}")
        typer.echo("LOVO ranking: " + ", ".join(r.name for r in report.lovo))
        typer.echo(f"wrote {md} and {js}")
