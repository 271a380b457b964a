"""``smdown run`` and ``smdown backfill``: daily map production on a Dask cluster."""

from __future__ import annotations

import datetime as dt

import typer

from pipeline.cli._common import state


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD", param_hint=option) from exc


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(
        ctx: typer.Context,
        date: str = typer.Option(
            ..., "--date", "-d", help="Day to map, YYYY-MM-DD, or 'latest' (newest with inputs)."
        ),
        force: bool = typer.Option(False, "--force", help="Re-make the day even if final."),
        scheduler: str = typer.Option(
            None, "--scheduler", help="Attach to this Dask scheduler (tcp://host:8786)."
        ),
        model: str = typer.Option(
            None, "--model", help="Ensemble folder (default: models.dir/<models.arch>)."
        ),
        mode: str = typer.Option(
            "maps", "--mode", help="maps (daily LST, 250 m NDVI) or training (8-day LST)."
        ),
    ) -> None:
        """Make the downscaled map of one day into the Zarr cube.

        Writes <output.store>/<arch>-<manifest hash>.zarr; a final day is skipped
        unless --force.
        """
        from pipeline.cluster import open_client
        from pipeline.run import build_plan, latest_available_date, run_day
        from pipeline.run.workers import worker_catalog

        if mode not in ("maps", "training"):
            raise typer.BadParameter("must be 'maps' or 'training'", param_hint="--mode")
        from pipeline.run.fallback import FallbackRules
        from pipeline.run.preflight import check_inputs, require

        day = None if date == "latest" else _parse_date(date, "--date")
        settings = state(ctx).settings()
        require(settings, model_dir=model)  # before any cluster starts
        plan = build_plan(settings, model_dir=model, mode=mode)  # type: ignore[arg-type]
        if day is None:
            day = latest_available_date(worker_catalog(plan), mode=plan.mode)
            typer.echo(f"latest day with every input: {day}")
        else:
            check_inputs(
                worker_catalog(plan),
                day,
                mode=plan.mode,
                root=settings.sources.root,
                rules=FallbackRules.from_sources(settings.sources),
            )
        with open_client(settings.cluster, scheduler) as client:
            result = run_day(settings, day, client=client, force=force, plan=plan)
        typer.echo(result.summary())
        typer.echo(f"cube: {result.store}")

    @app.command("backfill")
    def backfill_cmd(
        ctx: typer.Context,
        start: str = typer.Option(..., "--start", help="First day, YYYY-MM-DD."),
        end: str = typer.Option(..., "--end", help="Last day, YYYY-MM-DD (inclusive)."),
        force: bool = typer.Option(False, "--force", help="Re-make final days too."),
        scheduler: str = typer.Option(
            None, "--scheduler", help="Attach to this Dask scheduler (tcp://host:8786)."
        ),
        model: str = typer.Option(
            None, "--model", help="Ensemble folder (default: models.dir/<models.arch>)."
        ),
    ) -> None:
        """Make the maps of every day in a range that is not yet final.

        A day that fails is reported and the others go on; the exit code is 1 when
        any day failed.
        """
        from pipeline.cluster import open_client
        from pipeline.run import backfill, build_plan

        first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
        if last < first:
            raise typer.BadParameter(f"{end} is before --start {start}", param_hint="--end")
        from pipeline.run.preflight import require

        settings = state(ctx).settings()
        require(settings, model_dir=model)  # before any cluster starts
        plan = build_plan(settings, model_dir=model)
        with open_client(settings.cluster, scheduler) as client:
            results = backfill(settings, first, last, client=client, force=force, plan=plan)
        for r in results:
            typer.echo(r.summary())
        failed = [r for r in results if r.reason.startswith("failed")]
        nodata = [r for r in results if r.reason.startswith("no data")]
        waiting = [r for r in results if r.reason.startswith("waiting")]
        typer.echo(
            f"{len(results)} day(s): {len(failed)} failed, {len(waiting)} waiting for inputs, "
            f"{len(nodata)} without data over the region (not published); cube: {plan.cube.url}"
        )
        if failed:
            raise typer.Exit(1)
