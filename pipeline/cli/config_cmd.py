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
def check(ctx: typer.Context) -> None:
    """Validate the configuration and say so in one line."""
    state(ctx).settings()
    typer.echo("configuration OK")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
