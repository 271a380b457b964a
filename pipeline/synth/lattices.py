"""Native lattices of the products the synthetic world writes (docs/data-layout.md).

One small module so the world can switch to ``grids.named`` when it lands.
Every lattice is a ``grids.Grid``; cylindrical/sinusoidal forward maps are
written out in numpy because they are separable or closed-form and must run
on millions of points.
"""

from __future__ import annotations

import math

import numpy as np

from grids import Grid

# EASE-Grid 2.0 global 9 km (EPSG:6933), as in SPL3SMP_E and EASE2_M09km.gpd.
EASE2_M09_CELL = 9008.055210146
EASE2_M09_X0 = -17367530.4451615
EASE2_M09_Y0 = 7314540.8306386
EASE2_M09_SHAPE = (1624, 3856)

# MODIS sinusoidal (sphere R = 6371007.181 m) tiles.
MODIS_R = 6371007.181
MODIS_X0 = -20015109.354
MODIS_Y0 = 10007554.677
MODIS_TILE = 1111950.5197665
MODIS_CRS = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MODIS_PIXELS = {1000: 1200, 500: 2400, 250: 4800}

# CHIRPS 2.0 global 0.05 degree (west -180, north 50, 7200 x 2000).
CHIRPS_RES = 0.05
CHIRPS_WEST = -180.0
CHIRPS_NORTH = 50.0

# SoilGrids 250 m Homolosine (ESRI:54052), ISRIC global lattice.
SOILGRIDS_CRS = "ESRI:54052"
SOILGRIDS_X0 = -19949750.0
SOILGRIDS_Y0 = 8361000.0
SOILGRIDS_RES = 250.0
SOILGRIDS_SHAPE = (58034, 159246)

# Koeppen (Beck et al. 2018) 1/120 degree, MERIT 1/1200 degree, 5 x 5 degree tiles.
KOPPEN_RES = 1.0 / 120.0
MERIT_RES = 1.0 / 1200.0
MERIT_TILE_DEG = 5


def ease2_m09() -> Grid:
    """The global EASE-Grid 2.0 9 km lattice (1624 x 3856)."""
    c = EASE2_M09_CELL
    return Grid("EPSG:6933", (c, 0.0, EASE2_M09_X0, 0.0, -c, EASE2_M09_Y0), EASE2_M09_SHAPE)


def ease2_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:6933 (x, y) of lon and of lat (the projection is separable: x(lon), y(lat))."""
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    x, _ = t.transform(lon, np.zeros_like(lon))
    _, y = t.transform(np.zeros_like(lat), lat)
    return np.asarray(x), np.asarray(y)


def ease2_lonlat_of_cells(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of EASE2 M09 cell centres for 1-D ``cols`` and 1-D ``rows``."""
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True)
    x = EASE2_M09_X0 + (np.asarray(cols, dtype=np.float64) + 0.5) * EASE2_M09_CELL
    y = EASE2_M09_Y0 - (np.asarray(rows, dtype=np.float64) + 0.5) * EASE2_M09_CELL
    lon, _ = t.transform(x, np.zeros_like(x))
    _, lat = t.transform(np.zeros_like(y), y)
    return np.asarray(lon), np.asarray(lat)


def ease2_lat_of_row_edges(rows: np.ndarray) -> np.ndarray:
    """Latitude of the northern edge of EASE2 M09 rows (row r+1 gives the southern edge)."""
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True)
    y = EASE2_M09_Y0 - np.asarray(rows, dtype=np.float64) * EASE2_M09_CELL
    _, lat = t.transform(np.zeros_like(y), y)
    return np.asarray(lat)


def modis_tile_grid(h: int, v: int, res: int) -> Grid:
    """Grid of MODIS sinusoidal tile hHHvVV at nominal resolution ``res`` (1000/500/250 m)."""
    n = MODIS_PIXELS[res]
    cell = MODIS_TILE / n
    x0 = MODIS_X0 + h * MODIS_TILE
    y0 = MODIS_Y0 - v * MODIS_TILE
    return Grid(MODIS_CRS, (cell, 0.0, x0, 0.0, -cell, y0), (n, n))


def sinusoidal_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MODIS sinusoidal (x, y) in metres of lon/lat in degrees (broadcasting)."""
    lat_r = np.radians(lat)
    return MODIS_R * np.radians(lon) * np.cos(lat_r), MODIS_R * lat_r


def sinusoidal_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat in degrees of MODIS sinusoidal (x, y)."""
    lat_r = y / MODIS_R
    return np.degrees(x / (MODIS_R * np.cos(lat_r))), np.degrees(lat_r)


def chirps_grid_for(bounds: tuple[float, float, float, float], margin_cells: int = 0) -> Grid:
    """The CHIRPS 0.05 degree lattice cropped to ``bounds`` plus ``margin_cells`` each side."""
    m = margin_cells * CHIRPS_RES
    w, s, e, n = bounds
    return Grid.from_bounds((w - m, s - m, e + m, n + m), CHIRPS_RES, "EPSG:4326")


def koppen_grid_for(bounds: tuple[float, float, float, float]) -> Grid:
    """The Koeppen 1/120 degree lattice cropped to ``bounds``."""
    return Grid.from_bounds(bounds, KOPPEN_RES, "EPSG:4326")


def merit_tiles_for(bounds: tuple[float, float, float, float]) -> list[tuple[str, Grid]]:
    """(name, grid) of the 5 x 5 degree MERIT tiles that intersect ``bounds``, e.g. n30w100."""
    w, s, e, n = bounds
    out: list[tuple[str, Grid]] = []
    lat0 = math.floor(s / MERIT_TILE_DEG) * MERIT_TILE_DEG
    lon0 = math.floor(w / MERIT_TILE_DEG) * MERIT_TILE_DEG
    lat = lat0
    while lat < n:
        lon = lon0
        while lon < e:
            ns = f"n{lat:02d}" if lat >= 0 else f"s{-lat:02d}"
            ew = f"w{-lon:03d}" if lon < 0 else f"e{lon:03d}"
            grid = Grid(
                "EPSG:4326",
                (MERIT_RES, 0.0, float(lon), 0.0, -MERIT_RES, float(lat + MERIT_TILE_DEG)),
                (6000, 6000),
            )
            out.append((ns + ew, grid))
            lon += MERIT_TILE_DEG
        lat += MERIT_TILE_DEG
    return out


def soilgrids_grid_for(bounds: tuple[float, float, float, float]) -> Grid:
    """The SoilGrids 250 m Homolosine lattice cropped to the lon/lat ``bounds``."""
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", SOILGRIDS_CRS, always_xy=True)
    w, s, e, n = bounds
    lons = np.concatenate(
        [np.linspace(w, e, 50), np.full(50, e), np.linspace(w, e, 50), np.full(50, w)]
    )
    lats = np.concatenate(
        [np.full(50, n), np.linspace(s, n, 50), np.full(50, s), np.linspace(s, n, 50)]
    )
    x, y = t.transform(lons, lats)
    full = Grid(
        SOILGRIDS_CRS,
        (SOILGRIDS_RES, 0.0, SOILGRIDS_X0, 0.0, -SOILGRIDS_RES, SOILGRIDS_Y0),
        SOILGRIDS_SHAPE,
    )
    return full.crop((float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y))))
