"""Tiling: tiles partition the grid exactly, align with Zarr chunks; the surface mask."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grids import Grid, GridError, TileScheme, named_grid
from grids.mask import LAND, URBAN, WATER, mappable, surface_mask, surface_mask_on_grid


@st.composite
def schemes(draw: st.DrawFn) -> TileScheme:
    shape = (draw(st.integers(1, 300)), draw(st.integers(1, 300)))
    tile = (draw(st.integers(5, 128)), draw(st.integers(5, 128)))
    grid = Grid("EPSG:4326", (0.01, 0.0, -100.0, 0.0, -0.01, 40.0), shape)
    return TileScheme(grid, tile)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(schemes())
def test_tiles_partition_the_grid_exactly(scheme: TileScheme) -> None:
    count = np.zeros(scheme.grid.shape, dtype=np.int32)
    tiles = list(scheme.tiles())
    assert len(tiles) == len(scheme)
    for t in tiles:
        count[t.slices] += 1
        assert t.shape == t.grid.shape
        assert 0 < t.shape[0] <= scheme.tile_shape[0] and 0 < t.shape[1] <= scheme.tile_shape[1]
        # The tile's grid is the parent's window (same lattice, same pixel centres).
        assert t.grid == scheme.grid.window(t.row0, t.row1, t.col0, t.col1)
        assert scheme.tile(t.iy, t.ix) == t
        assert t.row0 % scheme.tile_shape[0] == 0 and t.col0 % scheme.tile_shape[1] == 0
    assert (count == 1).all()
    assert len({t.key() for t in tiles}) == len(tiles)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(schemes(), st.integers(1, 64), st.integers(1, 64))
def test_alignment_means_no_chunk_is_shared(scheme: TileScheme, cy: int, cx: int) -> None:
    th, tw = scheme.tile_shape
    aligned = th % cy == 0 and tw % cx == 0
    if aligned:
        scheme.assert_aligned((1, cy, cx))
    else:
        with pytest.raises(GridError, match="chunks"):
            scheme.assert_aligned((cy, cx))
    # What alignment guarantees: every Zarr chunk belongs to exactly one tile.
    owner = np.full(scheme.grid.shape, -1)
    for k, t in enumerate(scheme.tiles()):
        owner[t.slices] = k
    h, w = owner.shape
    padded = np.pad(owner, ((0, -h % cy), (0, -w % cx)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // cy, cy, padded.shape[1] // cx, cx)
    shared = bool((blocks.min(axis=(1, 3)) != blocks.max(axis=(1, 3))).any())
    if aligned:
        assert not shared
    scheme.assert_aligned(scheme.chunks)


def test_tiles_intersecting_mask_predicate_and_tile_layout() -> None:
    grid = named_grid("conus-90m").crop((-98.5, 34.5, -96.5, 36.5))
    scheme = TileScheme.square(grid, 1000)
    assert scheme.n_tiles == (3, 3) and len(scheme) == 9
    land = np.zeros(grid.shape, dtype=bool)
    land[1500, 2100] = True  # one pixel in tile (1, 2)
    land[2399, 0] = True  # the last row, first column: clipped edge tile (2, 0)
    got = [(t.iy, t.ix) for t in scheme.tiles_intersecting(land)]
    assert got == [(1, 2), (2, 0)]
    assert scheme.tile(2, 0).shape == (400, 1000)
    per_tile = np.eye(3, dtype=bool)
    assert [(t.iy, t.ix) for t in scheme.tiles_intersecting(per_tile)] == [(0, 0), (1, 1), (2, 2)]
    assert len(scheme.tiles_intersecting(lambda t: t.ix == 1)) == 3
    with pytest.raises(GridError, match="mask shape"):
        scheme.tiles_intersecting(np.ones((5, 5), dtype=bool))
    with pytest.raises(GridError):
        scheme.tile(3, 0)
    with pytest.raises(GridError):
        TileScheme(grid, (0, 10))


def test_conus_tile_count() -> None:
    scheme = TileScheme.square(named_grid("conus-90m"), 1200)
    assert scheme.n_tiles == (26, 59)  # 31200 / 1200, 70800 / 1200
    last = scheme.tile(25, 58)
    assert last.grid.bounds == pytest.approx((-67.0, 24.0, -66.0, 25.0), abs=1e-9)


def test_surface_mask_codes() -> None:
    igbp = np.array([[1, 12, 13, 17], [0, 255, 16, 14]], dtype=np.uint8)
    m = surface_mask(igbp)
    assert m.dtype == np.uint8
    expected = [[LAND, LAND, URBAN, WATER], [WATER, WATER, LAND, LAND]]
    np.testing.assert_array_equal(m, np.array(expected, dtype=np.uint8))
    f = surface_mask(np.array([13.0, np.nan, 17.0, 5.5, 5.0]))
    assert f.tolist() == [URBAN, WATER, WATER, WATER, LAND]
    assert mappable(m).sum() == 4


def test_surface_mask_on_grid_marks_uncovered_as_water() -> None:
    src = Grid("EPSG:4326", (0.5, 0.0, -100.0, 0.0, -0.5, 40.0), (4, 4))
    dst = Grid("EPSG:4326", (0.25, 0.0, -101.0, 0.0, -0.25, 40.0), (8, 12))
    lc = np.full(src.shape, 10, dtype=np.uint8)
    lc[0, 0] = 13
    m = surface_mask_on_grid(lc, src, dst)
    assert (m[:, :4] == WATER).all()  # west of the land cover: not mapped
    assert (m[:2, 4:6] == URBAN).all()
    assert (m[:, 6:][m[:, 6:] != URBAN] == LAND).all()
