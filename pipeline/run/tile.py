"""One tile of one day: gather covariates, predict with the ensemble, mask, encode, write.

``make_tile(plan, tile, date)`` is the Dask task. It reads each daily source's
native window (``Source.native(date, tile bounds)``), the tile's window of the
static stack, builds the feature block (``pipeline.sources.block``), runs the
ensemble on the mappable pixels with complete inputs only (one float32 (n, 9)
block, categoricals when the model needs them), sets the quality bits, packs
the values and writes the tile's own chunks of the day. Per worker process the
catalog and the ensemble are opened once (``worker_catalog`` / ``worker_model``;
``models.runtime`` and ``grids.resample`` keep their own per-process caches).

Pixel rules: water and urban pixels (static surface mask) are never predicted
(fill, with the ``water``/``urban`` bit); a land pixel with any missing input is
fill with ``input_missing`` (and ``smap_missing`` when SMAP is the one missing); a
daily file that exists but holds no valid value over the tile (a SMAP swath gap)
makes the whole tile missing for that variable instead of failing the day;
``lst_padded``/``ndvi_padded``/``et_padded`` are set on every computed pixel of a
tile whose composite for that variable was padded (days_stale > 0). Which variable
owns which bit, and which inputs are daily, is the registry's (``models.variables``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grids.tiling import Tile
from models.features import FEATURE_NAMES
from models.variables import daily_names, feature_variables, names, variables
from pipeline.cube import FLAG_BITS, encode_tile, write_region
from pipeline.run.plan import RunPlan, tile_bounds_deg
from pipeline.run.static import STATIC_CODES, STATIC_FLOAT, read_static
from pipeline.run.workers import catalog_sources, worker_model

DAILY: tuple[str, ...] = daily_names()
# Daily inputs of every feature set; a tile reads those of its model (``RunPlan.feature_names``).
DAILY_ANY: tuple[str, ...] = names("daily")
# Flags a variable owns (models.variables): set where it is missing / when it was padded.
MISSING_FLAGS: dict[str, str] = {
    v.name: v.flag.name for v in feature_variables() if v.flag and v.flag.when == "missing"
}
PADDED_FLAGS: dict[str, str] = {
    v.name: v.flag.name for v in variables() if v.flag and v.flag.when == "padded"
}
SMAP_INDEX = FEATURE_NAMES.index("smap")


@dataclass(frozen=True)
class TileFeatures:
    """The feature block of one tile and day, plus the static surface mask.

    ``x`` float32 (n, H, W) in the model's feature order (``names``) and units; ``cats`` int16
    (3, H, W), -1 missing; ``missing`` bool (H, W): some input missing;
    ``surface`` uint8 (H, W) (0 land, 1 water, 2 urban); ``provenance``
    {variable: Provenance} of the daily inputs.
    """

    x: np.ndarray
    cats: np.ndarray
    missing: np.ndarray
    surface: np.ndarray
    provenance: Mapping[str, Any]
    names: tuple[str, ...] = FEATURE_NAMES


@dataclass(frozen=True)
class TileResult:
    """Small statistics of one tile task (returned to the driver)."""

    iy: int
    ix: int
    window: tuple[int, int, int, int]
    n_pixels: int
    n_land: int
    n_predicted: int
    n_smap_missing: int
    n_input_missing: int
    chunks: tuple[str, ...]
    inputs: dict[str, list[str]] = field(default_factory=dict)
    days_stale: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _files(prov: Any) -> list[str]:
    files = getattr(prov, "files", None)
    return [str(f) for f in files] if files else []


def tile_features(plan: RunPlan, tile: Tile, date: dt.date) -> TileFeatures:
    """Read the daily natives and static window of ``tile`` and build its feature block."""
    from pipeline.sources.base import MissingInputError
    from pipeline.sources.block import build_feature_block

    srcs = catalog_sources(plan)
    bounds = tile_bounds_deg(tile)
    inputs: dict[str, Any] = {}
    empty: dict[str, Any] = {}
    daily = tuple(v for v in DAILY_ANY if v in DAILY or v in plan.feature_names)
    for var in daily:
        if var not in srcs:
            from pipeline.errors import SourceError

            raise SourceError(f"[sources] catalog ({plan.mode})", f"no source for {var!r}")
        try:
            inputs[var] = srcs[var].native(date, bounds)
        except MissingInputError as exc:
            # The day's file exists but holds no valid value over this tile (a SMAP swath
            # gap): the tile's pixels are flagged missing; a day without the file fails.
            prov = srcs[var].available(date)
            if prov is None:
                raise
            inputs[var] = np.full(tile.grid.shape, np.nan, dtype=np.float32)
            empty[var] = prov.with_note(f"no valid value over this tile: {exc.problem}")
    static = read_static(plan, tile)
    for var in STATIC_FLOAT:
        inputs[var] = static[var]
    for var in STATIC_CODES:
        codes = static[var]
        inputs[var] = np.where(codes >= 0, codes, np.nan).astype(np.float32)
    block = build_feature_block(inputs, tile.grid, plan.feature_names)
    return TileFeatures(
        x=np.asarray(block.x, dtype=np.float32),
        cats=np.asarray(block.cats, dtype=np.int16),
        missing=np.asarray(block.missing, dtype=bool),
        surface=static["surface"],
        provenance={**dict(block.provenance), **empty},
        names=block.names,
    )


def quality_flags(feat: TileFeatures) -> np.ndarray:
    """uint8 quality bits of every pixel of a tile (see the module docstring)."""
    from grids.mask import URBAN, WATER

    flags = np.zeros(feat.surface.shape, dtype=np.uint8)
    for var, name in MISSING_FLAGS.items():
        flags[~np.isfinite(feat.x[feat.names.index(var)])] |= FLAG_BITS[name]
    flags[feat.missing] |= FLAG_BITS["input_missing"]
    flags[feat.surface == WATER] |= FLAG_BITS["water"]
    flags[feat.surface == URBAN] |= FLAG_BITS["urban"]
    padded = 0
    for var, name in PADDED_FLAGS.items():
        prov = feat.provenance.get(var)
        if prov is not None and int(getattr(prov, "days_stale", 0) or 0) > 0:
            padded |= FLAG_BITS[name]
    if padded:
        flags |= np.uint8(padded)
    return flags


def predict_tile(
    model: Any, feat: TileFeatures
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, sd, spread) float32 (H, W) m3 m-3, NaN where not predicted, and the predicted mask.

    Only land pixels with complete inputs go to the model, as one (n, 9) block.
    """
    from grids.mask import LAND

    h, w = feat.surface.shape
    sel = (feat.surface == LAND) & ~feat.missing & np.isfinite(feat.x).all(axis=0)
    needs_cats = bool(getattr(model, "needs_categoricals", False))
    if needs_cats:
        sel &= (feat.cats >= 0).all(axis=0)
    out = [np.full((h, w), np.nan, dtype=np.float32) for _ in range(3)]
    n = int(sel.sum())
    if n:
        rows = np.ascontiguousarray(feat.x[:, sel].T, dtype=np.float32)
        cats = np.ascontiguousarray(feat.cats[:, sel].T, dtype=np.int64) if needs_cats else None
        pred = model.predict(rows, cats)
        for arr, values in zip(out, (pred.mean, pred.sd, pred.spread), strict=True):
            arr[sel] = np.asarray(values, dtype=np.float32)
    predicted = sel & np.isfinite(out[0])
    return out[0], out[1], out[2], predicted


def make_tile(plan: RunPlan, tile: Tile, date: dt.date) -> TileResult:
    """The Dask task of one tile and day: features -> ensemble -> masks -> encode -> write."""
    from grids.mask import LAND

    t0 = time.perf_counter()
    feat = tile_features(plan, tile, date)
    t1 = time.perf_counter()
    model = worker_model(plan)
    mean, sd, spread, predicted = predict_tile(model, feat)
    t2 = time.perf_counter()
    flags = quality_flags(feat)
    # A land pixel the model could not predict (e.g. non-finite output) counts as missing.
    land = feat.surface == LAND
    flags[land & ~predicted] |= np.uint8(FLAG_BITS["input_missing"])
    arrays = encode_tile(mean, sd, spread, flags)
    t3 = time.perf_counter()
    r0, _, c0, _ = tile.window
    chunks = write_region(plan.cube, plan.layout, date, r0, c0, arrays)
    t4 = time.perf_counter()
    return TileResult(
        iy=tile.iy,
        ix=tile.ix,
        window=tile.window,
        n_pixels=int(land.size),
        n_land=int(land.sum()),
        n_predicted=int(predicted.sum()),
        n_smap_missing=int((land & ~np.isfinite(feat.x[SMAP_INDEX])).sum()),
        n_input_missing=int((land & ~predicted).sum()),
        chunks=tuple(chunks),
        inputs={k: _files(v) for k, v in sorted(feat.provenance.items()) if v is not None},
        days_stale={
            k: int(getattr(v, "days_stale", 0) or 0)
            for k, v in sorted(feat.provenance.items())
            if v is not None
        },
        seconds={
            "features": t1 - t0,
            "predict": t2 - t1,
            "encode": t3 - t2,
            "write": t4 - t3,
            "total": t4 - t0,
        },
    )
