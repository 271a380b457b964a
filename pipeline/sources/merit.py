"""MERIT DEM (Yamazaki et al. 2017): elevation in metres on 3 arc-second cells, EPSG:4326.

Tiles ``<dir>/<tile>_dem.tif`` of 5 x 5 degrees named by their south-west
corner (``n30w100_dem.tif`` covers 30..35 N, 100..95 W), float32, nodata
-9999, edges on whole degrees. A window spanning tiles is mosaicked on the
global 1/1200 degree lattice. MERIT has no tile over open ocean: a missing
tile inside the window is left NaN and named in the note; a window with no
tile at all raises ``MissingInputError``. A single file on the same lattice
(e.g. a crop) is read too. Elevations outside [-500, 9000] m follow the range
rule of ``pipeline.sources.base``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from pathlib import Path

import numpy as np

from grids import Grid
from pipeline.sources.base import (
    DEFAULT_MARGIN_PIXELS,
    DEFAULT_RANGE_TOLERANCE,
    Bounds,
    MissingInputError,
    NativeRaster,
    Provenance,
    apply_physical_range,
    range_note,
    window_rows_cols,
)
from pipeline.sources.raster import is_geographic_wgs84, paste

PRODUCT = "MERIT-DEM"
VARIABLE = "elevation"
CELLS_PER_DEGREE = 1200
TILE_DEG = 5
LATTICE = Grid(
    "EPSG:4326",
    (1.0 / CELLS_PER_DEGREE, 0.0, -180.0, 0.0, -1.0 / CELLS_PER_DEGREE, 90.0),
    (180 * CELLS_PER_DEGREE, 360 * CELLS_PER_DEGREE),
)
"""The global 3 arc-second lattice MERIT tiles sit on."""
TILE_RE = re.compile(r"^([ns])(\d{2})([ew])(\d{3})_dem\.tif$")
CRS_DESC = "geographic WGS84 (EPSG:4326)"


def tile_name(lat_sw: int, lon_sw: int) -> str:
    """``n30w100`` for the tile whose south-west corner is (30 N, 100 W)."""
    ns = "n" if lat_sw >= 0 else "s"
    ew = "e" if lon_sw >= 0 else "w"
    return f"{ns}{abs(lat_sw):02d}{ew}{abs(lon_sw):03d}"


def parse_tile(name: str) -> tuple[int, int] | None:
    """(lat_sw, lon_sw) of a ``*_dem.tif`` tile name, or None."""
    m = TILE_RE.match(name)
    if m is None:
        return None
    lat = int(m[2]) * (1 if m[1] == "n" else -1)
    lon = int(m[4]) * (1 if m[3] == "e" else -1)
    return lat, lon


def tiles_for(window: Grid) -> list[tuple[int, int]]:
    """South-west corners of every 5-degree tile a lattice window touches."""
    west, south, east, north = window.bounds
    lat0 = math.floor(south / TILE_DEG + 1e-9) * TILE_DEG
    lon0 = math.floor(west / TILE_DEG + 1e-9) * TILE_DEG
    lats = range(lat0, math.ceil(north / TILE_DEG - 1e-9) * TILE_DEG, TILE_DEG)
    lons = range(lon0, math.ceil(east / TILE_DEG - 1e-9) * TILE_DEG, TILE_DEG)
    return [(la, lo) for la in lats for lo in lons]


class MeritSource:
    """Elevation (m) from a directory of MERIT tiles, or one file on the 3" lattice."""

    variable = VARIABLE

    def __init__(
        self,
        root_or_file: str | os.PathLike[str],
        *,
        margin: int = DEFAULT_MARGIN_PIXELS,
        range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
    ) -> None:
        p = Path(root_or_file)
        self.root = p
        self.single: Path | None = p if p.suffix == ".tif" else None
        self.tiles: dict[tuple[int, int], str] = {}
        if self.single is None and p.is_dir():
            for f in sorted(os.listdir(p)):
                t = parse_tile(f)
                if t is not None:
                    self.tiles[t] = str(p / f)
        self.margin = margin
        self.range_tolerance = range_tolerance

    def available(self, date: dt.date | None = None) -> Provenance | None:
        if self.single is not None:
            ok = self.single.is_file()
            return Provenance(VARIABLE, (str(self.single),), PRODUCT) if ok else None
        if not self.tiles:
            return None
        return Provenance(
            VARIABLE, tuple(sorted(self.tiles.values())), PRODUCT, note=f"{len(self.tiles)} tile(s)"
        )

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        rc = window_rows_cols(LATTICE, bounds, self.margin)
        if rc is None:
            raise MissingInputError(self.root, f"bounds {bounds} off the globe")
        window = LATTICE.window(*rc)
        raw = np.full(window.shape, np.nan, dtype=np.float64)
        used: list[str] = []
        absent: list[str] = []
        if self.single is not None:
            if not self.single.is_file():
                raise MissingInputError(self.single, "DEM file not found", variable=VARIABLE)
            if paste(self.single, window, raw, crs_ok=is_geographic_wgs84, crs_desc=CRS_DESC):
                used.append(str(self.single))
        else:
            for t in tiles_for(window):
                f = self.tiles.get(t)
                if f is None:
                    absent.append(tile_name(*t))
                    continue
                if paste(f, window, raw, crs_ok=is_geographic_wgs84, crs_desc=CRS_DESC):
                    used.append(f)
        if not used:
            raise MissingInputError(
                self.root / "<tile>_dem.tif" if self.single is None else self.single,
                f"no MERIT tile covers {bounds} (looked for {', '.join(absent) or 'a file'})",
                variable=VARIABLE,
            )
        raw[raw == -9999.0] = np.nan
        data, n = apply_physical_range(
            raw.astype(np.float32), VARIABLE, used[0], tolerance=self.range_tolerance
        )
        prov = Provenance(VARIABLE, tuple(used), PRODUCT, note=range_note(n, VARIABLE))
        if absent:
            prov = prov.with_note(f"tiles absent (ocean, NaN): {', '.join(absent)}")
        return NativeRaster(window, data, prov, LATTICE, (rc[0], rc[2]))
