"""Reading a raster's grid (not its data): GeoTIFF/COG/VRT via rasterio, netCDF via h5netcdf.

Every failure names the file: a raster without a CRS, or with a CRS PROJ
cannot parse, raises ``CRSError``; an unreadable file raises ``GridError``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from grids.errors import CRSError, GridError
from grids.grid import Grid, normalize_crs

log = logging.getLogger(__name__)

_X_NAMES = ("lon", "longitude", "x")
_Y_NAMES = ("lat", "latitude", "y")


def read_grid(path: str | os.PathLike[str]) -> Grid:
    """The grid (CRS, transform, shape) of a raster rasterio can open.

    netCDF files are better read with ``read_netcdf_grid`` (coordinate arrays,
    not the ``GeoTransform`` attribute).
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    p = os.fspath(path)
    from rasterio.errors import CRSError as RioCRSError

    try:
        with rasterio.open(p) as ds:
            crs = ds.crs
            transform = ds.transform
            shape = (ds.height, ds.width)
    except RioCRSError as exc:
        raise CRSError(f"{p}: cannot parse the raster's CRS: {exc}") from exc
    except RasterioIOError as exc:
        raise GridError(f"{p}: cannot open raster: {exc}") from exc
    if crs is None or not crs.to_wkt():
        raise CRSError(f"{p}: raster has no CRS (georeferencing is incomplete)")
    try:
        crs_text = normalize_crs(crs.to_wkt())
    except CRSError as exc:
        raise CRSError(f"{p}: {exc}") from exc
    if transform.is_identity:
        raise GridError(f"{p}: raster has no geotransform")
    return Grid(crs_text, tuple(transform)[:6], shape)  # type: ignore[arg-type]


def geotransform_offset(grid: Grid, geotransform: str | tuple[float, ...]) -> tuple[float, float]:
    """Offset in pixels (columns, rows) of a GDAL ``GeoTransform`` origin from ``grid``'s corner.

    ``(0, 0)`` means the attribute agrees; ``(0.5, 0.5)`` is the classic trap of a
    geotransform whose origin is the first cell *centre* (gridMET files).
    """
    if isinstance(geotransform, str):
        gt = tuple(float(v) for v in geotransform.split())
    else:
        gt = tuple(float(v) for v in geotransform)
    # Only the origin (numbers 1 and 4) is used: gridMET's attribute has 5 numbers, not 6.
    if len(gt) < 4:
        raise GridError(f"GeoTransform {geotransform!r} has fewer than 4 numbers")
    inv = ~grid.affine
    col = inv.a * gt[0] + inv.b * gt[3] + inv.c
    row = inv.d * gt[0] + inv.e * gt[3] + inv.f
    return float(col), float(row)


def _attr_text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.size == 1:
        return _attr_text(v.reshape(-1)[0])
    return str(v)


def read_netcdf_grid(path: str | os.PathLike[str], variable: str) -> Grid:
    """The grid of ``variable`` in a netCDF-4 file, built from its cell-centre coordinates.

    The CRS comes from the variable's ``grid_mapping`` (``spatial_ref``/``crs_wkt``),
    else EPSG:4326 for lat/lon axes; a mapping that cannot be parsed raises
    ``CRSError`` naming the file. A ``GeoTransform`` attribute that disagrees with
    the coordinates (e.g. gridMET's, half a cell off) is ignored and logged.
    """
    import h5netcdf

    p = os.fspath(path)
    try:
        f = h5netcdf.File(p, "r")
    except OSError as exc:
        raise GridError(f"{p}: cannot open netCDF: {exc}") from exc
    with f:
        if variable not in f.variables:
            raise GridError(f"{p}: no variable {variable!r}")
        var = f.variables[variable]
        dims = var.dimensions
        if len(dims) < 2:
            raise GridError(f"{p}: variable {variable!r} is not gridded (dims {dims})")
        ydim, xdim = dims[-2], dims[-1]
        if xdim not in f.variables or ydim not in f.variables:
            raise GridError(f"{p}: {variable!r} has no coordinate variables {ydim!r}/{xdim!r}")
        x = np.asarray(f.variables[xdim][:], dtype=np.float64)
        y = np.asarray(f.variables[ydim][:], dtype=np.float64)
        gm_name = _attr_text(var.attrs["grid_mapping"]) if "grid_mapping" in var.attrs else None
        gm = f.variables.get(gm_name.lstrip("/")) if gm_name else None
        gm_attrs = dict(gm.attrs) if gm is not None else {}
    crs_text: str | None = None
    for k in ("crs_wkt", "spatial_ref"):
        if k in gm_attrs:
            crs_text = _attr_text(gm_attrs[k])
            break
    if crs_text is None:
        if xdim.lower() in _X_NAMES[:2] and ydim.lower() in _Y_NAMES[:2]:
            crs_text = "EPSG:4326"
        else:
            raise CRSError(f"{p}: variable {variable!r} has no parseable grid_mapping CRS")
    try:
        crs = normalize_crs(crs_text)
    except CRSError as exc:
        raise CRSError(f"{p}: {exc}") from exc
    try:
        grid = Grid.from_coords(x, y, crs)
    except GridError as exc:
        raise GridError(f"{p}: {variable!r}: {exc}") from exc
    if "GeoTransform" in gm_attrs:
        dc, dr = geotransform_offset(grid, _attr_text(gm_attrs["GeoTransform"]))
        if abs(dc) > 1e-3 or abs(dr) > 1e-3:
            log.warning(
                "%s: GeoTransform attribute is (%.3f, %.3f) pixels off the cell-centre "
                "coordinates; using the coordinates",
                p,
                dc,
                dr,
            )
    return grid
