"""``smdown config``: show or check the effective configuration."""

from __future__ import annotations

import typer

from pipeline.cli._common import state
from pipeline.config import settings_to_toml

config_app = typer.Typer(help="Show or validate the configuration.", no_args_is_help=True)


@config_app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective configuration (file + environment + defaults) as TOML."""
    typer.echo(settings_to_toml(state(ctx).settings()), nl=False)


@config_app.command("check")
def check(
    ctx: typer.Context,
    model: str = typer.Option(
        None, "--model", metavar="DIR", help="Ensemble folder run would use (as in run)."
    ),
    no_models: bool = typer.Option(
        False, "--no-models", help="Skip the trained-ensemble check (before training)."
    ),
) -> None:
    """Validate the configuration and run the checks 'smdown run' makes before starting
    (region inside the grid, chunk/tile alignment, writable output store, trained model)."""
    from pipeline.run.preflight import problems

    found = problems(state(ctx).settings(), model_dir=model, check_models=not no_models)
    for line in found:
        typer.echo(f"smdown: error: {line}", err=True)
    if found:
        raise typer.Exit(1)
    typer.echo("configuration OK")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
