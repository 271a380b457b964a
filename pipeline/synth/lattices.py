"""Native lattices of the products the synthetic world writes (docs/data-layout.md).

The grids and providers' constants come from ``grids.named`` (one source of
truth with the readers); the forward maps here are numpy because they run on
millions of points and are separable (EASE2: x(lon), y(lat)) or closed-form
(MODIS sinusoidal on its sphere).
"""

from __future__ import annotations

import numpy as np

from grids import Grid, named

# EASE-Grid 2.0 global 9 km (EPSG:6933), as in SPL3SMP_E and EASE2_M09km.gpd.
EASE2_M09_CELL = named.EASE2_M09_CELL
EASE2_M09_X0 = named.EASE2_ORIGIN_X
EASE2_M09_Y0 = named.EASE2_ORIGIN_Y
EASE2_M09_SHAPE = named.EASE2_M09_SHAPE

# MODIS sinusoidal (sphere R = 6371007.181 m) tiles.
MODIS_R = named.MODIS_SPHERE_RADIUS
MODIS_X0 = named.MODIS_ORIGIN_X
MODIS_Y0 = named.MODIS_ORIGIN_Y
MODIS_TILE = named.MODIS_TILE_SIZE
MODIS_CRS = named.MODIS_SINUSOIDAL_CRS
MODIS_PIXELS = named.MODIS_PIXELS_PER_TILE

# CHIRPS 2.0 global 0.05 degree (west -180, north 50, 7200 x 2000).
CHIRPS_RES = 0.05
CHIRPS_WEST = -180.0
CHIRPS_NORTH = 50.0

# SoilGrids 250 m Homolosine (ESRI:54052), ISRIC global lattice.
SOILGRIDS_CRS = named.SOILGRIDS_CRS

# Koeppen (Beck et al. 2018) 1/120 degree, MERIT 1/1200 degree, 5 x 5 degree tiles.
KOPPEN_RES = 1.0 / 120.0
MERIT_RES = named.ARCSEC3
MERIT_TILE_DEG = named.MERIT_TILE_DEG


def ease2_m09() -> Grid:
    """The global EASE-Grid 2.0 9 km lattice (1624 x 3856)."""
    return named.named_grid("ease2-m09")


def ease2_separable_xy(*, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EPSG:6933 x of each ``lon`` and y of each ``lat`` (1-D, any lengths: the projection is
    separable, x(lon) and y(lat)); keyword-only, like ``grids.ease.ease2_xy``."""
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
    return named.modis_tile_grid(h, v, res)


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
    return named.named_grid("chirps-p05").crop((w - m, s - m, e + m, n + m))


def koppen_grid_for(bounds: tuple[float, float, float, float]) -> Grid:
    """The Koeppen 1/120 degree lattice cropped to ``bounds``."""
    return named.named_grid("koppen-1km").crop(bounds)


def merit_tiles_for(bounds: tuple[float, float, float, float]) -> list[tuple[str, Grid]]:
    """(name, grid) of the 5 x 5 degree MERIT tiles that intersect ``bounds``, e.g. n30w100."""
    merit = named.named_grid("merit-3s")
    out: list[tuple[str, Grid]] = []
    for name in named.merit_tiles_for_bounds(bounds):
        lat = int(name[1:3]) * (1 if name[0] == "n" else -1)
        lon = int(name[4:7]) * (1 if name[3] == "e" else -1)
        row0 = round((90 - lat - MERIT_TILE_DEG) / MERIT_RES)
        col0 = round((lon + 180) / MERIT_RES)
        n = round(MERIT_TILE_DEG / MERIT_RES)
        out.append((name, merit.window(row0, row0 + n, col0, col0 + n)))
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
    full = named.named_grid("soilgrids-250m")
    return full.crop((float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y))))
