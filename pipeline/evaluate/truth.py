"""Whole-map scoring against a known 90 m truth (synthetic worlds only).

Station metrics say how well a model does where the stations are; on a
synthetic world the true 90 m field is known everywhere, so spatial skill can
be measured directly. For every compared field (the model, SMAP on the 90 m
lattice when given, and the ideal 9 km product = the truth's own cell mean) we
report, over all pixel-days where truth and every field are finite:

- ``rmse`` (m3 m-3), ``bias`` (m3 m-3) and Pearson ``r`` against the truth;
- ``subcell_recovered``: the fraction of the truth's variance *inside* SMAP
  9 km cells that the field recovers,

      1 - sum_{t,c} sum_{i in c} (d_i - mean_c d)^2 / sum_{t,c} sum_{i in c} (y_i - mean_c y)^2

  with ``y`` the truth and ``d = y - field`` the error, summed over days ``t``
  and EASE-Grid 2.0 M09 cells ``c``. A perfect field scores 1; a field that is
  constant within each cell (SMAP itself, or the ideal cell mean) scores 0
  exactly, whatever its cell values, because its error keeps the whole
  sub-cell variance of the truth; it is negative when the field adds sub-cell
  noise. A cell-constant offset does not change it: it measures the sub-cell
  pattern only, RMSE measures the rest.

The work is one day at a time on whole 2-D blocks (bincount per cell), so a
cube larger than memory streams from Zarr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from grids.named import named_grid
from pipeline.errors import SmdownError
from pipeline.evaluate.zarrio import open_zarr_v2

EASE2_M09 = named_grid("ease2-m09")
"""The global 9 km EASE-Grid 2.0 of SPL3SMP_E (NSIDC EASE2_M09km.gpd)."""

IDEAL_9KM = "ideal 9 km (truth cell mean)"
MODEL_ALL_DAYS = "model (every pixel-day)"
"""The model scored on all its pixel-days, not only where SMAP has a value."""
"""Name of the reference field: the truth averaged over each SMAP cell."""


class TruthError(SmdownError):
    """The truth or predicted cube cannot be read or does not line up."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True, slots=True)
class MapScores:
    """Scores of one field against the truth over the common pixel-days.

    rmse and bias in m3 m-3; r and subcell_recovered dimensionless;
    n_pixel_days counted pairs; n_cell_days (day, cell) groups with >= 2 pixels.
    """

    rmse: float
    bias: float
    r: float
    subcell_recovered: float
    n_pixel_days: int
    n_cell_days: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def ease_m09_xy(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EASE-Grid 2.0 (EPSG:6933) x, y (m) of every (lat, lon) pixel centre, (len(lat), len(lon))."""
    from pyproj import Transformer

    lon2, lat2 = np.meshgrid(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    to_ease = Transformer.from_crs("EPSG:4326", EASE2_M09.crs, always_xy=True)
    x, y = to_ease.transform(lon2, lat2)
    return np.asarray(x), np.asarray(y)


def ease_m09_cell_ids(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The EASE-Grid 2.0 M09 cell (row * 3856 + col) of each (lat, lon) pixel centre, int64.

    ``lat`` and ``lon`` are the 1-D centre coordinates (degrees) of a
    geographic lattice; the result has shape (len(lat), len(lon)), -1 off the grid.
    """
    x, y = ease_m09_xy(lat, lon)
    row, col = EASE2_M09.xy_to_rowcol(x, y)
    ids = row * EASE2_M09.width + col
    return np.where(EASE2_M09.contains_rowcol(row, col), ids, -1).astype(np.int64)


def smap_on_lattice(
    smap_root: str | Path,
    times: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    quality: str = "recommended",
) -> xr.DataArray:
    """SPL3SMP_E (AM/PM mean, m3 m-3) on a 90 m lattice: each pixel takes its 9 km cell's value.

    Read with ``pipeline.sources.smap.SmapSource`` from the granules under
    ``smap_root``; a day without a granule is all NaN. Lazy: one dask task per day.
    """
    import dask
    import dask.array as da

    from pipeline.sources.base import MissingInputError
    from pipeline.sources.smap import SmapSource

    src = SmapSource(smap_root, quality=quality)  # type: ignore[arg-type]
    x, y = ease_m09_xy(lat, lon)
    pad = 0.2  # degrees: a 9 km cell around the edges
    bounds = (
        float(np.min(lon)) - pad,
        float(np.min(lat)) - pad,
        float(np.max(lon)) + pad,
        float(np.max(lat)) + pad,
    )
    shape = (len(lat), len(lon))

    def one_day(t: np.datetime64) -> np.ndarray:
        out = np.full(shape, np.nan, np.float32)
        try:
            nat = src.native(pd.Timestamp(t).date(), bounds)
        except MissingInputError:
            return out
        row, col = nat.grid.xy_to_rowcol(x, y)
        inside = nat.grid.contains_rowcol(row, col)
        out[inside] = nat.data[row[inside], col[inside]]
        return out

    days = [da.from_delayed(dask.delayed(one_day)(t), shape=shape, dtype=np.float32) for t in times]
    data = da.stack(days) if days else da.zeros((0, *shape), dtype=np.float32)
    return xr.DataArray(
        data,
        dims=("time", "lat", "lon"),
        coords={"time": times, "lat": lat, "lon": lon},
        attrs={"units": "m3 m-3", "long_name": "SPL3SMP_E soil moisture of the pixel's 9 km cell"},
    )


class _Acc:
    """Running sums for one field: error moments, cross moments, sub-cell variance."""

    def __init__(self, ref: float) -> None:
        self.ref = ref  # subtracted before the moment sums, for float64 stability
        self.n = 0
        self.se = self.see = 0.0
        self.sp = self.spp = self.spy = 0.0
        self.ss_err_within = 0.0

    def add(self, y: np.ndarray, f: np.ndarray, inv: np.ndarray, counts: np.ndarray) -> None:
        yc, fc = y - self.ref, f - self.ref
        e = f - y
        self.n += y.size
        self.se += float(e.sum())
        self.see += float(np.dot(e, e))
        self.sp += float(fc.sum())
        self.spp += float(np.dot(fc, fc))
        self.spy += float(np.dot(fc, yc))
        d = y - f
        dmean = np.bincount(inv, d, counts.size) / counts
        dd = d - dmean[inv]
        self.ss_err_within += float(np.dot(dd, dd))


def score_maps(
    truth: xr.DataArray,
    fields: Mapping[str, xr.DataArray],
    cell_id: xr.DataArray | np.ndarray,
    *,
    time_dim: str = "time",
) -> dict[str, MapScores]:
    """Score each field of ``fields`` against ``truth`` on their common finite pixel-days.

    ``truth`` and every field are aligned DataArrays (time, y, x) in m3 m-3 on
    the same lattice; ``cell_id`` gives the 9 km cell of each pixel (y, x),
    negative for none. The ideal 9 km field (:data:`IDEAL_9KM`) is always
    added. Raises ``ValueError`` when shapes differ.
    """
    ids = np.asarray(cell_id, dtype=np.int64)
    for name, field in fields.items():
        if field.shape != truth.shape:
            raise ValueError(f"field {name!r} has shape {field.shape}, truth has {truth.shape}")
    if ids.shape != truth.shape[1:]:
        raise ValueError(f"cell_id has shape {ids.shape}, a day of truth has {truth.shape[1:]}")
    if IDEAL_9KM in fields:
        raise ValueError(f"field name {IDEAL_9KM!r} is reserved")
    names = [*fields, IDEAL_9KM]
    flat_ids = ids.ravel()
    # Compact cell numbers once, so each day's bincounts are as long as the cells present.
    _, compact = np.unique(flat_ids, return_inverse=True)
    n_cells = int(compact.max()) + 1 if compact.size else 0
    accs: dict[str, _Acc] = {}
    sy = syy = 0.0
    ss_truth_within = 0.0
    n_cell_days = 0
    ref = float("nan")
    for t in range(truth.sizes[time_dim]):
        y: np.ndarray = np.asarray(truth.isel({time_dim: t}).values, dtype=np.float64).ravel()
        fs: list[np.ndarray] = [
            np.asarray(fields[n].isel({time_dim: t}).values, dtype=np.float64).ravel()
            for n in fields
        ]
        keep = np.isfinite(y) & (flat_ids >= 0)
        for arr in fs:
            keep &= np.isfinite(arr)
        if not keep.any():
            continue
        y = y[keep]
        fs = [arr[keep] for arr in fs]
        inv = compact[keep]
        n_in_cell = np.bincount(inv, minlength=n_cells)
        counts = np.maximum(n_in_cell, 1).astype(np.float64)
        ycell = np.bincount(inv, y, n_cells) / counts
        fs.append(ycell[inv])  # the ideal 9 km field
        if not accs:
            ref = float(y.mean())
            accs = {n: _Acc(ref) for n in names}
        yc = y - ref
        sy += float(yc.sum())
        syy += float(np.dot(yc, yc))
        dy = y - ycell[inv]
        ss_truth_within += float(np.dot(dy, dy))
        n_cell_days += int((n_in_cell >= 2).sum())
        for n, arr in zip(names, fs, strict=True):
            accs[n].add(y, arr, inv, counts)
    out: dict[str, MapScores] = {}
    nan = float("nan")
    for n in names:
        a = accs.get(n)
        if a is None or a.n == 0:
            out[n] = MapScores(nan, nan, nan, nan, 0, 0)
            continue
        vy = syy / a.n - (sy / a.n) ** 2
        vf = a.spp / a.n - (a.sp / a.n) ** 2
        cov = a.spy / a.n - (a.sp / a.n) * (sy / a.n)
        r = cov / np.sqrt(vf * vy) if vf > 1e-30 and vy > 1e-30 else nan
        rec = 1.0 - a.ss_err_within / ss_truth_within if ss_truth_within > 0 else nan
        out[n] = MapScores(
            rmse=float(np.sqrt(a.see / a.n)),
            bias=a.se / a.n,
            r=float(np.clip(r, -1.0, 1.0)) if np.isfinite(r) else nan,
            subcell_recovered=float(rec),
            n_pixel_days=a.n,
            n_cell_days=n_cell_days,
        )
    return out


def _open(path: Path) -> xr.Dataset:
    try:
        return open_zarr_v2(path)
    except (OSError, ValueError, KeyError) as exc:
        raise TruthError(path, f"cannot open as Zarr: {exc}") from exc


def _open_var(path: Path, candidates: tuple[str, ...]) -> xr.DataArray:
    ds = _open(path)
    for name in candidates:
        if name in ds.data_vars:
            return ds[name]
    if len(ds.data_vars) == 1:
        return ds[next(iter(ds.data_vars))]
    raise TruthError(path, f"none of the variables {list(candidates)} (have {list(ds.data_vars)})")


def _spatial_dims(da: xr.DataArray) -> tuple[str, str]:
    for ydim, xdim in (("lat", "lon"), ("latitude", "longitude"), ("y", "x")):
        if ydim in da.dims and xdim in da.dims:
            return ydim, xdim
    raise ValueError(f"no (lat, lon) or (y, x) dimensions in {da.dims}")


def _open_cube(cube: str | Path, storage_options: Mapping[str, Any] | None) -> xr.Dataset:
    """A published cube (``pipeline.cube.open_cube``: local or s3://), else any Zarr v2 group."""
    from pipeline.cube import open_cube

    url = str(cube)
    try:
        return open_cube(url, storage_options, chunks="zarr")  # type: ignore[no-any-return]
    except (KeyError, ValueError, OSError):
        pass  # not consolidated or not a cube of pipeline.cube: read it as plain Zarr
    if "://" in url and not url.startswith("file://"):
        raise TruthError(cube, "cannot open as a cube (consolidated Zarr v2)")
    return _open(Path(url))


def score_world(
    world: str | Path,
    cube: str | Path,
    *,
    smap_root: str | Path | None = None,
    smap_quality: str = "recommended",
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, MapScores]:
    """Score a predicted cube against ``<world>/truth/soil_moisture_90m.zarr``.

    Fields: the cube's ``soil_moisture`` (``model``); ``SMAP`` on the 90 m
    lattice, from the cube's ``smap`` variable when it has one, else from the
    SPL3SMP_E granules under ``smap_root`` (default ``<world>/SMAP`` when it
    exists), each pixel taking its 9 km cell's value; plus the ideal 9 km
    field, all on the same pixel-days; with SMAP, the model once more on all
    its pixel-days (:data:`MODEL_ALL_DAYS`). Days are those of both truth and
    cube; the cube is matched to the truth's pixel centres to within a quarter
    pixel. No common day or pixel is a :class:`TruthError` naming the cube.
    """
    world = Path(world)
    truth_path = world / "truth" / "soil_moisture_90m.zarr"
    if not truth_path.exists():
        raise TruthError(truth_path, "no synthetic truth here (is this a synthetic world?)")
    truth = _open_var(truth_path, ("soil_moisture", "sm", "truth"))
    cube_ds = _open_cube(cube, storage_options)
    if "soil_moisture" not in cube_ds.data_vars:
        raise TruthError(cube, f"no 'soil_moisture' variable (have {list(cube_ds.data_vars)})")
    fields = {"model": cube_ds["soil_moisture"]}
    if "smap" in cube_ds.data_vars:
        fields["SMAP"] = cube_ds["smap"]
    ydim, xdim = _spatial_dims(truth)
    truth = truth.transpose("time", ydim, xdim)
    times = np.intersect1d(truth["time"].values, cube_ds["time"].values)
    if times.size == 0:
        raise TruthError(cube, f"no day in common with the truth {truth_path}")
    truth = truth.sel(time=times)
    lat, lon = truth[ydim].values, truth[xdim].values
    tol = 0.25 * float(np.min(np.abs(np.diff(lat)))) if lat.size > 1 else 1e-6
    aligned: dict[str, xr.DataArray] = {}
    for name, f in fields.items():
        fy, fx = _spatial_dims(f)
        f = f.rename({fy: ydim, fx: xdim}).transpose("time", ydim, xdim).sel(time=times)
        aligned[name] = f.reindex(
            {ydim: truth[ydim], xdim: truth[xdim]}, method="nearest", tolerance=tol
        )
    if "SMAP" not in aligned:
        root = Path(smap_root) if smap_root is not None else world / "SMAP"
        if root.exists():
            smap = smap_on_lattice(root, times, lat, lon, quality=smap_quality)
            aligned["SMAP"] = smap.rename({"lat": ydim, "lon": xdim})
    ids = ease_m09_cell_ids(lat, lon)
    out = score_maps(truth, aligned, ids)
    if "SMAP" in aligned:
        # SMAP sees a cell on some days only: the model is also scored on all its pixel-days.
        alone = score_maps(truth, {"model": aligned["model"]}, ids)["model"]
        out[MODEL_ALL_DAYS] = alone
    if max(v.n_pixel_days for v in out.values()) == 0:
        raise TruthError(cube, f"no pixel-day where the cube and the truth {truth_path} overlap")
    return out
