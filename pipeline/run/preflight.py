"""Checks made before a run starts a Dask cluster (and by ``smdown config check``).

Each problem is one line naming the key, path or date at fault and what to do:
the region against the named grid, the chunk/tile alignment, a writable
``[output] store``, a trained ensemble under ``[models] dir``, and (for a given
date) inputs for that date. ``problems`` returns them all; ``require`` raises the
first as ``ConfigError``/``RunError``.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import ConfigError, RunError


def check_grid(settings: Settings) -> None:
    """``grid.region`` meets the named grid; ``output.chunk_size`` divides the tile size."""
    from grids.errors import GridError
    from grids.named import named_grid
    from grids.tiling import TileScheme
    from pipeline.cube import CubeLayout
    from pipeline.run.plan import default_chunk, output_grid

    try:
        named_grid(settings.grid.name)
    except (GridError, KeyError, ValueError) as exc:
        raise ConfigError(f"grid.name {settings.grid.name!r}: {exc}") from exc
    target = output_grid(settings.grid.name, settings.grid.region)
    tile = settings.grid.tile_size
    chunk = settings.output.chunk_size or default_chunk(tile)
    try:
        TileScheme.square(target, tile).assert_aligned(
            CubeLayout(target, chunk, settings.output.first_year).chunks
        )
    except GridError as exc:
        raise ConfigError(f"output.chunk_size {chunk} must divide grid.tile_size {tile}") from exc


def check_output_store(settings: Settings) -> None:
    """A local ``output.store`` can be created and written (probed with a temporary folder
    in its nearest existing ancestor, removed at once); URLs are not probed."""
    store = settings.output.store
    if "://" in store and not store.startswith("file://"):
        return
    path = Path(store.removeprefix("file://")).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    what = f"output.store {store!r}"
    fix = "set [output] store to a folder you can write (or an s3:// URL)"
    if not existing.is_dir():
        raise ConfigError(f"{what}: {existing}: Not a directory (a file is in the way); {fix}")
    try:
        probe = tempfile.mkdtemp(prefix=".smdown-probe-", dir=existing)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{what}: cannot create folders in {existing} ({reason}); {fix}") from exc
    os.rmdir(probe)


def check_model(settings: Settings, model_dir: str | os.PathLike[str] | None = None) -> None:
    """A trained ensemble (its ``manifest.json``) where ``run`` will look for it."""
    from pipeline.run.plan import resolve_model_dir

    mdir = resolve_model_dir(settings, None if model_dir is None else Path(model_dir))
    if not (mdir / "manifest.json").is_file():
        where = "--model" if model_dir is not None else "models.dir"
        raise RunError(
            f"{where}: no trained ensemble at {mdir.absolute()} (no manifest.json); "
            f"run 'smdown train --arch {settings.models.arch}' first, or point {where} at one"
        )


def check_inputs(
    catalog: Any, date: dt.date, *, mode: str = "maps", root: str = "", rules: Any = None
) -> None:
    """Some level of each daily input's fallback chain, and the land cover, serve ``date``
    (``RunError`` otherwise; ``rules``: the ``[sources]`` chains, default ones when None)."""
    from pipeline.run.fallback import FallbackRules, chain_files
    from pipeline.run.tile import DAILY
    from pipeline.run.workers import sources_by_variable

    srcs = sources_by_variable(catalog.sources(mode))
    comp = sources_by_variable(catalog.sources("training")) if mode == "maps" else {}
    chains = rules if rules is not None else FallbackRules()
    missing = [v for v in DAILY if not chain_files(v, srcs, comp, date, chains)]
    if "landcover" not in srcs or not srcs["landcover"].available(date):
        missing.append("landcover")
    if not missing:
        return
    where = f" under {root}" if root else ""
    smap_days = getattr(getattr(catalog, "inventory", None), "smap", None) or {}
    if smap_days and date < min(smap_days):
        first = min(smap_days)
        raise RunError(
            f"no inputs for {date}: it is before the first SMAP granule{where} ({first}); "
            f"pick a date from {first} on, or fetch older inputs"
        )
    if len(missing) == len(DAILY) + 1:
        raise RunError(
            f"no inputs for {date}{where}: no SMAP, MODIS, CHIRPS or land cover serves it; "
            f"see 'smdown sources availability' for the days that have them"
        )
    raise RunError(
        f"no inputs for {date}: {', '.join(missing)} missing{where}; "
        f"'smdown sources check --date {date}' shows which file each input needs"
    )


def problems(
    settings: Settings,
    *,
    model_dir: str | os.PathLike[str] | None = None,
    check_models: bool = True,
) -> list[str]:
    """Every configuration problem ``smdown run`` would stop on, one line each."""
    from grids.errors import GridError

    checks = [lambda: check_grid(settings), lambda: check_output_store(settings)]
    if check_models:
        checks.append(lambda: check_model(settings, model_dir))
    found: list[str] = []
    for check in checks:
        try:
            check()
        except (ConfigError, RunError, GridError) as exc:
            found.append(str(exc))
    return found


def require(
    settings: Settings,
    *,
    model_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Raise the first problem of ``problems`` (grid, output store, model), if any."""
    check_grid(settings)
    check_output_store(settings)
    check_model(settings, model_dir)
