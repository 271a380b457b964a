"""Errors raised by grids/: each names the grid, file or key at fault."""

from __future__ import annotations


class GridError(Exception):
    """A grid, tiling or resampling request is invalid."""


class CRSError(GridError):
    """A raster has no CRS, or one that cannot be parsed."""
