"""``smdown demo``: the whole chain on a generated demo world on a local Dask cluster."""

from __future__ import annotations

import typer

from pipeline.cli._common import state


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        ctx: typer.Context,
        days: int = typer.Option(7, "--days", min=1, max=90, help="Days to map (the last ones)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the synthetic world."),
        epochs: int = typer.Option(
            None, "--epochs", min=1, help="Max training epochs [models.epochs]."
        ),
        fresh: bool = typer.Option(False, "--fresh", help="Regenerate the world even if present."),
        scheduler: str = typer.Option(
            None, "--scheduler", help="Use this Dask scheduler instead of a local cluster."
        ),
        world: str = typer.Option(
            "demo",
            "--world",
            help="Climate of the synthetic world: demo, or humid-east (the second world; "
            "use with a configuration of its own region and paths, see docs/humid-east.toml).",
        ),
    ) -> None:
        """Synthesise the demo world, build the table, train the Dense ensemble, map a week
        on a local Dask cluster, evaluate held-out sites beside SMAP, and print the metrics
        and the paths of what it made (all under the configured paths, smdown-data/ by
        default)."""
        from pipeline.demo import run_demo

        result = run_demo(
            state(ctx).settings(),
            seed=seed,
            days=days,
            epochs=epochs,
            fresh=fresh,
            scheduler=scheduler,
            echo=typer.echo,
            world_name=world,
        )
        typer.echo(result.summary())
