"""Named grids of the products smdown reads and writes, with their providers' constants.

Every grid here is built from integer cell counts and the providers' published
origins and cell sizes, so two processes build bit-identical grids (same
``Grid.key()``). Lattices:

- ``conus-90m``: EPSG:4326, 3 arc-second cells (1/1200 degree) with edges on
  whole degrees, the MERIT DEM / SRTM 3" lattice; 125 W..66 W, 24 N..50 N.
- ``conus-albers-90m``: EPSG:5070 (NAD83 / Conus Albers), 90 m cells with edges
  on multiples of 90 m, covering the NLCD CONUS extent.
- ``ease2-m09`` / ``ease2-m36``: EASE-Grid 2.0 global (EPSG:6933), NSIDC .gpd
  constants (origin x -17367530.4451615 m, y 7314540.8306386 m).
- ``chirps-p05``: EPSG:4326 0.05 degree, west -180, north 50, 7200 x 2000.
- ``soilgrids-250m``: ISRIC Homolosine (ESRI:54052), origin (-19949750, 8361000) m,
  250 m, 159246 x 58034; ``soilgrids-1km`` is its 4 x 4 aggregate (same origin).
- ``koppen-1km``: EPSG:4326 1/120 degree global (Beck et al. 2018).
- ``merit-3s``: EPSG:4326 3" global lattice, 180 W..180 E, 90 N..60 S (MERIT's extent).
- MODIS sinusoidal tiles: ``modis_tile_grid(h, v, resolution)`` or the name
  ``modis-hHHvVV-<1000|500|250>m``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from grids.errors import GridError
from grids.grid import Grid

# --- EASE-Grid 2.0 (NSIDC EASE2_M09km.gpd / EASE2_M36km.gpd) ----------------------------
EASE2_CRS = "EPSG:6933"
EASE2_ORIGIN_X = -17367530.4451615  # m, -180 degrees longitude
EASE2_ORIGIN_Y = 7314540.8306386  # m, cell size * height / 2
EASE2_M09_CELL = 9008.055210146  # m
EASE2_M36_CELL = 36032.220840584  # m
EASE2_M09_SHAPE = (1624, 3856)  # rows, cols
EASE2_M36_SHAPE = (406, 964)

# --- MODIS sinusoidal (MODIS Land grid; sphere R = 6371007.181 m) ------------------------
MODIS_SINUSOIDAL_CRS = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
MODIS_SPHERE_RADIUS = 6371007.181  # m
MODIS_TILE_SIZE = 1111950.5197665  # m, 10 degrees of the sphere
MODIS_ORIGIN_X = -20015109.354  # m, x of the west edge of h = 0
MODIS_ORIGIN_Y = 10007554.677  # m, y of the north edge of v = 0
MODIS_N_H = 36
MODIS_N_V = 18
# resolution name (m) -> pixels per tile side; cells are 926.625433 / 463.312717 / 231.656358 m
MODIS_PIXELS_PER_TILE = {1000: 1200, 500: 2400, 250: 4800}

# --- SoilGrids 2.0 (ISRIC) -------------------------------------------------------------
SOILGRIDS_CRS = "ESRI:54052"
SOILGRIDS_ORIGIN = (-19949750.0, 8361000.0)  # m (west, north)
SOILGRIDS_SHAPE = (58034, 159246)  # rows, cols at 250 m

# --- 3 arc-second lattice (MERIT DEM, SRTM) --------------------------------------------
ARCSEC3 = 1.0 / 1200.0  # degrees
MERIT_TILE_DEG = 5


def _conus_90m() -> Grid:
    west, north, east, south = -125, 50, -66, 24
    shape = ((north - south) * 1200, (east - west) * 1200)
    return Grid("EPSG:4326", (ARCSEC3, 0.0, float(west), 0.0, -ARCSEC3, float(north)), shape)


def _conus_albers_90m() -> Grid:
    # NLCD CONUS extent (-2493045, 177285, 2342655, 3310005) m snapped outwards to 90 m.
    west, north = -27700 * 90.0, 36780 * 90.0
    return Grid("EPSG:5070", (90.0, 0.0, west, 0.0, -90.0, north), (36780 - 1970, 26030 + 27700))


def _ease2(cell: float, shape: tuple[int, int]) -> Grid:
    return Grid(EASE2_CRS, (cell, 0.0, EASE2_ORIGIN_X, 0.0, -cell, EASE2_ORIGIN_Y), shape)


def _soilgrids(factor: int) -> Grid:
    cell = 250.0 * factor
    rows = math.ceil(SOILGRIDS_SHAPE[0] / factor)
    cols = math.ceil(SOILGRIDS_SHAPE[1] / factor)
    x0, y0 = SOILGRIDS_ORIGIN
    return Grid(SOILGRIDS_CRS, (cell, 0.0, x0, 0.0, -cell, y0), (rows, cols))


_FACTORIES: dict[str, Callable[[], Grid]] = {
    "conus-90m": _conus_90m,
    "conus-albers-90m": _conus_albers_90m,
    "ease2-m09": lambda: _ease2(EASE2_M09_CELL, EASE2_M09_SHAPE),
    "ease2-m36": lambda: _ease2(EASE2_M36_CELL, EASE2_M36_SHAPE),
    "chirps-p05": lambda: Grid("EPSG:4326", (0.05, 0.0, -180.0, 0.0, -0.05, 50.0), (2000, 7200)),
    "soilgrids-250m": lambda: _soilgrids(1),
    "soilgrids-1km": lambda: _soilgrids(4),
    "koppen-1km": lambda: Grid(
        "EPSG:4326", (1 / 120, 0.0, -180.0, 0.0, -1 / 120, 90.0), (180 * 120, 360 * 120)
    ),
    "merit-3s": lambda: Grid(
        "EPSG:4326", (ARCSEC3, 0.0, -180.0, 0.0, -ARCSEC3, 90.0), (150 * 1200, 360 * 1200)
    ),
}

_MODIS_NAME = re.compile(r"^modis-h(\d{1,2})v(\d{1,2})-(\d+)m$")


def list_grids() -> list[str]:
    """Names accepted by ``named_grid`` (MODIS tiles also as ``modis-hHHvVV-<res>m``)."""
    return sorted(_FACTORIES)


def named_grid(name: str) -> Grid:
    """The grid called ``name``; ``GridError`` listing the known names otherwise."""
    key = name.strip().lower()
    factory = _FACTORIES.get(key)
    if factory is not None:
        return factory()
    m = _MODIS_NAME.match(key)
    if m:
        return modis_tile_grid(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    known = ", ".join(list_grids())
    raise GridError(f"unknown grid {name!r}; known grids: {known}, modis-hHHvVV-<1000|500|250>m")


# --- MODIS tiles ---------------------------------------------------------------------------
def modis_tile_grid(h: int, v: int, resolution: int) -> Grid:
    """The sinusoidal grid of MODIS tile (h, v) at ``resolution`` in {1000, 500, 250} (m name)."""
    if resolution not in MODIS_PIXELS_PER_TILE:
        raise GridError(f"MODIS resolution {resolution!r} not in {sorted(MODIS_PIXELS_PER_TILE)}")
    if not (0 <= h < MODIS_N_H and 0 <= v < MODIS_N_V):
        raise GridError(f"MODIS tile h{h:02d}v{v:02d} outside h 0..35, v 0..17")
    n = MODIS_PIXELS_PER_TILE[resolution]
    cell = MODIS_TILE_SIZE / n
    x0 = MODIS_ORIGIN_X + h * MODIS_TILE_SIZE
    y0 = MODIS_ORIGIN_Y - v * MODIS_TILE_SIZE
    return Grid(MODIS_SINUSOIDAL_CRS, (cell, 0.0, x0, 0.0, -cell, y0), (n, n))


def modis_tiles_for_bounds(
    bounds_lonlat: tuple[float, float, float, float],
) -> list[tuple[int, int]]:
    """MODIS tiles (h, v) whose square intersects (west, south, east, north) in degrees.

    Exact for the sinusoidal projection: within each tile row the x extent of
    the box is taken at the latitude with the largest and smallest cos(lat).
    Tiles beyond the projection's valid area (all-fill tiles) are included if
    their square intersects; readers skip the ones that do not exist.
    """
    west, south, east, north = (float(b) for b in bounds_lonlat)
    if not (west < east and south < north):
        raise GridError(f"bounds {bounds_lonlat!r} are empty or not (west, south, east, north)")
    r = MODIS_SPHERE_RADIUS
    band_deg = 10.0
    out: list[tuple[int, int]] = []
    v0 = max(0, math.floor((90.0 - north) / band_deg))
    v1 = min(MODIS_N_V - 1, math.ceil((90.0 - south) / band_deg) - 1)
    for v in range(v0, v1 + 1):
        lat_hi = min(north, 90.0 - v * band_deg)
        lat_lo = max(south, 90.0 - (v + 1) * band_deg)
        if lat_hi <= lat_lo:
            continue
        coss = [math.cos(math.radians(lat)) for lat in (lat_lo, lat_hi)]
        cmin = min(coss)
        cmax = 1.0 if lat_lo <= 0.0 <= lat_hi else max(coss)
        xs_w = [r * math.radians(west) * c for c in (cmin, cmax)]
        xs_e = [r * math.radians(east) * c for c in (cmin, cmax)]
        xmin, xmax = min(xs_w), max(xs_e)
        h0 = max(0, math.floor((xmin - MODIS_ORIGIN_X) / MODIS_TILE_SIZE))
        h1 = min(MODIS_N_H - 1, math.ceil((xmax - MODIS_ORIGIN_X) / MODIS_TILE_SIZE) - 1)
        out.extend((h, v) for h in range(h0, h1 + 1))
    return sorted(out)


# --- MERIT DEM tiles -------------------------------------------------------------------
def merit_tile_name(lat: float, lon: float) -> str:
    """MERIT DEM 5-degree tile holding (lat, lon), named by its SW corner: ``n30w100``."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise GridError(f"point ({lat!r}, {lon!r}) is not a valid latitude/longitude")
    la = min(math.floor(lat / MERIT_TILE_DEG) * MERIT_TILE_DEG, 90 - MERIT_TILE_DEG)
    lo = min(math.floor(lon / MERIT_TILE_DEG) * MERIT_TILE_DEG, 180 - MERIT_TILE_DEG)
    return f"{'n' if la >= 0 else 's'}{abs(la):02d}{'e' if lo >= 0 else 'w'}{abs(lo):03d}"


def merit_tiles_for_bounds(bounds: tuple[float, float, float, float]) -> list[str]:
    """Names of the MERIT tiles whose 5-degree square intersects (west, south, east, north).

    Edges touching a tile boundary do not pull in the neighbour; MERIT has no
    tiles south of 60 S, so none are returned there.
    """
    west, south, east, north = (float(b) for b in bounds)
    if not (west < east and south < north):
        raise GridError(f"bounds {bounds!r} are empty or not (west, south, east, north)")
    step = MERIT_TILE_DEG
    la0 = max(-60, math.floor(south / step) * step)
    la1 = min(90, math.ceil(north / step) * step)
    lo0 = max(-180, math.floor(west / step) * step)
    lo1 = min(180, math.ceil(east / step) * step)
    return [
        merit_tile_name(la + step / 2, lo + step / 2)
        for la in range(la0, la1, step)
        for lo in range(lo0, lo1, step)
    ]
