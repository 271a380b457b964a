"""``smdown evaluate``: Score ensembles against in-situ data beside SMAP; HTML report."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import typer

from pipeline.cli._common import state

ARCHS: tuple[str, ...] = ("dense", "prob", "wdl", "rf")


def parse_models(specs: list[str], models_dir: str, default_arch: str) -> dict[str, Path]:
    """``NAME=DIR`` or ``DIR`` (named after its folder) -> {name: dir}.

    With none given: every ``<models_dir>/<arch>`` holding a ``manifest.json``,
    else ``<models_dir>/<default_arch>``.
    """
    from pipeline.evaluate import EvaluationError

    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            path, name = spec, Path(spec).name or spec
        if name in out:
            raise EvaluationError(f"model name {name!r} given twice (use NAME=DIR)")
        out[name] = Path(path)
    if out:
        return out
    root = Path(models_dir)
    found = {a: root / a for a in ARCHS if (root / a / "manifest.json").exists()}
    return found or {default_arch: root / default_arch}


def parse_baselines(specs: list[str]) -> dict[str, Path]:
    """``NAME=ZARR`` -> {name: store}; a store that does not exist is an error naming it."""
    from pipeline.evaluate import EvaluationError

    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise EvaluationError(f"--baseline {spec!r}: expected NAME=ZARR")
        if not Path(path).exists():
            raise EvaluationError(f"--baseline {name}: {path} does not exist")
        out[name] = Path(path)
    return out


def resolve_cube(path: str) -> str:
    """A cube store path: ``path`` itself, or the one ``*.zarr`` cube inside a directory.

    URLs (s3://...) are taken as given.
    """
    from pipeline.evaluate import EvaluationError

    if "://" in path and not path.startswith("file://"):
        return path
    p = Path(path)
    if (p / ".zgroup").exists() or (p / "zarr.json").exists():
        return str(p)
    # Cubes are the stores with a soil_moisture array (the run also keeps static stacks here).
    stores = (
        sorted(
            c
            for c in p.glob("*.zarr")
            if (c / "soil_moisture" / ".zarray").exists()
            or (c / "soil_moisture" / "zarr.json").exists()
        )
        if p.is_dir()
        else []
    )
    if len(stores) == 1:
        return str(stores[0])
    if not stores:
        raise EvaluationError(f"{p}: no Zarr cube here (expected a .zarr store)")
    names = ", ".join(s.name for s in stores)
    raise EvaluationError(f"{p}: several cubes ({names}); name one with --cube")


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        ctx: typer.Context,
        split: str = typer.Option(
            "validation",
            "--split",
            help="validation (trained ensembles on the validation sites), cv (train and score "
            "each of the 10 folds on the Dask cluster) or both.",
        ),
        table: str = typer.Option(
            None, "--table", help="Training table Parquet (default: [table] path)."
        ),
        models: list[str] = typer.Option(
            None,
            "--models",
            help="Ensemble directory, or NAME=DIR; repeat for several (default: every "
            "[models] dir/<arch> with a manifest). For --split cv a bare arch name works.",
        ),
        out: str = typer.Option(
            "smdown-data/evaluation", "--out", help="Directory for report.html and metrics.json."
        ),
        group: list[str] = typer.Option(
            None,
            "--group",
            help="Station group (a network or group name) to tabulate as in Tables 2-3; repeat.",
        ),
        min_days: int = typer.Option(
            10, "--min-days", min=2, help="Minimum valid days for a site's own metrics."
        ),
        truth_world: str = typer.Option(
            None, "--truth-world", help="Synthetic world directory: score whole maps too."
        ),
        cube: str = typer.Option(
            None,
            "--cube",
            help="Predicted cube of that world (with --truth-world): a .zarr store, or a "
            "directory holding exactly one (default: [output] store).",
        ),
        epochs: int = typer.Option(
            None, "--epochs", min=1, help="CV training epochs (default: [models] epochs)."
        ),
        folds: int = typer.Option(
            None, "--folds", min=1, help="CV: only the first N folds (a quick look)."
        ),
        scheduler: str = typer.Option(
            None, "--scheduler", help="CV: Dask scheduler address (default: [cluster])."
        ),
        figures: bool = typer.Option(
            True, "--figures/--no-figures", help="Draw the report's figures (tables always)."
        ),
        baseline: list[str] = typer.Option(
            None,
            "--baseline",
            help="NAME=ZARR: a baseline map store (e.g. the demo's "
            "smdown-data/baselines/dispatch.zarr) scored beside the models; repeat.",
        ),
    ) -> None:
        """Score ensembles against in-situ data beside SMAP; HTML report."""
        from pipeline.evaluate import EvaluationError, headline_table, run_evaluation
        from pipeline.evaluate.evaluation import SPLITS

        settings = state(ctx).settings()
        if split not in SPLITS:
            raise EvaluationError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
        model_dirs = parse_models(list(models or []), settings.models.dir, settings.models.arch)
        with contextlib.ExitStack() as stack:
            client: Any = None
            if split in ("cv", "both"):
                from pipeline.cluster import open_client

                client = stack.enter_context(open_client(settings.cluster, scheduler))
            results = run_evaluation(
                Path(table or settings.table.path),
                model_dirs,
                split=split,  # type: ignore[arg-type]
                out_dir=Path(out),
                client=client,
                min_days=min_days,
                groups=list(group or []),
                seed=settings.models.seed,
                epochs=epochs or settings.models.epochs,
                n_folds=folds,
                table_cfg=settings.table,
                truth_world=truth_world,
                cube=resolve_cube(cube or settings.output.store) if truth_world else cube,
                smap_quality=settings.sources.smap_quality,
                storage_options=settings.output.storage_options,
                make_figures=figures,
                baselines=parse_baselines(list(baseline or [])),
            )
        typer.echo(headline_table(results))
        if "maps" in results.tables:
            typer.echo("")
            typer.echo(results.tables["maps"].to_string(index=False, float_format="%.4f"))
        for note in results.notes:
            typer.echo(f"note: {note}")
        typer.echo(f"report: {Path(out) / 'report.html'}")
        typer.echo(f"metrics: {Path(out) / 'metrics.json'}")
