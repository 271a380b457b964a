"""Grid value type: constructors, windows, coordinates, and keys stable across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grids import Grid, GridError, named_grid
from grids.grid import crs_equal

ROOT = Path(__file__).resolve().parents[1]


def test_from_bounds_snaps_to_the_lattice() -> None:
    g = Grid.from_bounds((-98.501, 34.4999, -96.5, 36.5), 0.25, "EPSG:4326")
    assert g.bounds == (-98.75, 34.25, -96.5, 36.5)
    assert g.shape == (9, 9)
    assert g.resolution == (0.25, 0.25)


def test_from_coords_rebuilds_corners_from_centres() -> None:
    g = Grid.from_coords(np.array([0.5, 1.5, 2.5]), np.array([9.5, 8.5]), "EPSG:4326")
    assert g.transform == (1.0, 0.0, 0.0, 0.0, -1.0, 10.0)
    assert g.shape == (2, 3)
    np.testing.assert_array_equal(g.x_coords(), [0.5, 1.5, 2.5])


def test_from_coords_rejects_irregular_axes() -> None:
    with pytest.raises(GridError, match="not regularly spaced"):
        Grid.from_coords(np.array([0.0, 1.0, 3.0]), np.array([1.0, 0.0]), "EPSG:4326")


def test_window_and_crop_share_the_parent_lattice() -> None:
    g = named_grid("conus-90m")
    w = g.window(1200, 2400, 3600, 4800)
    assert w.shape == (1200, 1200)
    assert w.bounds == pytest.approx((-122.0, 48.0, -121.0, 49.0), abs=1e-9)
    assert g.crop(w.bounds) == w
    # Pixel centres of the window are the parent's centres.
    np.testing.assert_allclose(w.x_coords(), g.x_coords()[3600:4800], rtol=0, atol=1e-9)


def test_xy_to_rowcol_is_floor_and_contains() -> None:
    g = Grid("EPSG:4326", (1.0, 0.0, 0.0, 0.0, -1.0, 10.0), (10, 10))
    rows, cols = g.xy_to_rowcol(np.array([0.0, 0.5, 9.99, 10.0]), np.array([10.0, 9.5, 0.01, 5]))
    assert rows.tolist() == [0, 0, 9, 5]
    assert cols.tolist() == [0, 0, 9, 10]
    assert g.contains_rowcol(rows, cols).tolist() == [True, True, True, False]


def test_equality_hash_and_crs_spelling() -> None:
    a = Grid("epsg:4326", (1.0, 0.0, 0.0, 0.0, -1.0, 10.0), (10, 10))
    b = Grid("EPSG:4326", (1, 0, 0, 0, -1, 10), (10, 10))
    assert a == b and hash(a) == hash(b) and a.key() == b.key()
    assert a != a.window(0, 5, 0, 5)
    assert crs_equal("EPSG:4326", a.to_wkt())


def test_grid_is_immutable() -> None:
    g = named_grid("ease2-m09")
    with pytest.raises(AttributeError):
        g.shape = (1, 1)  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [
        {"crs": "EPSG:4326", "transform": (0, 0, 0, 0, 0, 0), "shape": (1, 1)},
        {"crs": "EPSG:4326", "transform": (1, 0, 0, 0, -1, 0), "shape": (0, 3)},
    ],
)
def test_invalid_grids_raise(bad: dict[str, object]) -> None:
    with pytest.raises(GridError):
        Grid(**bad)  # type: ignore[arg-type]


_KEY_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from dask.base import tokenize
from grids import named_grid, TileScheme
out = []
for name in ("conus-90m", "ease2-m09", "modis-h10v05-500m", "soilgrids-250m"):
    g = named_grid(name)
    t = TileScheme(g, (1200, 1200)).tile(0, 1)
    out.append(g.key() + " " + tokenize(g) + " " + str(hash(g)) + " " + tokenize(t))
print("\\n".join(out))
"""


def _keys_in_subprocess(seed: str) -> list[str]:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    res = subprocess.run(
        [sys.executable, "-c", _KEY_SCRIPT.format(root=str(ROOT))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return res.stdout.strip().split("\n")


def test_keys_and_dask_tokens_are_stable_across_processes() -> None:
    a = _keys_in_subprocess("1")
    b = _keys_in_subprocess("12345")
    assert a == b
    assert len(a) == 4 and all(len(line.split()) == 4 for line in a)
    # And the in-process key is the same as in the other processes.
    assert a[0].split()[0] == named_grid("conus-90m").key()
