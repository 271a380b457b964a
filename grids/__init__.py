"""Grid value types, tiling and resampling. Imports nothing else of smdown."""

from grids.errors import CRSError, GridError
from grids.grid import Grid, normalize_crs

__all__ = ["CRSError", "Grid", "GridError", "normalize_crs"]
