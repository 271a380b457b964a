"""EASE-Grid 2.0 global (EPSG:6933) forward and inverse maps, vectorised in numpy.

The projection is the Lambert cylindrical equal-area on the WGS 84 ellipsoid
with true scale at 30 degrees (Brodzik et al. 2012, ISPRS IJGI 1(1) 32-45),
written out here so SMAP row/column look-ups need no PROJ call and give the
same numbers on every machine. ``ease2_rowcol`` uses the same floor rule as the
resampler: a point exactly on a cell edge belongs to the cell east/south of it.
Row and column are counted in the given grid (a window of a global grid counts
from its own corner, as in a SMAP subset file).
"""

from __future__ import annotations

import numpy as np

from grids.errors import GridError
from grids.grid import Grid
from grids.named import EASE2_CRS, named_grid

# WGS 84 ellipsoid, as in the NSIDC .gpd files (eccentricity 0.081819190843).
_A = 6378137.0  # m
_F = 1.0 / 298.257223563
_E2 = _F * (2.0 - _F)
_E = float(np.sqrt(_E2))
_PHI1 = np.deg2rad(30.0)  # standard parallel
_K0 = float(np.cos(_PHI1) / np.sqrt(1.0 - _E2 * np.sin(_PHI1) ** 2))


def _q(sinphi: np.ndarray) -> np.ndarray:
    es = _E * sinphi
    log_term = np.log((1.0 - es) / (1.0 + es)) / (2.0 * _E)
    return (1.0 - _E2) * (sinphi / (1.0 - _E2 * sinphi**2) - log_term)


_QP = float(_q(np.array(1.0))[()])


def _grid(grid: Grid | str) -> Grid:
    g = (
        named_grid(grid if grid.startswith("ease2") else f"ease2-{grid}")
        if isinstance(grid, str)
        else grid
    )
    if g.crs != EASE2_CRS or not g.is_axis_aligned:
        raise GridError(f"{g!r} is not an EASE-Grid 2.0 global (EPSG:6933) grid")
    return g


def ease2_xy(*, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projected (x, y) in metres of geodetic ``lat``, ``lon`` in degrees (pointwise).

    Keyword-only: latitude and longitude are never passed by position.
    """
    lat_r = np.deg2rad(np.asarray(lat, dtype=np.float64))
    lon_r = np.deg2rad(np.asarray(lon, dtype=np.float64))
    x = _A * _K0 * lon_r
    y = _A * _q(np.sin(lat_r)) / (2.0 * _K0)
    return x, y


def ease2_lonlat_of_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geodetic (lat, lon) in degrees of projected (x, y) in metres (series inverse)."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    beta = np.arcsin(np.clip(2.0 * ya * _K0 / (_A * _QP), -1.0, 1.0))
    e4, e6 = _E2**2, _E2**3
    phi = (
        beta
        + (_E2 / 3.0 + 31.0 * e4 / 180.0 + 517.0 * e6 / 5040.0) * np.sin(2.0 * beta)
        + (23.0 * e4 / 360.0 + 251.0 * e6 / 3780.0) * np.sin(4.0 * beta)
        + (761.0 * e6 / 45360.0) * np.sin(6.0 * beta)
    )
    lam = xa / (_A * _K0)
    return np.rad2deg(phi), np.rad2deg(lam)


def ease2_rowcol(
    lat: np.ndarray, lon: np.ndarray, grid: Grid | str = "ease2-m09"
) -> tuple[np.ndarray, np.ndarray]:
    """Integer (row, col) of the cells holding (lat, lon) degrees; -1 where outside the grid.

    ``grid``: an EASE-Grid 2.0 ``Grid`` (or a window of one), or "m09"/"m36"/"ease2-m09".
    """
    g = _grid(grid)
    x, y = ease2_xy(lat=lat, lon=lon)
    rows, cols = g.xy_to_rowcol(x, y)
    inside = g.contains_rowcol(rows, cols) & np.isfinite(x) & np.isfinite(y)
    return np.where(inside, rows, -1), np.where(inside, cols, -1)


def ease2_latlon(
    row: np.ndarray, col: np.ndarray, grid: Grid | str = "ease2-m09"
) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) in degrees of the centres of cells (row, col) of an EASE-Grid 2.0 grid."""
    g = _grid(grid)
    a, _, c, _, e, f = g.transform
    x = c + (np.asarray(col, dtype=np.float64) + 0.5) * a
    y = f + (np.asarray(row, dtype=np.float64) + 0.5) * e
    return ease2_lonlat_of_xy(x, y)
