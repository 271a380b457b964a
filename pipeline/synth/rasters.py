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

    ``rows``/``cols`` are the native (row, col) of every domain pixel (same
    shape as the domain, or broadcastable 1-D row/column vectors for
    separable lattices).
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, land: np.ndarray) -> None:
        self.r0 = int(rows.min())
        self.c0 = int(cols.min())
        self.height = int(rows.max()) - self.r0 + 1
        self.width = int(cols.max()) - self.c0 + 1
        flat = (rows.astype(np.int64) - self.r0) * self.width + (cols.astype(np.int64) - self.c0)
        self.flat = np.ascontiguousarray(np.broadcast_to(flat, land.shape)).ravel().astype(np.int32)
        self.size = self.height * self.width
        self.land = land.ravel()
        self.count = np.bincount(self.flat, minlength=self.size).reshape(self.height, self.width)
        self.land_count = np.bincount(
            self.flat, weights=self.land.astype(np.float64), minlength=self.size
        ).reshape(self.height, self.width)

    def mean(self, values: np.ndarray, *, land_only: bool = True) -> np.ndarray:
        """Mean of ``values`` over the pixels of each cell (float32, NaN where none)."""
        v: np.ndarray = values.ravel()
        if land_only:
            v = np.where(self.land, v, 0.0)
            n = self.land_count
        else:
            n = self.count.astype(np.float64)
        s = np.bincount(self.flat, weights=v, minlength=self.size).reshape(n.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = s / n
        out[n == 0] = np.nan
        return out.astype(np.float32)

    def fraction(self, mask: np.ndarray) -> np.ndarray:
        """Fraction of each cell's pixels where ``mask`` is true (NaN where no pixel)."""
        s = np.bincount(self.flat, weights=mask.ravel().astype(np.float64), minlength=self.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = s.reshape(self.count.shape) / self.count
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
