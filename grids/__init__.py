"""Grid value types, tiling and resampling. Imports nothing else of smdown."""

from grids.ease import ease2_latlon, ease2_rowcol
from grids.errors import CRSError, GridError
from grids.grid import Grid, crs_equal, normalize_crs
from grids.io import read_grid, read_netcdf_grid
from grids.mask import LAND, URBAN, WATER, surface_mask
from grids.named import (
    MODIS_SINUSOIDAL_CRS,
    list_grids,
    merit_tile_name,
    merit_tiles_for_bounds,
    modis_tile_grid,
    modis_tiles_for_bounds,
    named_grid,
)
from grids.resample import (
    ResampleIndex,
    bilinear,
    gather,
    index_for_window,
    nearest_index,
    nearest_points,
    reproject_nearest,
    source_window,
)
from grids.tiling import Tile, TileScheme

__all__ = [
    "LAND",
    "MODIS_SINUSOIDAL_CRS",
    "URBAN",
    "WATER",
    "CRSError",
    "Grid",
    "GridError",
    "ResampleIndex",
    "Tile",
    "TileScheme",
    "bilinear",
    "crs_equal",
    "ease2_latlon",
    "ease2_rowcol",
    "gather",
    "index_for_window",
    "list_grids",
    "merit_tile_name",
    "merit_tiles_for_bounds",
    "modis_tile_grid",
    "modis_tiles_for_bounds",
    "named_grid",
    "nearest_index",
    "nearest_points",
    "normalize_crs",
    "read_grid",
    "read_netcdf_grid",
    "reproject_nearest",
    "source_window",
    "surface_mask",
]
