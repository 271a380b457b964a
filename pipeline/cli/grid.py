"""``smdown grid``: inspect named grids (``grid list``, ``grid info NAME``)."""

from __future__ import annotations

import warnings

import typer

from grids.grid import Grid
from grids.named import list_grids, named_grid
from grids.tiling import TileScheme


def describe_grid(name: str, grid: Grid, tile_size: int | None = None) -> list[str]:
    """Lines of ``smdown grid info``: shape, bounds, CRS, resolution, pixel count (tiles)."""
    west, south, east, north = grid.bounds
    rx, ry = grid.resolution
    unit = "degree" if grid.is_geographic else "m"
    crs = grid.crs
    if len(crs) > 60:  # a CRS without an authority code: show its PROJ string
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            crs = str(grid.to_pyproj().to_proj4() or grid.to_pyproj().name)
    lines = [
        f"name:       {name}",
        f"crs:        {crs}",
        f"shape:      {grid.height} rows x {grid.width} cols",
        f"resolution: {rx!r} x {ry!r} {unit}",
        f"bounds:     west {west!r}, south {south!r}, east {east!r}, north {north!r}",
        f"pixels:     {grid.size:,}",
        f"key:        {grid.key()}",
    ]
    if tile_size is not None:
        scheme = TileScheme.square(grid, tile_size)
        ny, nx = scheme.n_tiles
        lines.append(f"tiles:      {len(scheme):,} ({ny} x {nx} of {tile_size} x {tile_size} px)")
    return lines


def register(app: typer.Typer) -> None:
    grid_app = typer.Typer(
        name="grid",
        help="Inspect named grids (grid list, grid info NAME).",
        no_args_is_help=True,
    )

    @grid_app.command("list")
    def grid_list() -> None:
        """Names of the known grids."""
        for name in list_grids():
            typer.echo(name)
        typer.echo("modis-hHHvVV-<1000|500|250>m")

    @grid_app.command("info")
    def grid_info(
        name: str = typer.Argument(..., help="Grid name (see 'smdown grid list')."),
        tile_size: int | None = typer.Option(
            None, "--tile-size", min=1, help="Also print the number of square tiles of N px."
        ),
    ) -> None:
        """Shape, bounds, CRS, resolution and pixel count of a named grid."""
        for line in describe_grid(name, named_grid(name), tile_size):
            typer.echo(line)

    app.add_typer(grid_app, name="grid")
