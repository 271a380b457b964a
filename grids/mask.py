"""Land / water / urban mask from the MODIS land cover (MCD12Q1 LC_Type1, IGBP 1-17).

The paper masks urban and water pixels out of the maps. Codes of the mask
(uint8): ``LAND`` 0 (mapped), ``WATER`` 1 (IGBP 17 water bodies, and every
value outside 1..17 such as the product fill 255, so missing land cover is
never mapped), ``URBAN`` 2 (IGBP 13 urban and built-up lands), ``OUTSIDE`` 3
(land outside the region the product covers, e.g. Canada and Mexico on a CONUS
grid: ``grids.conus``; not mapped and not flagged).
"""

from __future__ import annotations

import numpy as np

from grids.grid import Grid
from grids.resample import gather, nearest_index

LAND = np.uint8(0)
WATER = np.uint8(1)
URBAN = np.uint8(2)
OUTSIDE = np.uint8(3)

IGBP_URBAN = 13
IGBP_WATER = 17
IGBP_FILL = 255

SURFACE_CLASS_NAMES = {
    int(LAND): "land",
    int(WATER): "water",
    int(URBAN): "urban",
    int(OUTSIDE): "outside",
}


def surface_mask(igbp: np.ndarray) -> np.ndarray:
    """uint8 surface class (LAND/WATER/URBAN) of each IGBP code; any shape, float or int."""
    a = np.asarray(igbp)
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        codes = np.where(finite, a, 0).astype(np.int64)
        valid = finite & (codes == np.where(finite, a, 0)) & (codes >= 1) & (codes <= 17)
    else:
        codes = a.astype(np.int64)
        valid = (codes >= 1) & (codes <= 17)
    out = np.full(a.shape, LAND, dtype=np.uint8)
    out[codes == IGBP_URBAN] = URBAN
    out[(codes == IGBP_WATER) | ~valid] = WATER
    return out


def surface_mask_on_grid(igbp: np.ndarray, src: Grid, dst: Grid) -> np.ndarray:
    """The surface mask on ``dst`` from land cover on ``src`` (nearest, GDAL-identical).

    Target pixels the land cover does not cover are WATER (not mapped).
    """
    lc = gather(np.asarray(igbp).astype(np.int16), nearest_index(src, dst), fill=IGBP_FILL)
    return surface_mask(lc)


def mappable(mask: np.ndarray) -> np.ndarray:
    """Boolean: pixels the maps are made for (LAND)."""
    return np.asarray(mask) == LAND
