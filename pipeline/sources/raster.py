"""GeoTIFF/COG/VRT access shared by the readers: open with clear errors, check the CRS,
and paste the part of a file that overlaps a window of the product's lattice.

Only the overlapping block is read (rasterio windowed read), so a 90 m map
tile or a station's pixel never loads a whole global mosaic.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grids import Grid
from grids.named import MODIS_SPHERE_RADIUS
from pipeline.sources.base import CorruptFileError, MissingInputError, WrongCRSError

CRSCheck = Callable[[Any], bool]
"""Takes a ``pyproj.CRS``; True when it is the product's CRS."""

LATTICE_TOLERANCE_PX = 0.01


def gdal_path(path: str | os.PathLike[str]) -> str:
    """The path GDAL opens: ``.gz`` files through ``/vsigzip/``."""
    p = str(path)
    return f"/vsigzip/{p}" if p.endswith(".gz") and not p.startswith("/vsi") else p


def _proj_dict(crs: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return dict(crs.to_dict())


def is_geographic_wgs84(crs: Any) -> bool:
    """Geographic lat/lon on the WGS84 (or equivalent) ellipsoid."""
    if not crs.is_geographic:
        return False
    a = crs.ellipsoid.semi_major_metre if crs.ellipsoid is not None else 0.0
    return abs(a - 6378137.0) < 1.0


def is_modis_sinusoidal(crs: Any) -> bool:
    """The MODIS sinusoidal projection on the sphere R = 6371007.181 m."""
    d = _proj_dict(crs)
    if d.get("proj") != "sinu":
        return False
    r = d.get("R", d.get("a"))
    if r is None and crs.ellipsoid is not None:
        r = crs.ellipsoid.semi_major_metre
    on_sphere = r is not None and abs(float(r) - MODIS_SPHERE_RADIUS) < 1.0
    return on_sphere and float(d.get("lon_0", 0)) == 0


def is_homolosine(crs: Any) -> bool:
    """Interrupted Goode Homolosine (ESRI:54052), the SoilGrids 2.0 projection."""
    return _proj_dict(crs).get("proj") == "igh"


@dataclass(frozen=True)
class BandInfo:
    """What the file says about its single band: dtype, nodata, GDAL scale/offset, tags."""

    path: str
    dtype: str
    nodata: float | None
    scale: float
    offset: float
    tags: dict[str, str]
    grid: Grid

    @property
    def is_float(self) -> bool:
        return np.dtype(self.dtype).kind == "f"


def _open(path: str | os.PathLike[str]) -> Any:
    import rasterio
    from rasterio.errors import RasterioIOError

    p = Path(path)
    if not str(path).startswith("/vsi") and not p.exists():
        raise MissingInputError(p, "file does not exist")
    try:
        return rasterio.open(gdal_path(path))
    except RasterioIOError as exc:
        raise CorruptFileError(path, f"not a readable raster: {exc}") from exc


def band_info(
    path: str | os.PathLike[str], crs_ok: CRSCheck, crs_desc: str, src: Any = None
) -> BandInfo:
    """Open ``path`` (or use ``src``), check its CRS and return its band metadata."""
    from pyproj import CRS

    own = src is None
    ds = _open(path) if own else src
    try:
        if ds.crs is None:
            raise WrongCRSError(path, f"raster has no CRS; expected {crs_desc}")
        crs = CRS.from_user_input(ds.crs.to_wkt())
        if not crs_ok(crs):
            raise WrongCRSError(path, f"CRS is {crs.name!r}; expected {crs_desc}")
        grid = Grid.from_affine(crs.to_wkt(), ds.transform, (ds.height, ds.width))
        return BandInfo(
            path=str(path),
            dtype=str(ds.dtypes[0]),
            nodata=None if ds.nodata is None else float(ds.nodata),
            scale=float(ds.scales[0]) if ds.scales and ds.scales[0] is not None else 1.0,
            offset=float(ds.offsets[0]) if ds.offsets and ds.offsets[0] is not None else 0.0,
            tags={**ds.tags(), **ds.tags(1)},
            grid=grid,
        )
    finally:
        if own:
            ds.close()


def lattice_offset(window: Grid, file_grid: Grid, path: object) -> tuple[int, int]:
    """(row, col) of the file's first pixel in ``window``'s pixel space.

    The file must share the window's lattice (same cell size, origin on a
    whole pixel within 1 % of a cell); otherwise ``WrongCRSError``.
    """
    wa, _, wc, _, we, wf = window.transform
    fa, _, fc, _, fe, ff = file_grid.transform
    if not (math.isclose(wa, fa, rel_tol=1e-6) and math.isclose(we, fe, rel_tol=1e-6)):
        raise WrongCRSError(
            path, f"cell size ({fa:g}, {fe:g}) differs from the product's ({wa:g}, {we:g})"
        )
    col = (fc - wc) / wa
    row = (ff - wf) / we
    if abs(col - round(col)) > LATTICE_TOLERANCE_PX or abs(row - round(row)) > LATTICE_TOLERANCE_PX:
        raise WrongCRSError(
            path, f"origin ({fc:.3f}, {ff:.3f}) is not on the product's pixel lattice"
        )
    return round(row), round(col)


def paste(
    path: str | os.PathLike[str],
    window: Grid,
    out: np.ndarray,
    *,
    crs_ok: CRSCheck,
    crs_desc: str,
    band: int = 1,
    keep_nodata: bool = False,
) -> BandInfo | None:
    """Read the part of ``path`` overlapping ``window`` into ``out`` (float64, NaN-filled).

    Stored values are copied as they are (no scale); the file's nodata becomes
    NaN (unless ``keep_nodata``: QC layers). Returns the band metadata, or None when the
    file does not overlap.
    """
    from rasterio.errors import RasterioError
    from rasterio.windows import Window

    with _open(path) as ds:
        info = band_info(path, crs_ok, crs_desc, src=ds)
        r_off, c_off = lattice_offset(window, info.grid, path)
        # Overlap of window rows/cols [0, H) x [0, W) with the file's [r_off, r_off + h) ...
        r0, r1 = max(0, r_off), min(window.height, r_off + info.grid.height)
        c0, c1 = max(0, c_off), min(window.width, c_off + info.grid.width)
        if r1 <= r0 or c1 <= c0:
            return None
        win = Window(c0 - c_off, r0 - r_off, c1 - c0, r1 - r0)  # type: ignore[call-arg]
        try:
            block = ds.read(band, window=win)
        except RasterioError as exc:
            raise CorruptFileError(path, f"cannot read pixels (truncated?): {exc}") from exc
    vals = block.astype(np.float64)
    if info.nodata is not None and not keep_nodata and not math.isnan(info.nodata):
        vals[block == np.array(info.nodata).astype(block.dtype)] = np.nan
    out[r0:r1, c0:c1] = vals
    return info


def read_file_window(
    path: str | os.PathLike[str],
    bounds: tuple[float, float, float, float] | None,
    *,
    crs_ok: CRSCheck,
    crs_desc: str,
    margin: int,
    variable: str,
) -> tuple[Grid, np.ndarray, BandInfo]:
    """Read the window of a single-file mosaic covering ``bounds`` (degrees) plus a margin.

    Returns (window grid, float64 raw values with NaN nodata, band metadata).
    Raises ``MissingInputError`` when the file does not cover the bounds.
    """
    from pipeline.sources.base import window_rows_cols

    info = band_info(path, crs_ok, crs_desc)
    rc = window_rows_cols(info.grid, bounds, margin)
    if rc is None:
        raise MissingInputError(
            path, f"file extent {info.grid.bounds} does not cover {bounds}", variable=variable
        )
    window = info.grid.window(*rc)
    out = np.full(window.shape, np.nan, dtype=np.float64)
    paste(path, window, out, crs_ok=crs_ok, crs_desc=crs_desc)
    return window, out, info


def effective_scale(
    info: BandInfo, default_scale: float, default_offset: float
) -> tuple[float, float]:
    """Scale and offset to apply: none for float layers (already scaled) unless GDAL
    metadata says otherwise; GDAL band scale/offset when set; else the product's."""
    has_gdal = not (info.scale == 1.0 and info.offset == 0.0)
    if has_gdal:
        return info.scale, info.offset
    if info.is_float:
        return 1.0, 0.0
    return default_scale, default_offset
