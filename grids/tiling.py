"""Tiling a grid into rectangular work units aligned with the output Zarr chunks.

Tiles start at multiples of the tile shape from the grid's corner and the last
row/column of tiles is clipped to the grid, so the tiles partition the grid
exactly. A tile is a whole number of Zarr chunks (``assert_aligned``), so two
workers never write to the same chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from grids.errors import GridError
from grids.grid import Grid


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: its position (iy, ix) in the scheme, its pixel window and its sub-grid."""

    iy: int
    ix: int
    row0: int
    row1: int
    col0: int
    col1: int
    grid: Grid

    @property
    def shape(self) -> tuple[int, int]:
        return self.row1 - self.row0, self.col1 - self.col0

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices of this tile in the parent grid's arrays."""
        return slice(self.row0, self.row1), slice(self.col0, self.col1)

    @property
    def window(self) -> tuple[int, int, int, int]:
        return self.row0, self.row1, self.col0, self.col1

    def key(self) -> str:
        """Stable name for Dask keys and logs: ``t<iy>_<ix>-<grid key prefix>``."""
        return f"t{self.iy}_{self.ix}-{self.grid.key()[:16]}"

    def __dask_tokenize__(self) -> tuple[str, int, int, str]:
        return ("grids.Tile", self.iy, self.ix, self.grid.key())


@dataclass(frozen=True, slots=True)
class TileScheme:
    """Tiles of ``tile_shape`` (rows, cols) over ``grid``; edge tiles are clipped."""

    grid: Grid
    tile_shape: tuple[int, int]

    def __post_init__(self) -> None:
        ts = (int(self.tile_shape[0]), int(self.tile_shape[1]))
        if ts[0] <= 0 or ts[1] <= 0:
            raise GridError(f"tile shape must be positive, got {self.tile_shape!r}")
        object.__setattr__(self, "tile_shape", ts)

    @classmethod
    def square(cls, grid: Grid, size: int) -> TileScheme:
        """Square tiles of ``size`` x ``size`` pixels."""
        return cls(grid, (size, size))

    @property
    def n_tiles(self) -> tuple[int, int]:
        """Number of tiles along (rows, cols)."""
        return (
            math.ceil(self.grid.height / self.tile_shape[0]),
            math.ceil(self.grid.width / self.tile_shape[1]),
        )

    @property
    def chunks(self) -> tuple[int, int]:
        """The (y, x) Zarr chunk shape this scheme writes: one chunk per tile."""
        return self.tile_shape

    def __len__(self) -> int:
        ny, nx = self.n_tiles
        return ny * nx

    def tile(self, iy: int, ix: int) -> Tile:
        """Tile at tile-row ``iy``, tile-column ``ix``."""
        ny, nx = self.n_tiles
        if not (0 <= iy < ny and 0 <= ix < nx):
            raise GridError(f"tile ({iy}, {ix}) outside the {ny} x {nx} tiles of this scheme")
        th, tw = self.tile_shape
        r0, c0 = iy * th, ix * tw
        r1 = min(r0 + th, self.grid.height)
        c1 = min(c0 + tw, self.grid.width)
        return Tile(iy, ix, r0, r1, c0, c1, self.grid.window(r0, r1, c0, c1))

    def tiles(self) -> Iterator[Tile]:
        """All tiles, row-major (north to south, then west to east for north-up grids)."""
        ny, nx = self.n_tiles
        for iy in range(ny):
            for ix in range(nx):
                yield self.tile(iy, ix)

    def __iter__(self) -> Iterator[Tile]:
        return self.tiles()

    def tiles_intersecting(self, mask: np.ndarray | Callable[[Tile], bool]) -> list[Tile]:
        """Tiles with any True pixel of ``mask`` (grid-shaped, or one value per tile).

        ``mask`` may also be a predicate ``Tile -> bool`` (e.g. "has land").
        """
        if callable(mask):
            return [t for t in self.tiles() if mask(t)]
        m = np.asarray(mask)
        if m.shape == self.grid.shape:
            ny, nx = self.n_tiles
            th, tw = self.tile_shape
            # Pad to whole tiles, then reduce each tile block with one any().
            padded = np.zeros((ny * th, nx * tw), dtype=bool)
            padded[: m.shape[0], : m.shape[1]] = m.astype(bool)
            per_tile = padded.reshape(ny, th, nx, tw).any(axis=(1, 3))
        elif m.shape == self.n_tiles:
            per_tile = m.astype(bool)
        else:
            raise GridError(
                f"mask shape {m.shape} is neither the grid shape {self.grid.shape} "
                f"nor the tile layout {self.n_tiles}"
            )
        return [self.tile(int(iy), int(ix)) for iy, ix in zip(*np.nonzero(per_tile), strict=True)]

    def assert_aligned(self, chunks: tuple[int, ...]) -> None:
        """Raise ``GridError`` unless every tile is a whole number of ``chunks`` (y, x).

        ``chunks`` may carry leading dimensions (time, ...); the last two are (y, x).
        """
        if len(chunks) < 2:
            raise GridError(f"chunks {chunks!r} need at least (y, x)")
        cy, cx = int(chunks[-2]), int(chunks[-1])
        if cy <= 0 or cx <= 0:
            raise GridError(f"chunks {chunks!r} must be positive")
        th, tw = self.tile_shape
        if th % cy or tw % cx:
            raise GridError(
                f"tiles of {self.tile_shape} are not whole multiples of the Zarr chunks "
                f"({cy}, {cx}): two tiles would write the same chunk"
            )
