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
(fill, with the ``water``/``urban`` bit). Each daily input goes through its fallback
chain (``pipeline.run.fallback``: SMAP of up to ``smap_max_age_days`` days before,
daily LST -> 8-day composite -> earlier composite, NDVI/ET earlier composites), and
the level that served each pixel is written to ``smap_age_days`` and
``input_fallback``; ``<var>_padded`` is set per pixel where the value came from a
composite past its own period. A land pixel still missing an input after its chain
is fill with ``input_missing`` (and ``smap_missing`` when SMAP is one missing); the
tile result counts the missing land pixels per input. A daily input whose chain has
no file at all for the day (nothing has landed) fails the tile with
``MissingInputError`` (the day waits for its inputs), except SMAP when an earlier
retrieval serves. Which variable owns which bit, and which inputs are daily, is the
registry's (``models.variables``).
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
from pipeline.run.fallback import FallbackRules, LevelUse, Served, inflate_sd, serve_daily
from pipeline.run.plan import RunPlan, tile_bounds_deg
from pipeline.run.static import STATIC_CODES, STATIC_FLOAT, read_static
from pipeline.run.workers import catalog_sources, sources_by_variable, worker_catalog, worker_model

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
    {variable: Provenance} of the daily inputs (the first level of each chain);
    ``smap_age`` uint8 (H, W) days (255: no SMAP); ``fallback`` uint8 (H, W)
    ``input_fallback`` bits; ``padded`` {variable: bool (H, W)} from a composite past its
    period; ``levels`` {variable: [LevelUse]} of the chains; ``missing_files``: daily
    inputs with no file for the day at all.
    """

    x: np.ndarray
    cats: np.ndarray
    missing: np.ndarray
    surface: np.ndarray
    provenance: Mapping[str, Any]
    names: tuple[str, ...] = FEATURE_NAMES
    smap_age: np.ndarray | None = None
    fallback: np.ndarray | None = None
    padded: Mapping[str, np.ndarray] = field(default_factory=dict)
    levels: Mapping[str, list[LevelUse]] = field(default_factory=dict)
    missing_files: tuple[str, ...] = ()


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
    # Land pixels missing each input after its fallback chain.
    n_missing: dict[str, int] = field(default_factory=dict)
    # Land pixels served by each level of each chain ({var: {level: n}}), SMAP by age.
    levels: dict[str, dict[str, int]] = field(default_factory=dict)
    smap_ages: dict[int, int] = field(default_factory=dict)
    missing_files: tuple[str, ...] = ()


def _files(prov: Any) -> list[str]:
    files = getattr(prov, "files", None)
    return [str(f) for f in files] if files else []


def tile_features(plan: RunPlan, tile: Tile, date: dt.date) -> TileFeatures:
    """Read the daily inputs through their fallback chains and the static window of ``tile``,
    and build its feature block."""
    from grids.mask import LAND
    from pipeline.errors import SourceError
    from pipeline.sources.base import MissingInputError
    from pipeline.sources.block import build_feature_block

    srcs = catalog_sources(plan)
    composite_srcs = _composite_sources(plan)
    rules = FallbackRules.from_sources(plan.sources)
    bounds = tile_bounds_deg(tile)
    static = read_static(plan, tile)
    land = static["surface"] == LAND
    inputs: dict[str, Any] = {}
    served: dict[str, Served] = {}
    daily = tuple(v for v in DAILY_ANY if v in DAILY or v in plan.feature_names)
    for var in daily:
        if var not in srcs:
            raise SourceError(f"[sources] catalog ({plan.mode})", f"no source for {var!r}")
        got = serve_daily(var, srcs, composite_srcs, date, bounds, tile.grid, rules, land)
        if got.missing_file and not got.levels:
            # Nothing serves the input on this day at all (no file has landed): the
            # source's own error names what was looked for.
            srcs[var].native(date, bounds)
            raise MissingInputError(f"{var} on {date}", "no file serves the day", variable=var)
        served[var] = got
        inputs[var] = got.values
    for var in STATIC_FLOAT:
        inputs[var] = static[var]
    for var in STATIC_CODES:
        codes = static[var]
        inputs[var] = np.where(codes >= 0, codes, np.nan).astype(np.float32)
    block = build_feature_block(inputs, tile.grid, plan.feature_names)
    fallback = np.zeros(tile.grid.shape, dtype=np.uint8)
    for got in served.values():
        fallback |= got.fallback
    smap = served.get("smap")
    age = smap.age if smap is not None and smap.age is not None else None
    provenance = {**dict(block.provenance), **{v: g.provenance for v, g in served.items()}}
    return TileFeatures(
        x=np.asarray(block.x, dtype=np.float32),
        cats=np.asarray(block.cats, dtype=np.int16),
        missing=np.asarray(block.missing, dtype=bool),
        surface=static["surface"],
        provenance=provenance,
        smap_age=age,
        fallback=fallback,
        padded={v: g.padded for v, g in served.items()},
        levels={v: g.levels for v, g in served.items()},
        missing_files=tuple(v for v, g in served.items() if g.missing_file),
        names=block.names,
    )


def _composite_sources(plan: RunPlan) -> dict[str, Any]:
    """The training-mode sources (their LST is the 8-day composite) when the run makes maps."""
    if plan.mode != "maps":
        return {}
    return sources_by_variable(worker_catalog(plan).sources("training"))


def quality_flags(feat: TileFeatures) -> np.ndarray:
    """uint8 quality bits of every pixel of a tile (see the module docstring)."""
    from grids.mask import URBAN, WATER

    flags = np.zeros(feat.surface.shape, dtype=np.uint8)
    for var, name in MISSING_FLAGS.items():
        flags[~np.isfinite(feat.x[feat.names.index(var)])] |= FLAG_BITS[name]
    flags[feat.missing] |= FLAG_BITS["input_missing"]
    flags[feat.surface == WATER] |= FLAG_BITS["water"]
    flags[feat.surface == URBAN] |= FLAG_BITS["urban"]
    for var, name in PADDED_FLAGS.items():
        px = feat.padded.get(var)
        if px is not None:
            flags[px] |= np.uint8(FLAG_BITS[name])
            continue
        prov = feat.provenance.get(var)  # a static/yearly layer: the whole tile
        if prov is not None and int(getattr(prov, "days_stale", 0) or 0) > 0:
            flags |= np.uint8(FLAG_BITS[name])
    return flags


def _input_files(feat: TileFeatures) -> dict[str, list[str]]:
    """Files of every input: the static ones, and every chain level that served a pixel."""
    out = {k: _files(v) for k, v in sorted(feat.provenance.items()) if v is not None}
    for var, uses in feat.levels.items():
        files = {f for u in uses if u.n_pixels for f in u.files}
        out[var] = sorted(files) if files else out.get(var, [])
    return out


def _age_counts(age: np.ndarray | None, land: np.ndarray) -> dict[int, int]:
    """{SMAP age in days: land pixels} (``AGE_NONE`` counts the land without SMAP)."""
    if age is None:
        return {}
    values, counts = np.unique(age[land], return_counts=True)
    return {int(v): int(n) for v, n in zip(values, counts, strict=True)}


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
    # Older SMAP, larger error: the sd grows with the age (``[sources] smap_age_sd``).
    sd = inflate_sd(sd, feat.smap_age, FallbackRules.from_sources(plan.sources).smap_age_sd)
    t2 = time.perf_counter()
    flags = quality_flags(feat)
    # A land pixel the model could not predict (e.g. non-finite output) counts as missing.
    land = feat.surface == LAND
    flags[land & ~predicted] |= np.uint8(FLAG_BITS["input_missing"])
    arrays = encode_tile(mean, sd, spread, flags, feat.smap_age, feat.fallback)
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
        inputs=_input_files(feat),
        days_stale={
            k: int(getattr(v, "days_stale", 0) or 0)
            for k, v in sorted(feat.provenance.items())
            if v is not None
        },
        n_missing={
            v: int((land & ~np.isfinite(feat.x[i])).sum()) for i, v in enumerate(FEATURE_NAMES)
        },
        levels={v: {u.label: u.n_pixels for u in uses} for v, uses in feat.levels.items()},
        smap_ages=_age_counts(feat.smap_age, land),
        missing_files=feat.missing_files,
        seconds={
            "features": t1 - t0,
            "predict": t2 - t1,
            "encode": t3 - t2,
            "write": t4 - t3,
            "total": t4 - t0,
        },
    )
