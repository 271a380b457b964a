"""The CONUS outline: which points and pixels belong to the contiguous United States.

The outline is the 48 contiguous states and the District of Columbia from the
U.S. Census Bureau's cartographic boundary files, 2017 edition, 1:10,000,000
(public domain), as redistributed by the npm package us-atlas 3.0.1. It is built
offline once by ``grids/data/make_conus_outline.py`` into
``grids/data/conus_outline.geojson`` (213 kB, committed); nothing is downloaded at
run time. At 1:10M the border is generalised by up to about 1-2 km: points and
pixels closer than that to the border or the coast may fall on either side.

Membership is by point (``in_conus``: shapely, boundary points are inside) and by
pixel centre (``conus_mask``: GDAL rasterisation through rasterio, in the grid's CRS).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from grids.grid import Grid

OUTLINE_PATH = Path(__file__).with_name("data") / "conus_outline.geojson"
OUTLINE_CRS = "EPSG:4326"  # NAD83 geographic in the source: within 2 m of WGS84 in CONUS


@cache
def conus_features() -> tuple[dict[str, Any], ...]:
    """The outline's GeoJSON features (one MultiPolygon per state, id = state FIPS code)."""
    data = json.loads(OUTLINE_PATH.read_text(encoding="utf-8"))
    return tuple(data["features"])


def outline_source() -> str:
    """Where the outline comes from (for provenance records and documentation)."""
    return str(json.loads(OUTLINE_PATH.read_text(encoding="utf-8"))["source"])


@cache
def _outline() -> Any:
    import shapely

    geoms = [shapely.geometry.shape(f["geometry"]) for f in conus_features()]
    union = shapely.union_all(geoms)
    shapely.prepare(union)
    return union


def in_conus(lat: Any, lon: Any) -> np.ndarray:
    """Boolean (same shape as the inputs): inside the CONUS outline (or on its boundary).

    Non-finite coordinates are outside.
    """
    import shapely

    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    la, lo = np.broadcast_arrays(la, lo)
    ok = np.isfinite(la) & np.isfinite(lo)
    out = np.zeros(la.shape, dtype=bool)
    out[ok] = shapely.intersects_xy(_outline(), lo[ok], la[ok])
    return out


def is_conus_grid(name: str) -> bool:
    """Whether the named output grid (``grid.name``) is a CONUS product grid."""
    return name.lower().startswith("conus")


def conus_mask(grid: Grid) -> np.ndarray:
    """Boolean (rows, cols): pixels of ``grid`` whose centre lies inside the CONUS outline."""
    from affine import Affine
    from rasterio.features import geometry_mask
    from rasterio.warp import transform_geom

    geoms = [f["geometry"] for f in conus_features()]
    if grid.crs != OUTLINE_CRS:
        geoms = [transform_geom(OUTLINE_CRS, grid.crs, g) for g in geoms]
    return np.asarray(
        geometry_mask(geoms, out_shape=grid.shape, transform=Affine(*grid.transform), invert=True),
        dtype=bool,
    )
