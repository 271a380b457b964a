"""CHIRPS daily precipitation (UCSB CHC), mm/day on 0.05 degree cells, EPSG:4326.

Version 2.0: one GeoTIFF per day ``chirps-v2.0.YYYY.MM.DD.tif`` (or ``.tif.gz`` as UCSB
serves them; read through GDAL's /vsigzip/), or one NetCDF per year
``chirps-v2.0.YYYY.days_p05.nc`` (variable ``precip`` (time, latitude, longitude), read
with h5py). Version 3.0 (60 S - 60 N): daily final files
``chirps-v3.0.<rnl|sat>.YYYY.MM.DD.tif`` or their cloud-optimised twins ``... .cog``
(the same GeoTIFF format: float32, nodata -9999), yearly
``chirps-v3.0.<rnl|sat>.YYYY.days_p05.nc``; ``rnl`` is disaggregated to days with ERA5,
``sat`` with IMERG. The extent comes from each file (global files and regional crops both
work). Nodata (-9999) becomes NaN. Negative values: the range rule of
``pipeline.sources.base`` (isolated ones NaN, else ``OutOfRangeError``). No temporal
padding: a missing day is missing.

One day with files of several versions: ``version`` chooses (``"2.0"`` or ``"3.0"``);
left None, 2.0 is preferred (what the models were trained on), then 3.0 ``rnl``, then
``sat``. The provenance names the product of the file read (``CHIRPS-2.0``,
``CHIRPS-3.0-rnl``, ...).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grids import Grid
from pipeline.sources.base import (
    DEFAULT_MARGIN_PIXELS,
    DEFAULT_RANGE_TOLERANCE,
    Bounds,
    CorruptFileError,
    MissingInputError,
    NativeRaster,
    Provenance,
    SchemaError,
    apply_physical_range,
    range_note,
    window_rows_cols,
)
from pipeline.sources.raster import is_geographic_wgs84, paste

PRODUCT = "CHIRPS-2.0"
VARIABLE = "precip"
VERSIONS = ("2.0", "3.0")
DAILY_RE = re.compile(
    r"^chirps-v(?P<ver>2\.0|3\.0)\.(?:(?P<flavor>rnl|sat)\.)?"
    r"(?P<y>\d{4})\.(?P<m>\d{2})\.(?P<d>\d{2})\.(?P<ext>tif|cog)(?P<gz>\.gz)?$"
)
YEARLY_RE = re.compile(
    r"^chirps-v(?P<ver>2\.0|3\.0)\.(?:(?P<flavor>rnl|sat)\.)?(?P<y>\d{4})\.days_p05\.nc$"
)
CRS_DESC = "geographic WGS84 (EPSG:4326)"


@dataclass
class ChirpsIndex:
    """Daily GeoTIFFs by date and yearly NetCDFs by year."""

    daily: dict[dt.date, str] = field(default_factory=dict)
    yearly: dict[int, str] = field(default_factory=dict)


def _rank(m: re.Match[str], version: str | None) -> tuple[int, int, int] | None:
    """Preference of a matched file name (lower wins), None when ``version`` excludes it."""
    if version is not None and m["ver"] != version:
        return None
    gz, ext = m.groupdict().get("gz"), m.groupdict().get("ext")
    ext_rank = 2 if gz else (1 if ext == "cog" else 0)
    return (VERSIONS.index(m["ver"]), 1 if m["flavor"] == "sat" else 0, ext_rank)


def product_of(path: str | os.PathLike[str]) -> str:
    """The product a CHIRPS file name denotes: ``CHIRPS-2.0``, ``CHIRPS-3.0-rnl``, ..."""
    name = os.path.basename(path)
    m = DAILY_RE.match(name) or YEARLY_RE.match(name)
    if m is None or m["ver"] == "2.0":
        return PRODUCT
    return f"CHIRPS-{m['ver']}" + (f"-{m['flavor']}" if m["flavor"] else "")


def index_files(paths: Iterable[str | os.PathLike[str]], version: str | None = None) -> ChirpsIndex:
    """Index CHIRPS files by name; one file per day and year (see the module docstring).

    For one day: version 2.0 before 3.0 (unless ``version`` picks one), ``rnl`` before
    ``sat``, ``.tif`` before ``.cog`` before ``.tif.gz``.
    """
    if version is not None and version not in VERSIONS:
        raise ValueError(f"CHIRPS version {version!r}: one of {', '.join(VERSIONS)}")
    idx = ChirpsIndex()
    day_rank: dict[dt.date, tuple[int, int, int]] = {}
    year_rank: dict[int, tuple[int, int, int]] = {}
    for p in paths:
        name = os.path.basename(p)
        if (m := DAILY_RE.match(name)) is not None:
            try:
                day = dt.date(int(m["y"]), int(m["m"]), int(m["d"]))
            except ValueError:
                continue
            rank = _rank(m, version)
            if rank is not None and (day not in day_rank or rank < day_rank[day]):
                idx.daily[day], day_rank[day] = str(p), rank
        elif (m := YEARLY_RE.match(name)) is not None:
            year = int(m["y"])
            rank = _rank(m, version)
            if rank is not None and (year not in year_rank or rank < year_rank[year]):
                idx.yearly[year], year_rank[year] = str(p), rank
    return idx


def scan(root: str | os.PathLike[str], version: str | None = None) -> ChirpsIndex:
    """Every CHIRPS file under ``root`` (one directory walk)."""
    found: list[str] = []
    for dirpath, _dirs, files in os.walk(root):
        found.extend(os.path.join(dirpath, f) for f in files if f.startswith("chirps-v"))
    return index_files(found, version)


def read_chirps_tif(
    path: str | os.PathLike[str],
    bounds: Bounds | None = None,
    *,
    band: int = 1,
    date: dt.date | None = None,
    margin: int = DEFAULT_MARGIN_PIXELS,
    range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
) -> NativeRaster:
    """Precipitation (mm/day) of a CHIRPS GeoTIFF band on its own lattice."""
    from pipeline.sources.raster import band_info

    info = band_info(path, is_geographic_wgs84, CRS_DESC)
    rc = window_rows_cols(info.grid, bounds, margin)
    if rc is None:
        raise MissingInputError(path, f"file extent does not cover {bounds}", variable=VARIABLE)
    window = info.grid.window(*rc)
    out = np.full(window.shape, np.nan, dtype=np.float64)
    paste(path, window, out, crs_ok=is_geographic_wgs84, crs_desc=CRS_DESC, band=band)
    if info.nodata is None:
        out[out == -9999.0] = np.nan
    data = (out * info.scale + info.offset).astype(np.float32)
    data, n = apply_physical_range(data, VARIABLE, path, tolerance=range_tolerance)
    prov = Provenance(VARIABLE, (str(path),), product_of(path), date, 1, 0, range_note(n, VARIABLE))
    return NativeRaster(window, data, prov, info.grid, (rc[0], rc[2]))


def _snap(res: float) -> float:
    """Cell size from float32 coordinates, rounded to 1e-6 degree (0.05 stays 0.05)."""
    return round(res, 6)


def _snap_edge(edge: float, res: float) -> float:
    """An edge computed from float32 centres, snapped to the lattice when within 1e-3 cell."""
    k = round(edge / res)
    return k * res if abs(edge / res - k) < 1e-3 else edge


def _nc_time_origin(units: str, path: object) -> dt.date:
    m = re.match(r"\s*days since (\d{4})-(\d{1,2})-(\d{1,2})", units)
    if m is None:
        raise SchemaError(path, f"time units {units!r} are not 'days since YYYY-MM-DD'")
    return dt.date(int(m[1]), int(m[2]), int(m[3]))


def _attr(ds: Any, name: str, default: Any = None) -> Any:
    v = ds.attrs.get(name, default)
    if isinstance(v, bytes | np.bytes_):
        return bytes(v).decode()
    if isinstance(v, np.ndarray) and v.size == 1:
        return v.reshape(-1)[0]
    return v


def read_chirps_nc(
    path: str | os.PathLike[str],
    date: dt.date,
    bounds: Bounds | None = None,
    *,
    margin: int = DEFAULT_MARGIN_PIXELS,
    range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
) -> NativeRaster:
    """Precipitation (mm/day) of ``date`` from a yearly CHIRPS NetCDF (h5py, windowed)."""
    import h5py

    if not Path(path).exists():
        raise MissingInputError(path, "file does not exist", variable=VARIABLE, date=date)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError(path, f"not a readable NetCDF-4/HDF5 file: {exc}") from exc
    with f:
        for name in ("precip", "latitude", "longitude", "time"):
            if name not in f:
                raise SchemaError(path, f"variable {name!r} is missing")
        lat = np.asarray(f["latitude"][:], dtype=np.float64)
        lon = np.asarray(f["longitude"][:], dtype=np.float64)
        origin = _nc_time_origin(str(_attr(f["time"], "units", "")), path)
        times = np.asarray(f["time"][:], dtype=np.float64)
        hit = np.nonzero(np.round(times).astype(np.int64) == (date - origin).days)[0]
        if hit.size == 0:
            raise MissingInputError(
                path, "day not in this yearly file", variable=VARIABLE, date=date
            )
        if lat.size < 2 or lon.size < 2:
            raise SchemaError(path, "latitude/longitude need at least two values")
        rx = _snap(float(lon[-1] - lon[0]) / (lon.size - 1))
        ry = _snap(float(abs(lat[-1] - lat[0])) / (lat.size - 1))
        ascending = lat[1] > lat[0]
        west = _snap_edge(float(lon.min()) - rx / 2, rx)
        north = _snap_edge(float(lat.max()) + ry / 2, ry)
        grid = Grid("EPSG:4326", (rx, 0.0, west, 0.0, -ry, north), (lat.size, lon.size))
        rc = window_rows_cols(grid, bounds, margin)
        if rc is None:
            raise MissingInputError(path, f"file extent does not cover {bounds}", variable=VARIABLE)
        r0, r1, c0, c1 = rc
        if ascending:  # north-up rows r0..r1 are file rows n-r1..n-r0, reversed
            n = lat.size
            block = f["precip"][int(hit[0]), n - r1 : n - r0, c0:c1][::-1, :]
        else:
            block = f["precip"][int(hit[0]), r0:r1, c0:c1]
        ds = f["precip"]
        fills = [_attr(ds, "_FillValue"), _attr(ds, "missing_value"), -9999.0]
        data = np.asarray(block, dtype=np.float32)
        for fv in fills:
            if fv is not None:
                data[data == np.float32(fv)] = np.nan
    data, nbad = apply_physical_range(data, VARIABLE, path, tolerance=range_tolerance)
    prov = Provenance(
        VARIABLE, (str(path),), product_of(path), date, 1, 0, range_note(nbad, VARIABLE)
    )
    return NativeRaster(grid.window(r0, r1, c0, c1), data, prov, grid, (r0, c0))


class ChirpsSource:
    """CHIRPS daily precipitation from a directory tree (daily GeoTIFFs or yearly NetCDF)."""

    variable = VARIABLE

    def __init__(
        self,
        root: str | os.PathLike[str] | ChirpsIndex,
        *,
        margin: int = DEFAULT_MARGIN_PIXELS,
        range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
        where: str | None = None,
        version: str | None = None,
    ) -> None:
        if isinstance(root, ChirpsIndex):
            self._index, self._where = root, where or "<index>"
        else:
            self._index, self._where = scan(root, version), where or str(root)
        self.margin = margin
        self.range_tolerance = range_tolerance

    def _file(self, date: dt.date | None) -> str | None:
        if date is None:
            raise ValueError("CHIRPS is daily: a date is required")
        return self._index.daily.get(date) or self._index.yearly.get(date.year)

    def available(self, date: dt.date | None) -> Provenance | None:
        p = self._file(date)
        return None if p is None else Provenance(VARIABLE, (p,), product_of(p), date, 1, 0)

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        p = self._file(date)
        if p is None or date is None:
            raise MissingInputError(
                f"{self._where}/**/chirps-v2.0.{date:%Y.%m.%d}.tif[.gz], "
                f"chirps-v3.0.<rnl|sat>.{date:%Y.%m.%d}.<tif|cog> or "
                f"chirps-v<2.0|3.0>[.rnl|.sat].{date:%Y}.days_p05.nc",
                "no CHIRPS file for this day",
                variable=VARIABLE,
                date=date,
            )
        if p.endswith(".nc"):
            return read_chirps_nc(
                p, date, bounds, margin=self.margin, range_tolerance=self.range_tolerance
            )
        return read_chirps_tif(
            p, bounds, date=date, margin=self.margin, range_tolerance=self.range_tolerance
        )
