"""Static products and CHIRPS of the synthetic world, on their native lattices.

MERIT DEM: full 5 x 5 degree tiles (same 3" lattice as the world: the 90 m
elevation, nodata outside the domain). SoilGrids: the 250 m Homolosine
lattice cropped to the domain, sampled at cell centres (g/kg, pH*10).
Koeppen: the 1/120 degree lattice cropped to the domain, sampled at cell
centres. CHIRPS: the 0.05 degree lattice cropped to the region plus a margin,
the world's rain with CHIRPS-like errors (``world.chirps_cells``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from grids import Grid
from pipeline.synth import lattices
from pipeline.synth.rasters import sample_at, write_geotiff
from pipeline.synth.spec import PIXELS_PER_DEGREE, WorldSpec
from pipeline.synth.world import chirps_cells

CHIRPS_MARGIN_CELLS = 2


def chirps_path(root: Path, date: dt.date) -> Path:
    """``<root>/CHIRPS/global_daily/tifs/p05/YYYY/chirps-v2.0.YYYY.MM.DD.tif``."""
    return (
        root
        / "CHIRPS"
        / "global_daily"
        / "tifs"
        / "p05"
        / f"{date:%Y}"
        / f"chirps-v2.0.{date:%Y.%m.%d}.tif"
    )


def chirps_grid(spec: WorldSpec) -> Grid:
    """The CHIRPS lattice written: the region plus two cells (0.1 degree) on every side."""
    return lattices.chirps_grid_for(spec.region, CHIRPS_MARGIN_CELLS)


def write_chirps(root: Path, spec: WorldSpec, date: dt.date) -> tuple[Path, np.ndarray]:
    """Write one CHIRPS daily GeoTIFF (float32 mm/day, nodata -9999); returns (path, values)."""
    grid = chirps_grid(spec)
    _, est = chirps_cells(spec, date, grid)
    path = write_geotiff(chirps_path(root, date), est, grid, nodata=-9999.0, predictor=1)
    return path, est


def merit_path(root: Path, name: str) -> Path:
    """``<root>/MERIT_DEM/<tile>_dem.tif``."""
    return root / "MERIT_DEM" / f"{name}_dem.tif"


def write_merit(root: Path, domain: Grid, elevation: np.ndarray) -> list[Path]:
    """Write the full MERIT tiles that intersect the domain (float32 m, nodata -9999)."""
    out: list[Path] = []
    dw, _, _, dn = domain.bounds
    for name, tile in lattices.merit_tiles_for(domain.bounds):
        tw, _, _, tn = tile.bounds
        r_off = round((tn - dn) * PIXELS_PER_DEGREE)  # domain row 0 in tile rows
        c_off = round((dw - tw) * PIXELS_PER_DEGREE)
        r0, c0 = max(0, r_off), max(0, c_off)
        r1 = min(tile.height, r_off + domain.height)
        c1 = min(tile.width, c_off + domain.width)
        if r1 <= r0 or c1 <= c0:
            continue
        part = np.ascontiguousarray(elevation[r0 - r_off : r1 - r_off, c0 - c_off : c1 - c_off])
        out.append(
            write_geotiff(merit_path(root, name), part, tile, nodata=-9999.0, offset_rc=(r0, c0))
        )
    return out


def soilgrids_path(root: Path, prop: str) -> Path:
    """``<root>/SoilGrids/<prop>/<prop>_0-5cm_mean.tif``."""
    return root / "SoilGrids" / prop / f"{prop}_0-5cm_mean.tif"


def soilgrids_values(
    domain: Grid, static: dict[str, np.ndarray]
) -> tuple[Grid, dict[str, np.ndarray]]:
    """The SoilGrids crop and its int16 sand, clay (g/kg) and phh2o (pH*10) at cell centres."""
    from pyproj import Transformer

    grid = lattices.soilgrids_grid_for(domain.bounds)
    xs, ys = np.meshgrid(grid.x_coords(), grid.y_coords())
    t = Transformer.from_crs(lattices.SOILGRIDS_CRS, "EPSG:4326", always_xy=True)
    lon, lat = t.transform(xs, ys)
    lon = np.asarray(lon)
    lat = np.asarray(lat)
    out: dict[str, np.ndarray] = {}
    for prop, layer, factor in (
        ("sand", "sand", 10.0),
        ("clay", "clay", 10.0),
        ("phh2o", "ph", 10.0),
    ):
        scaled = np.round(static[layer] * factor).astype(np.int16)
        out[prop] = sample_at(scaled, domain, lon, lat, np.int16(-32768))
    return grid, out


def write_soilgrids(root: Path, domain: Grid, static: dict[str, np.ndarray]) -> list[Path]:
    """Write sand, clay and phh2o 0-5 cm means (int16, nodata -32768, ESRI:54052 250 m)."""
    grid, values = soilgrids_values(domain, static)
    return [
        write_geotiff(soilgrids_path(root, prop), v, grid, nodata=-32768)
        for prop, v in values.items()
    ]


def koppen_path(root: Path) -> Path:
    """``<root>/Koeppen/Beck_KG_V1_present_0p0083.tif``."""
    return root / "Koeppen" / "Beck_KG_V1_present_0p0083.tif"


def koppen_values(domain: Grid, koppen: np.ndarray) -> tuple[Grid, np.ndarray]:
    """The Koeppen crop over the domain and its uint8 classes at cell centres (0 outside)."""
    grid = lattices.koppen_grid_for(domain.bounds)
    lon, lat = np.meshgrid(grid.x_coords(), grid.y_coords())
    return grid, sample_at(koppen, domain, lon, lat, np.uint8(0))


def write_koppen(root: Path, domain: Grid, koppen: np.ndarray) -> Path:
    """Write the Koeppen-Geiger crop (uint8 1-30, 0 = no data)."""
    grid, v = koppen_values(domain, koppen)
    return write_geotiff(koppen_path(root), v, grid, nodata=0)
