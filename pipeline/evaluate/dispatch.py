"""DisPATCh: the physical downscaling baseline the paper compares with, run on the same inputs.

DisPATCh (DISaggregation based on Physical And Theoretical scale CHange;
Merlin et al. 2012, IEEE Trans. Geosci. Remote Sens. 50(5), 1556-1571,
doi:10.1109/TGRS.2011.2175000; Merlin et al. 2013, Remote Sens. Environ. 130,
25-38, doi:10.1016/j.rse.2012.11.008) distributes a coarse soil moisture
``SM_LR`` within its cell with the soil evaporative efficiency (SEE, actual
over potential soil evaporation) estimated from thermal and optical data:

    SM_HR = SM_LR + SM_p * (SEE_HR - <SEE_HR>_LR)

with the linear SEE(SM) model ``SEE = SM / SM_p`` inverted at the coarse scale,
``SM_p = SM_LR / <SEE_HR>_LR`` (``<.>_LR`` the mean over the coarse cell), and

    SEE_HR = (T_s,max - T_s,HR) / (T_s,max - T_s,min)
    T_s,HR = (LST_HR - f_v T_v) / (1 - f_v)
    f_v    = (NDVI - NDVI_s) / (NDVI_v - NDVI_s), clipped to [0, 1]

``T_s`` is the soil-component temperature of the LST split by the vegetation
cover fraction ``f_v``. Choices of this implementation (each a simplification
of the published processor, stated so the baseline is read for what it is):

- The coarse cell is the SMAP 9 km EASE-Grid 2.0 cell (``truth.ease_m09_cell_ids``)
  and the high resolution is the 90 m lattice the ML ensembles map (MODIS
  LST at 1 km and NDVI at 500 m, resampled by the project's readers).
- ``T_v`` is the scene's cold edge: the 2nd percentile of the LST of the
  most vegetated pixels (``f_v >= 0.5``), else of all pixels; the soil end
  members ``T_s,min``/``T_s,max`` are the 1st/99th percentiles of ``T_s`` over
  the day's scene (the whole mapped region), not the hourglass vertices.
- Pixels with ``f_v > 0.9`` (``T_s`` undefined) keep ``SM_LR``; so do cells
  where ``<SEE_HR>_LR`` is below 0.05 (``SM_p`` undefined).
- The result is clipped to [0.02, 0.6] m3 m-3, the range of the synthetic truth.

It needs no training: what the ML ensembles buy over it is what the
evaluation shows beside SMAP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

NDVI_SOIL = 0.15
NDVI_VEG = 0.90
FV_MAX = 0.9
SEE_MIN_CELL = 0.05
SM_RANGE = (0.02, 0.6)


def vegetation_fraction(ndvi: np.ndarray) -> np.ndarray:
    """``f_v`` from NDVI (bare soil 0.15, full cover 0.90), clipped to [0, 1]."""
    return np.clip((np.asarray(ndvi, np.float64) - NDVI_SOIL) / (NDVI_VEG - NDVI_SOIL), 0.0, 1.0)


def soil_evaporative_efficiency(lst: np.ndarray, ndvi: np.ndarray) -> np.ndarray:
    """SEE (0-1) of every pixel from LST (any unit of temperature) and NDVI; NaN where undefined."""
    t = np.asarray(lst, np.float64)
    fv = vegetation_fraction(ndvi)
    ok = np.isfinite(t) & np.isfinite(fv) & (fv <= FV_MAX)
    see = np.full(t.shape, np.nan)
    if not ok.any():
        return see
    veg = ok & (fv >= 0.5)
    tv = float(np.percentile(t[veg] if veg.sum() >= 10 else t[ok], 2))
    ts = np.full(t.shape, np.nan)
    ts[ok] = (t[ok] - fv[ok] * tv) / (1.0 - fv[ok])
    lo, hi = np.percentile(ts[ok], [1, 99])
    if not hi > lo:
        return see
    see[ok] = np.clip((hi - ts[ok]) / (hi - lo), 0.0, 1.0)
    return see


def dispatch(
    smap: np.ndarray, lst: np.ndarray, ndvi: np.ndarray, cell_ids: np.ndarray
) -> np.ndarray:
    """DisPATCh soil moisture (m3 m-3) on the high-resolution lattice of one day.

    ``smap`` is the coarse value repeated over its cell's pixels, ``cell_ids``
    the coarse cell of each pixel (negative: none). NaN where SMAP is missing.
    """
    sm_lr = np.asarray(smap, np.float64)
    ids = np.asarray(cell_ids, np.int64)
    see = soil_evaporative_efficiency(lst, ndvi)
    out = sm_lr.copy()
    ok = np.isfinite(see) & np.isfinite(sm_lr) & (ids >= 0)
    if ok.any():
        _, inv = np.unique(ids[ok], return_inverse=True)
        n = np.bincount(inv)
        see_cell = np.bincount(inv, see[ok]) / n
        sm_cell = sm_lr[ok]
        good = see_cell[inv] >= SEE_MIN_CELL
        sm_p = np.where(good, sm_cell / np.maximum(see_cell[inv], SEE_MIN_CELL), 0.0)
        out[ok] = sm_cell + sm_p * (see[ok] - see_cell[inv])
    return np.where(np.isfinite(sm_lr), np.clip(out, *SM_RANGE), np.nan)


def dispatch_days(plan: Any, days: Sequence[dt.date], out: str | Path) -> Path:
    """Map DisPATCh over the plan's grid for ``days`` from the inputs the ensembles read.

    Reads every tile's feature block (``pipeline.run.tile.tile_features``:
    the same readers, resampling and static stack as the maps), assembles the
    day over the whole grid (the end members are scene-wide) and writes a
    Zarr v2 store with ``soil_moisture`` (time, lat, lon) that
    ``truth.score_world`` can score. Land pixels only (water, urban: NaN).
    For evaluation on a synthetic region: the whole grid is held in memory.
    """
    import pandas as pd
    import xarray as xr

    from grids.mask import LAND
    from models.features import FEATURE_NAMES
    from pipeline.evaluate.truth import ease_m09_cell_ids
    from pipeline.evaluate.zarrio import write_zarr_v2
    from pipeline.run.day import _with_static
    from pipeline.run.static import land_tiles
    from pipeline.run.tile import tile_features

    grid = plan.grid
    h, w = grid.shape
    lat, lon = grid.y_coords(), grid.x_coords()
    ids = ease_m09_cell_ids(lat, lon)
    i_smap, i_lst, i_ndvi = (FEATURE_NAMES.index(v) for v in ("smap", "lst", "ndvi"))
    maps = []
    for day in days:
        dplan = _with_static(plan, day)
        fields = np.full((3, h, w), np.nan, np.float32)
        for tile in land_tiles(dplan):
            feat = tile_features(dplan, tile, day)
            r0, r1, c0, c1 = tile.window
            land = feat.surface == LAND
            for k, i in enumerate((i_smap, i_lst, i_ndvi)):
                fields[k, r0:r1, c0:c1] = np.where(land, feat.x[i], np.nan)
        maps.append(dispatch(fields[0], fields[1], fields[2], ids).astype(np.float32))
    ds = xr.Dataset(
        {"soil_moisture": (("time", "lat", "lon"), np.stack(maps))},
        coords={"time": pd.to_datetime(list(days)), "lat": lat, "lon": lon},
    )
    path = Path(out)
    write_zarr_v2(ds, path)
    return path


def sample_stations(store: str | Path, rows: Any) -> np.ndarray:
    """The map's value at each row's (date, row, col) pixel (``row``/``col`` on the map grid).

    NaN where the date is not in the store or the pixel is outside it.
    """
    import pandas as pd

    from pipeline.evaluate.zarrio import open_zarr_v2

    da = open_zarr_v2(Path(store))["soil_moisture"]
    times = pd.to_datetime(da["time"].values)
    h, w = da.shape[1:]
    out = np.full(len(rows), np.nan)
    dates = pd.to_datetime(rows["date"]).to_numpy()
    r = rows["row"].to_numpy(np.int64)
    c = rows["col"].to_numpy(np.int64)
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    for t, day in enumerate(times):
        sel = np.flatnonzero(inside & (dates == np.datetime64(day)))
        if sel.size:
            values = np.asarray(da.isel(time=t).values)
            out[sel] = values[r[sel], c[sel]]
    return out
