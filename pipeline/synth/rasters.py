"""GeoTIFF writing and resampling of the 90 m world onto native lattices.

``CellIndex`` maps every 90 m pixel of the domain to the native cell that
contains its centre (continuous layers: mean of those pixels, by
``np.bincount``); categorical layers are sampled at the pixel that contains
the native cell's centre (``sample_at``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from grids import Grid
from pipeline.synth.spec import PIXELS_PER_DEGREE, global_pixel_origin


class CellIndex:
    """Pixel -> native cell map over a block of native cells (rows r0.., cols c0..).

    ``rows``/``cols`` are the native (row, col) of every domain pixel: 2-D
    arrays (any lattice; sums by ``np.bincount``), or a column vector of rows
    and a row vector of columns, both non-decreasing (a separable lattice such
    as EASE-Grid 2.0 over a lon/lat window; sums by two ``np.add.reduceat``
    passes, several times faster).
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, land: np.ndarray) -> None:
        self.r0 = int(rows.min())
        self.c0 = int(cols.min())
        self.height = int(rows.max()) - self.r0 + 1
        self.width = int(cols.max()) - self.c0 + 1
        self.size = self.height * self.width
        self.shape = land.shape
        r1 = rows.ravel()
        c1 = cols.ravel()
        self.separable = (
            rows.ndim == 2
            and rows.shape == (land.shape[0], 1)
            and cols.shape == (1, land.shape[1])
            and bool(np.all(np.diff(r1) >= 0) and np.all(np.diff(c1) >= 0))
            and len(np.unique(r1)) == self.height
            and len(np.unique(c1)) == self.width
        )
        if self.separable:
            self.row_starts = np.flatnonzero(np.r_[True, np.diff(r1) > 0])
            self.col_starts = np.flatnonzero(np.r_[True, np.diff(c1) > 0])
            self.flat = np.zeros(0, dtype=np.int32)
        else:
            flat = (rows.astype(np.int64) - self.r0) * self.width + (
                cols.astype(np.int64) - self.c0
            )
            self.flat = np.ascontiguousarray(np.broadcast_to(flat, land.shape)).ravel()
            self.flat = self.flat.astype(np.int32)
        self.land = land
        self.count = self._sum(np.ones(land.shape, dtype=np.float32))
        self.land_count = self._sum(land.astype(np.float32))

    def _sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` (domain shape) over each cell, float64 (height, width)."""
        if self.separable:
            part = np.add.reduceat(values, self.col_starts, axis=1, dtype=np.float64)
            return np.add.reduceat(part, self.row_starts, axis=0)
        s = np.bincount(self.flat, weights=values.ravel(), minlength=self.size)
        return s.reshape(self.height, self.width)

    def mean(self, values: np.ndarray, *, land_only: bool = True) -> np.ndarray:
        """Mean of ``values`` over the pixels of each cell (float32, NaN where none)."""
        if land_only:
            v = np.where(self.land, values, np.float32(0.0))
            n = self.land_count
        else:
            v = values
            n = self.count
        s = self._sum(v)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = s / n
        out[n == 0] = np.nan
        return out.astype(np.float32)

    def fraction(self, mask: np.ndarray) -> np.ndarray:
        """Fraction of each cell's pixels where ``mask`` is true (NaN where no pixel)."""
        s = self._sum(mask.astype(np.float32))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = s / self.count
        return out.astype(np.float32)


def pixel_of_lonlat(
    domain: Grid, lon: np.ndarray, lat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, inside) of the domain pixels containing points (lon, lat)."""
    row0, col0 = global_pixel_origin(domain)
    r = np.floor((90.0 - lat) * PIXELS_PER_DEGREE + 1e-9).astype(np.int64) - row0
    c = np.floor((lon + 180.0) * PIXELS_PER_DEGREE + 1e-9).astype(np.int64) - col0
    inside = (r >= 0) & (r < domain.height) & (c >= 0) & (c < domain.width)
    return np.where(inside, r, 0), np.where(inside, c, 0), inside


def sample_at(
    layer: np.ndarray, domain: Grid, lon: np.ndarray, lat: np.ndarray, fill: Any
) -> np.ndarray:
    """Values of a domain layer at points (lon, lat); ``fill`` outside the domain."""
    r, c, inside = pixel_of_lonlat(domain, lon, lat)
    return np.where(inside, layer[r, c], fill).astype(layer.dtype)


def write_geotiff(
    path: Path,
    data: np.ndarray,
    grid: Grid,
    *,
    nodata: float | int | None,
    scale: float | None = None,
    offset: float | None = None,
    description: str | None = None,
    predictor: int = 2,
    tags: dict[str, str] | None = None,
    offset_rc: tuple[int, int] | None = None,
) -> Path:
    """Write one single-band tiled, deflate-compressed GeoTIFF on ``grid``.

    With ``offset_rc`` the file is sparse: ``data`` is written at (row, col)
    ``offset_rc`` of ``grid`` and the blocks never written hold no bytes (GDAL
    ``SPARSE_OK``; readers see nodata there). Writing a whole MODIS or MERIT
    tile of which the world covers a corner then costs only that corner.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.windows import Window

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = grid.shape if offset_rc is not None else data.shape
    tiled = h >= 256 and w >= 256
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": 1,
        "dtype": data.dtype.name,
        "crs": CRS.from_user_input(grid.crs),
        "transform": grid.affine,
        "nodata": nodata,
        "compress": "deflate",
        "zlevel": 1,
        "predictor": predictor if data.dtype.kind in "iuf" else 1,
    }
    if data.dtype.kind == "f" and predictor == 2:
        profile["predictor"] = 3
    if tiled:
        profile.update(tiled=True, blockxsize=512, blockysize=512)
    if offset_rc is not None:
        profile["sparse_ok"] = True
    with rasterio.open(path, "w", **profile) as dst:
        if offset_rc is None:
            dst.write(data, 1)
        else:
            r, c = offset_rc
            dst.write(data, 1, window=Window(c, r, data.shape[1], data.shape[0]))
        if scale is not None or offset is not None:
            dst.scales = (1.0 if scale is None else scale,)
            dst.offsets = (0.0 if offset is None else offset,)
        if description:
            dst.set_band_description(1, description)
        if tags:
            dst.update_tags(**tags)
    return path
