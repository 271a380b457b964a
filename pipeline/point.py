"""Time series of the cube at points, with SMAP and the decoded quality flags beside.

The cube is opened with plain ``xarray.open_zarr`` (what users do) and each point is
read as one outer selection (its pixel, the days asked for), so only the chunks that
hold that pixel on those days are fetched: one chunk per day and variable with the
cube's one-day, square spatial chunks. The pixel is the one containing the point
(the floor rule of ``grids.Grid.xy_to_rowcol``, i.e. the pixel whose centre is
nearest). SMAP is the SPL3SMP_E value the pipeline samples onto that pixel
(``pipeline.sources.sample``: the 9 km cell containing the pixel centre), read from
the configured ``[sources]``; NaN on days without a granule.

Columns: ``name``, ``lat``, ``lon`` (as asked), ``pixel_lat``/``pixel_lon`` (or
``pixel_x``/``pixel_y`` on a projected grid), ``date``, ``day_status``, every other
(time, y, x) variable of the cube (``soil_moisture``, ``soil_moisture_sd``, ...),
``smap``, the raw ``quality_flag`` and one boolean column per flag meaning.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grids import Grid, normalize_crs
from pipeline.errors import SmdownError

OUT_SUFFIXES = (".csv", ".parquet")


class PointError(SmdownError):
    """A point, a points file or an output of ``smdown point`` is wrong."""


@dataclass(frozen=True)
class Point:
    name: str
    lat: float
    lon: float


def read_points(path: str | os.PathLike[str]) -> list[Point]:
    """Points of a CSV file with a header ``name,lat,lon`` (``PointError`` naming the line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise PointError(f"{p}: cannot read the points file ({exc.strerror or exc})") from exc
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise PointError(f"{p}: empty; expected a header 'name,lat,lon' and one point a line")
    header = [h.strip().lower() for h in rows[0]]
    missing = [k for k in ("name", "lat", "lon") if k not in header]
    if missing:
        raise PointError(
            f"{p}: header {','.join(rows[0])!r} lacks {', '.join(missing)}; expected 'name,lat,lon'"
        )
    i_name, i_lat, i_lon = (header.index(k) for k in ("name", "lat", "lon"))
    points: list[Point] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        try:
            lat, lon = float(row[i_lat]), float(row[i_lon])
        except (IndexError, ValueError) as exc:
            raise PointError(f"{p}, line {line_no}: lat/lon {row!r} are not numbers") from exc
        check_latlon(lat, lon, f"{p}, line {line_no}")
        points.append(Point(row[i_name].strip() if i_name < len(row) else "", lat, lon))
    if not points:
        raise PointError(f"{p}: no points below the header 'name,lat,lon'")
    return points


def check_latlon(lat: float, lon: float, where: str) -> None:
    if not (math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180):
        raise PointError(
            f"{where}: lat {lat}, lon {lon} are not degrees (lat -90..90, lon -180..180)"
        )


def open_dataset(url: str, storage_options: Mapping[str, Any] | None = None) -> Any:
    """The cube as xarray reads it (lazy, CF-decoded, no dask)."""
    import xarray as xr

    try:
        return xr.open_zarr(
            url, consolidated=True, chunks=None, storage_options=dict(storage_options or {}) or None
        )
    except (OSError, KeyError, ValueError) as exc:
        raise PointError(f"{url}: cannot open the cube ({exc})") from exc


def cube_grid(ds: Any) -> Grid:
    """The cube's grid from its CF grid mapping (``spatial_ref``) and data shape."""
    try:
        gm = ds["spatial_ref"].attrs
        c, a, b, f, d, e = (float(v) for v in str(gm["GeoTransform"]).split())
        sm = ds["soil_moisture"]
        return Grid(normalize_crs(gm["crs_wkt"]), (a, b, c, d, e, f), tuple(sm.shape[1:]))
    except (KeyError, ValueError) as exc:
        raise PointError(f"not an smdown cube: {exc}") from exc


def pixel_of(grid: Grid, lat: float, lon: float) -> tuple[int, int] | None:
    """(row, col) of the pixel containing (lat, lon), or None outside the grid."""
    x, y = lon, lat
    if not grid.is_geographic:
        from pyproj import Transformer

        x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(lon, lat)
    row, col = grid.xy_to_rowcol(x, y)
    if not bool(grid.contains_rowcol(row, col)):
        return None
    return int(row), int(col)


def _series_vars(ds: Any) -> tuple[list[str], tuple[str, str]]:
    dims = tuple(ds["soil_moisture"].dims)
    names = [n for n, v in ds.data_vars.items() if tuple(v.dims) == dims and n != "quality_flag"]
    return names, (str(dims[1]), str(dims[2]))


def point_series(
    ds: Any,
    point: Point,
    start: dt.date,
    end: dt.date,
    *,
    smap_at: Callable[[dt.date, Grid], float] | None = None,
    published_only: bool = True,
) -> pd.DataFrame:
    """The cube's series at ``point`` over [start, end] (one row per published day)."""
    grid = cube_grid(ds)
    rc = pixel_of(grid, point.lat, point.lon)
    if rc is None:
        w, s, e, n = grid.bounds
        raise PointError(
            f"point {point.name or ''} (lat {point.lat}, lon {point.lon}) is outside the "
            f"cube's grid (x {w:.4f}..{e:.4f}, y {s:.4f}..{n:.4f}); pick a point inside it"
        )
    row, col = rc
    names, (ydim, xdim) = _series_vars(ds)
    sel = ds[[*names, "quality_flag", "day_status"]].sel(
        time=slice(start.isoformat(), end.isoformat())
    )
    sel = sel.isel({ydim: row, xdim: col}).load()
    times = pd.DatetimeIndex(sel["time"].values)
    status = np.asarray(sel["day_status"].values)
    keep = status > 0 if published_only else np.ones(len(times), bool)
    pixel = grid.window(row, row + 1, col, col + 1)
    cx, cy = (float(v[0, 0]) for v in pixel.pixel_centres())
    xname, yname = ("pixel_lon", "pixel_lat") if grid.is_geographic else ("pixel_x", "pixel_y")
    out: dict[str, Any] = {
        "name": point.name,
        "lat": point.lat,
        "lon": point.lon,
        yname: cy,
        xname: cx,
        "date": times[keep].date,
        "day_status": status[keep].astype(np.int8),
    }
    for var in names:
        out[var] = np.asarray(sel[var].values)[keep]
    days = list(times[keep].date)
    out["smap"] = np.array(
        [smap_at(d, pixel) if smap_at is not None else np.nan for d in days], dtype=np.float32
    )
    qf = sel["quality_flag"]
    raw = np.asarray(qf.values, dtype=np.float64)[keep]
    computed = np.isfinite(raw)
    out["quality_flag"] = pd.array(np.where(computed, raw, 0).astype(np.int64), dtype="Int64")
    out["quality_flag"][~computed] = pd.NA
    masks = [int(m) for m in np.atleast_1d(qf.attrs.get("flag_masks", []))]
    meanings = str(qf.attrs.get("flag_meanings", "")).split()
    bits = np.where(computed, raw, 0).astype(np.int64)
    for m, meaning in zip(masks, meanings, strict=False):
        out[meaning] = (bits & m) != 0
    frame = pd.DataFrame(out)
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def smap_sampler(catalog: Any) -> Callable[[dt.date, Grid], float]:
    """SMAP at a one-pixel target grid, as the pipeline samples it (NaN when absent)."""
    from pipeline.sources.base import MissingInputError
    from pipeline.sources.sample import sample

    source = catalog.sources("maps")["smap"]

    def at(date: dt.date, pixel: Grid) -> float:
        if source.available(date) is None:
            return float("nan")
        w, s, e, n = pixel.bounds
        if not pixel.is_geographic:
            from pyproj import Transformer

            t = Transformer.from_crs(pixel.crs, "EPSG:4326", always_xy=True)
            w, s, e, n = t.transform_bounds(w, s, e, n)
        try:
            native = source.native(date, (w, s, e, n))
        except MissingInputError:  # a swath gap: no retrieval over the point that day
            return float("nan")
        return float(sample(native, pixel)[0, 0])

    return at


def series(
    url: str,
    points: Sequence[Point],
    start: dt.date,
    end: dt.date,
    *,
    storage_options: Mapping[str, Any] | None = None,
    smap_at: Callable[[dt.date, Grid], float] | None = None,
) -> pd.DataFrame:
    """Every point's series, one table (points in the order given)."""
    if end < start:
        raise PointError(f"--end {end} is before --start {start}")
    ds = open_dataset(url, storage_options)
    frames = [point_series(ds, p, start, end, smap_at=smap_at) for p in points]
    return pd.concat(frames, ignore_index=True)


def check_out(out: str | os.PathLike[str]) -> Path:
    """The output path, refused before any reading when its suffix or folder is wrong."""
    path = Path(out)
    if path.suffix.lower() not in OUT_SUFFIXES:
        raise PointError(f"--out {path}: suffix must be .csv or .parquet")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise PointError(f"--out {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PointError(f"--out {path}: folder {folder} is not writable; choose another --out")
    return path


def write_series(frame: pd.DataFrame, out: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV or Parquet (by suffix), complete or not at all."""
    path = check_out(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%d", float_format="%.6g")
        else:
            frame.to_parquet(tmp, index=False)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PointError(f"--out {path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
