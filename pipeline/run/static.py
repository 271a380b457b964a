"""The static 90 m stack: soil, elevation, land cover, Koeppen, texture and surface mask.

Built once per output grid (grid + region) into
``<output.store>/static-<grid key[:12]>-lc<year>.zarr`` (one per year of the
MCD12Q1 land cover, which is yearly): one task per tile reads each static
source's native window, puts it on the tile with ``pipeline.sources.sample``
(the nearest path the training table uses too) and writes its own chunks. Daily tile tasks then
read their window of it instead of re-reading SoilGrids/MERIT/MCD12Q1/Koeppen.

Arrays (rows, cols), chunks (c, c) as the cube: ``sand``, ``clay`` (%), ``ph``
(pH), ``elevation`` (m) float32 NaN-missing; ``texture`` (USDA 1-12),
``landcover`` (IGBP 1-17), ``koppen`` (1-30) int16 with -1 missing;
``surface`` uint8 (``grids.mask``: 0 land, 1 water, 2 urban, 3 outside: on a CONUS
grid, land beyond the CONUS outline of ``grids.conus``); ``land_chunks``
(chunk rows, chunk cols) uint8, 1 where a chunk holds land (written by the
driver). Root attribute ``complete`` is set last: a stack without it is rebuilt.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from grids.conus import conus_mask, is_conus_grid
from grids.mask import LAND, OUTSIDE
from grids.tiling import Tile
from models.variables import categorical_names, static_feature_names, variable, variables
from pipeline.cube import StoreSpec, hold_lock, lock_path
from pipeline.cube.store import (
    consolidate,
    coordinate_attrs,
    create_array,
    grid_mapping_attrs,
    open_group,
    store_exists,
)
from pipeline.cube.template import ArraySpec, StoreTemplate
from pipeline.errors import PublishGuardError
from pipeline.run.plan import RunPlan, tile_bounds_deg
from pipeline.run.tasks import gather_tasks
from pipeline.run.workers import catalog_sources

log = logging.getLogger(__name__)

# Layers of the stack, from the variable registry (models.variables): static features,
# categoricals; ``STATIC_READ`` are read from a product (texture may be derived).
STATIC_FLOAT: tuple[str, ...] = static_feature_names()
STATIC_CODES: tuple[str, ...] = categorical_names()
STATIC_READ: tuple[str, ...] = (
    *STATIC_FLOAT,
    *(v.name for v in variables() if v.kind == "categorical" and not v.derived_from),
)
STATIC_ARRAYS: tuple[str, ...] = (*STATIC_FLOAT, *STATIC_CODES, "surface")
CODE_FILL = -1
SURFACE_FILL = 1  # grids.mask.WATER: never mapped
STATIC_FORMAT = 1


def _dtype_fill(name: str) -> tuple[np.dtype[Any], Any]:
    if name in STATIC_FLOAT:
        return np.dtype(np.float32), np.nan
    if name in STATIC_CODES:
        return np.dtype(np.int16), CODE_FILL
    return np.dtype(np.uint8), SURFACE_FILL


@dataclass(frozen=True)
class StaticTileResult:
    """What one static tile task reports: per-chunk land flags and the files it read."""

    iy: int
    ix: int
    land_chunks: np.ndarray
    files: dict[str, list[str]]
    n_land: int


def compute_static_tile(plan: RunPlan, tile: Tile) -> tuple[dict[str, np.ndarray], dict]:
    """Static arrays of one tile (``pipeline.sources.sample``, nearest) and the files read.

    Land cover is yearly: the composite serving ``plan.static_date`` is used.
    Texture comes from the catalog's texture source when it has one, else from
    the resampled sand and clay (USDA triangle).
    """
    from grids.mask import surface_mask
    from pipeline.errors import SourceError
    from pipeline.sources.sample import sample

    srcs = catalog_sources(plan)
    bounds = tile_bounds_deg(tile)
    out: dict[str, np.ndarray] = {}
    files: dict[str, list[str]] = {}
    wanted = STATIC_READ + (("texture",) if "texture" in srcs else ())
    for var in wanted:
        if var not in srcs:
            raise SourceError(f"[sources] catalog ({plan.mode})", f"no source for {var!r}")
        # A dated categorical (yearly land cover, padded) is read for the plan's day.
        date = plan.static_date if variable(var).padding is not None else None
        nat = srcs[var].native(date, bounds)
        out[var] = sample(nat, tile.grid)
        files[var] = list(nat.provenance.files)
    if "texture" not in out:  # derived from sand and clay (models.variables)
        from pipeline.sources.texture import usda_texture_class

        out["texture"] = usda_texture_class(out["sand"], out["clay"])
    arrays: dict[str, np.ndarray] = {v: out[v].astype(np.float32) for v in STATIC_FLOAT}
    for name in STATIC_CODES:
        v = np.asarray(out[name], dtype=np.float64)
        arrays[name] = np.where(np.isfinite(v), np.rint(v), CODE_FILL).astype(np.int16)
    surface = np.asarray(surface_mask(out["landcover"]), dtype=np.uint8)
    if is_conus_grid(plan.grid_name):
        # Land beyond the CONUS outline (Canada, Mexico) is not part of the product.
        surface[(surface == LAND) & ~conus_mask(tile.grid)] = OUTSIDE
    arrays["surface"] = surface
    return arrays, files


def landcover_year(plan: RunPlan, date: dt.date) -> int:
    """Year of the land-cover composite that serves ``date`` (``MissingInputError`` if none)."""
    from pipeline.sources.base import MissingInputError

    src = catalog_sources(plan).get("landcover")
    prov = None if src is None else src.available(date)
    if prov is None:
        raise MissingInputError(
            "[sources] landcover",
            "no MCD12Q1 land cover on or before the date",
            variable="landcover",
            date=date,
        )
    start = getattr(prov, "composite_start", None)
    return int(start.year) if start is not None else date.year


def make_static_tile(plan: RunPlan, tile: Tile) -> StaticTileResult:
    """Compute and write one tile of the static stack (a Dask task)."""
    import zarr

    arrays, files = compute_static_tile(plan, tile)
    plan.layout.check_region(*tile.window)
    store = plan.static.zarr_store()
    r0, r1, c0, c1 = tile.window
    for name in STATIC_ARRAYS:
        arr = zarr.open_array(store, path=name, mode="r+", config={"write_empty_chunks": False})
        arr[r0:r1, c0:c1] = arrays[name]
    c = plan.layout.chunk
    land = arrays["surface"] == LAND
    nr, nc = -(-(r1 - r0) // c), -(-(c1 - c0) // c)
    padded = np.zeros((nr * c, nc * c), dtype=bool)
    padded[: r1 - r0, : c1 - c0] = land
    per_chunk = np.asarray(padded.reshape(nr, c, nc, c).any(axis=(1, 3)), dtype=np.uint8)
    return StaticTileResult(tile.iy, tile.ix, per_chunk, files, int(land.sum()))


def static_template(plan: RunPlan) -> StoreTemplate:
    """The static stack's arrays and attributes, declared once (``land_chunks`` is added
    by the driver when every tile is written)."""
    lay = plan.layout
    grid = lay.grid
    ydim, xdim = lay.spatial_dims
    cattrs = coordinate_attrs(lay)
    arrays = []
    for name in STATIC_ARRAYS:
        dtype, fill = _dtype_fill(name)
        arrays.append(
            ArraySpec(
                name,
                (ydim, xdim),
                grid.shape,
                dtype,
                lay.chunks[1:],
                {"grid_mapping": "spatial_ref"},
                fill=fill,
            )
        )
    for dim, values in ((ydim, grid.y_coords()), (xdim, grid.x_coords())):
        arrays.append(
            ArraySpec(
                dim,
                (dim,),
                values.shape,
                np.dtype(np.float64),
                values.shape,
                cattrs[dim],
                compressed=False,
                values=values.astype(np.float64),
            )
        )
    arrays.append(
        ArraySpec(
            "spatial_ref",
            (),
            (),
            np.dtype(np.int32),
            (),
            grid_mapping_attrs(grid),
            compressed=False,
            values=np.zeros((), dtype=np.int32),
        )
    )
    attrs = {
        "title": "smdown static 90 m stack (nearest-neighbour from native grids)",
        "grid_key": grid.key(),
        "grid_name": plan.grid_name,
        "chunk": lay.chunk,
        "static_format": STATIC_FORMAT,
        "complete": False,
    }
    return StoreTemplate(tuple(arrays), attrs)


def _create_template(plan: RunPlan) -> None:
    static_template(plan).write(plan.static, mode="w")


def static_status(spec: StoreSpec, plan: RunPlan) -> str:
    """ "absent", "incomplete", "complete", or a description of a structural mismatch."""
    if not store_exists(spec):
        return "absent"
    root = open_group(spec, "r")
    attrs = root.attrs.asdict()
    if attrs.get("grid_key") != plan.grid.key() or attrs.get("chunk") != plan.layout.chunk:
        return (
            f"mismatch: grid key {str(attrs.get('grid_key'))[:12]} / chunk {attrs.get('chunk')} "
            f"!= {plan.grid.key()[:12]} / {plan.layout.chunk}"
        )
    if not attrs.get("complete") or "land_chunks" not in root:
        return "incomplete"
    return "complete"


def land_chunks(plan: RunPlan) -> np.ndarray:
    """(chunk rows, chunk cols) bool: which chunks of the grid hold land (complete stack)."""
    root = open_group(plan.static, "r")
    return np.asarray(root["land_chunks"][:], dtype=bool)


def land_tiles(plan: RunPlan) -> list[Tile]:
    """The plan's tiles that hold at least one land pixel (from the static stack)."""
    chunks = land_chunks(plan)
    c = plan.layout.chunk
    out = []
    for tile in plan.tiles():
        r0, r1, c0, c1 = tile.window
        if chunks[r0 // c : -(-r1 // c), c0 // c : -(-c1 // c)].any():
            out.append(tile)
    return out


def ensure_static(
    plan: RunPlan, client: Any, *, lock_timeout_s: float = 0.0, limits: Any = None
) -> list[Tile]:
    """Build the static stack unless complete (one task per tile); returns the land tiles."""
    state = static_status(plan.static, plan)
    if state.startswith("mismatch"):
        raise PublishGuardError(f"{plan.static}: static stack does not match this run: {state}")
    if state == "complete":
        return land_tiles(plan)
    lock = lock_path(plan.root, plan.static.url.rsplit("/", 1)[-1], "build")
    with hold_lock(lock, f"static stack {plan.static}", timeout_s=max(lock_timeout_s, 3600.0)):
        if static_status(plan.static, plan) == "complete":  # built while we waited
            return land_tiles(plan)
        log.info("building static stack %s (%d tiles)", plan.static, len(plan.tiles()))
        _create_template(plan)
        tiles = plan.tiles()
        results: list[StaticTileResult] = gather_tasks(
            client,
            make_static_tile,
            [(plan, t) for t in tiles],
            [f"smdown-static-{t.key()}" for t in tiles],
            label="static stack",
            limits=limits,
        )
        c = plan.layout.chunk
        h, w = plan.grid.shape
        flags = np.zeros((-(-h // c), -(-w // c)), dtype=np.uint8)
        files: dict[str, set[str]] = {}
        for res, tile in zip(results, tiles, strict=True):
            r, k = tile.row0 // c, tile.col0 // c
            flags[r : r + res.land_chunks.shape[0], k : k + res.land_chunks.shape[1]] = (
                res.land_chunks
            )
            for var, fl in res.files.items():
                files.setdefault(var, set()).update(fl)
        root = open_group(plan.static, "r+")
        create_array(
            root,
            "land_chunks",
            ("chunk_row", "chunk_col"),
            flags.shape,
            flags.shape,
            np.dtype(np.uint8),
            None,
            {},
            data=flags,
            compressed=False,
        )
        root.attrs.update(
            {
                "complete": True,
                "n_land_pixels": int(sum(r.n_land for r in results)),
                "input_files": {k: sorted(v) for k, v in sorted(files.items())},
                "date_created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        consolidate(plan.static)
    return land_tiles(plan)


def read_static(plan: RunPlan, tile: Tile) -> dict[str, np.ndarray]:
    """The tile's window of every static array (float32 NaN-missing for the four values,
    int16 -1-missing codes, uint8 surface)."""
    import zarr

    store = plan.static.zarr_store(read_only=True)
    r0, r1, c0, c1 = tile.window
    return {
        name: np.asarray(zarr.open_array(store, path=name, mode="r")[r0:r1, c0:c1])
        for name in STATIC_ARRAYS
    }
