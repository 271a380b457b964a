"""``smdown migrate``: bring a cube written by an earlier smdown to this version's layout."""

from __future__ import annotations

import typer

from pipeline.cli._common import state


def migrate_cmd(
    ctx: typer.Context,
    store: str = typer.Option(
        None,
        "--store",
        metavar="PATH|URL",
        help="Cube store to migrate (default: the one latest.json names under [output] store).",
    ),
) -> None:
    """Add the layers this version writes and the cube lacks; stored values are untouched."""
    from pipeline.cube import Cube, StoreSpec, read_layout
    from pipeline.export import resolve_store

    settings = state(ctx).settings()
    opts = dict(settings.output.storage_options)
    url = store or resolve_store(settings.output.store, opts)
    spec = StoreSpec(url, opts)
    added = Cube(spec, read_layout(spec)).migrate()
    typer.echo(f"{url}: added {', '.join(added)}" if added else f"{url}: already current")


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_cmd)
