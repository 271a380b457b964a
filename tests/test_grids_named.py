"""Named grids against the providers' constants and real files (EASE .gpd, SMAP subsets)."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from pyproj import Transformer

from grids import (
    GridError,
    list_grids,
    merit_tile_name,
    merit_tiles_for_bounds,
    modis_tile_grid,
    modis_tiles_for_bounds,
    named_grid,
)
from grids.ease import ease2_latlon, ease2_rowcol, ease2_xy
from grids.named import MODIS_SINUSOIDAL_CRS
from pipeline.cli import main

GPD_DIR = "nasa_harmony-SMAP-L2-gridding-service/smap_l2_gridder/reference"
SMAP_SUBSET = (
    "nasa_harmony-regression-tests/test/hoss/reference_files/"
    "hoss_shape_file_2d_no_dimensions_reference.nc4"
)
SMAP_36KM = "nasa_harmony-opendap-subsetter/tests/data/SC_SPL3SMP_008_prefetch.nc4"


def _gpd(path: Path) -> dict[str, float]:
    """Parse an NSIDC .gpd file: 'Key: value ; comment' lines."""
    out: dict[str, float] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z ]+):\s+([-+0-9.eE]+)", line.split(";")[0])
        if m:
            out[m.group(1).strip()] = float(m.group(2))
    return out


@pytest.mark.parametrize(
    ("name", "gpd"), [("ease2-m09", "EASE2_M09km"), ("ease2-m36", "EASE2_M36km")]
)
def test_ease2_grids_match_nsidc_gpd(realdata: Path, name: str, gpd: str) -> None:
    p = _gpd(realdata / GPD_DIR / f"{gpd}.gpd")
    g = named_grid(name)
    cell = p["Grid Map Units per Cell"]
    assert g.crs == "EPSG:6933"
    assert g.shape == (int(p["Grid Height"]), int(p["Grid Width"]))
    assert g.transform == (cell, 0.0, p["Map Origin X"], 0.0, -cell, p["Map Origin Y"])
    # The .gpd origin is the corner of cell (-0.5, -0.5) in centre-based indices.
    assert p["Grid Map Origin Column"] == -0.5 and p["Grid Map Origin Row"] == -0.5
    # Origin X is -180 degrees mapped by the projection; the grid spans it symmetrically.
    x180, _ = ease2_xy(lat=np.array(0.0), lon=np.array(-180.0))
    assert float(x180) == pytest.approx(p["Map Origin X"], abs=1e-6)
    assert g.bounds[2] == pytest.approx(-p["Map Origin X"], abs=1e-6)


def test_ease2_m09_reproduces_the_real_smap_subset(realdata: Path) -> None:
    # README of realdata: the subset holds rows 195..468 and columns 590..1209 of M09.
    with h5py.File(realdata / SMAP_SUBSET, "r") as f:
        g = f["Soil_Moisture_Retrieval_Data_AM"]
        x, y = g["x"][:], g["y"][:]
        lat, lon = g["latitude"][:], g["longitude"][:]
    window = named_grid("ease2-m09").window(195, 469, 590, 1210)
    assert window.shape == lat.shape == (274, 620)
    np.testing.assert_allclose(window.x_coords(), x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(window.y_coords(), y, rtol=0, atol=1e-6)
    rows, cols = np.meshgrid(np.arange(195, 469), np.arange(590, 1210), indexing="ij")
    ok = (lat != -9999.0) & (lon != -9999.0)
    assert ok.sum() > 50_000  # land cells of CONUS carry coordinates
    la, lo = ease2_latlon(rows, cols, "ease2-m09")
    assert np.abs(la - lat)[ok].max() < 1e-4
    assert np.abs(lo - lon)[ok].max() < 1e-4
    r, c = ease2_rowcol(lat[ok], lon[ok], "ease2-m09")
    np.testing.assert_array_equal(r, rows[ok])
    np.testing.assert_array_equal(c, cols[ok])
    # In the window's own indices (as a subset file counts them).
    r, c = ease2_rowcol(lat[ok], lon[ok], window)
    np.testing.assert_array_equal(r, rows[ok] - 195)
    np.testing.assert_array_equal(c, cols[ok] - 590)


def test_ease2_m36_reproduces_real_36km_coordinates(realdata: Path) -> None:
    with h5py.File(realdata / SMAP_36KM, "r") as f:
        lat = f["Soil_Moisture_Retrieval_Data_AM/latitude"][:]
        lon = f["Soil_Moisture_Retrieval_Data_AM/longitude"][:]
    assert lat.shape == named_grid("ease2-m36").shape
    ok = (lat > -999) & (lon > -999)
    rows, cols = np.meshgrid(np.arange(406), np.arange(964), indexing="ij")
    la, lo = ease2_latlon(rows, cols, "m36")
    assert np.abs(la - lat)[ok].max() < 1e-4
    assert np.abs(lo - lon)[ok].max() < 1e-4
    r, c = ease2_rowcol(lat[ok], lon[ok], "m36")
    assert (r == rows[ok]).all() and (c == cols[ok]).all()


def test_ease2_formulas_agree_with_proj() -> None:
    rng = np.random.default_rng(3)
    lat = rng.uniform(-85, 85, 10_000)
    lon = rng.uniform(-180, 180, 10_000)
    x, y = ease2_xy(lat=lat, lon=lon)
    px, py = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True).transform(lon, lat)
    assert np.abs(x - px).max() < 1e-6 and np.abs(y - py).max() < 1e-6
    r, c = ease2_rowcol(np.array([89.9, 0.0]), np.array([0.0, 0.0]))
    assert r.tolist() == [-1, 812] and c.tolist() == [-1, 1928]  # beyond 85.04 N: outside


def test_ease2_rowcol_refuses_other_grids() -> None:
    with pytest.raises(GridError, match="EASE"):
        ease2_rowcol(np.array([0.0]), np.array([0.0]), named_grid("conus-90m"))


def test_conus_90m_is_on_the_merit_lattice() -> None:
    conus, merit = named_grid("conus-90m"), named_grid("merit-3s")
    assert conus.resolution == merit.resolution == (1 / 1200, 1 / 1200)
    r0, r1, c0, c1 = merit.window_of_bounds(conus.bounds)
    assert merit.window(r0, r1, c0, c1) == conus
    assert conus.bounds == (-125.0, 24.0, -66.0, 50.0)
    # Whole-degree edges: one MERIT tile is exactly 6000 x 6000 conus-90m pixels.
    tile = conus.crop((-100.0, 30.0, -95.0, 35.0))
    assert tile.shape == (6000, 6000)


@pytest.mark.parametrize(
    ("name", "crs", "shape", "origin"),
    [
        ("chirps-p05", "EPSG:4326", (2000, 7200), (-180.0, 50.0)),
        ("soilgrids-250m", "ESRI:54052", (58034, 159246), (-19949750.0, 8361000.0)),
        ("soilgrids-1km", "ESRI:54052", (14509, 39812), (-19949750.0, 8361000.0)),
        ("koppen-1km", "EPSG:4326", (21600, 43200), (-180.0, 90.0)),
        ("merit-3s", "EPSG:4326", (180000, 432000), (-180.0, 90.0)),
        ("conus-albers-90m", "EPSG:5070", (34810, 53730), (-2493000.0, 3310200.0)),
    ],
)
def test_named_grid_constants(
    name: str, crs: str, shape: tuple[int, int], origin: tuple[float, float]
) -> None:
    g = named_grid(name)
    assert g.crs == crs and g.shape == shape
    assert (g.transform[2], g.transform[5]) == origin
    assert name in list_grids()


def test_conus_albers_covers_conus_90m() -> None:
    albers = named_grid("conus-albers-90m")
    t = Transformer.from_crs("EPSG:4326", "EPSG:5070", always_xy=True)
    lon = np.array([-124.7, -67.0, -97.0, -80.1])
    lat = np.array([48.9, 44.8, 25.9, 25.2])
    x, y = t.transform(lon, lat)
    r, c = albers.xy_to_rowcol(x, y)
    assert albers.contains_rowcol(r, c).all()


def test_unknown_grid_lists_known_names() -> None:
    with pytest.raises(GridError) as info:
        named_grid("conus-30m")
    for name in list_grids():
        assert name in str(info.value)


def test_modis_tile_grid_constants() -> None:
    g = modis_tile_grid(10, 5, 500)
    assert g.shape == (2400, 2400)
    # docs/data-layout.md: upper-left x = -20015109.354 + h * 1111950.5197665, cell 463.312717 m
    assert g.transform[2] == pytest.approx(-20015109.354 + 10 * 1111950.5197665, abs=1e-6)
    assert g.transform[5] == pytest.approx(10007554.677 - 5 * 1111950.5197665, abs=1e-6)
    assert g.resolution[0] == pytest.approx(463.312717, abs=1e-6)
    assert modis_tile_grid(10, 5, 1000).resolution[0] == pytest.approx(926.625433, abs=1e-6)
    assert modis_tile_grid(10, 5, 250).resolution[0] == pytest.approx(231.656358, abs=1e-6)
    assert named_grid("modis-h10v05-500m") == g
    assert g.same_crs(modis_tile_grid(0, 0, 1000))
    with pytest.raises(GridError):
        modis_tile_grid(36, 0, 500)
    with pytest.raises(GridError):
        modis_tile_grid(1, 1, 300)


def test_modis_tile_centre_is_inside_its_tile() -> None:
    # Oklahoma (ARM-1, 36.6 N 97.5 W) lies in h10v05; Fort Worth in h09v05/h10v05.
    assert modis_tiles_for_bounds((-97.6, 36.5, -97.4, 36.7)) == [(10, 5)]
    t = Transformer.from_crs("EPSG:4326", MODIS_SINUSOIDAL_CRS, always_xy=True)
    x, y = t.transform(-97.4878, 36.6054)
    r, c = modis_tile_grid(10, 5, 1000).xy_to_rowcol(x, y)
    assert 0 <= r < 1200 and 0 <= c < 1200


def test_modis_tiles_for_conus_box_are_complete_and_minimal() -> None:
    box = (-125.0, 24.0, -66.0, 50.0)
    tiles = modis_tiles_for_bounds(box)
    # The usual CONUS land tiles are all there.
    known = {(8, 4), (8, 5), (9, 4), (9, 5), (9, 6), (10, 4), (10, 5), (10, 6)}
    known |= {(11, 4), (11, 5), (12, 4), (12, 5), (13, 4)}
    assert known <= set(tiles)
    # Complete: random points of the box fall in returned tiles.
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(box[0], box[2], 20_000), rng.uniform(box[1], box[3], 20_000)
    x, y = Transformer.from_crs("EPSG:4326", MODIS_SINUSOIDAL_CRS, always_xy=True).transform(
        lon, lat
    )
    h = np.floor((x + 20015109.354) / 1111950.5197665).astype(int)
    v = np.floor((10007554.677 - y) / 1111950.5197665).astype(int)
    assert set(zip(h.tolist(), v.tolist(), strict=True)) <= set(tiles)
    # Minimal: every tile returned really intersects the box (sampled pixel centres).
    inv = Transformer.from_crs(MODIS_SINUSOIDAL_CRS, "EPSG:4326", always_xy=True)
    for th, tv in tiles:
        xs, ys = modis_tile_grid(th, tv, 1000).pixel_centres()
        tlon, tlat = inv.transform(xs[::10, ::10], ys[::10, ::10])
        inside = (tlon >= box[0]) & (tlon <= box[2]) & (tlat >= box[1]) & (tlat <= box[3])
        assert inside.any(), (th, tv)


def test_merit_tile_names() -> None:
    assert merit_tile_name(32.5, -97.3) == "n30w100"
    assert merit_tile_name(30.0, -100.0) == "n30w100"
    assert merit_tile_name(-0.1, 0.1) == "s05e000"
    assert merit_tile_name(89.99, 179.99) == "n85e175"
    # The default region (98.5..96.5 W, 34.5..36.5 N) lies in one tile column.
    assert merit_tiles_for_bounds((-98.5, 34.5, -96.5, 36.5)) == ["n30w100", "n35w100"]
    assert merit_tiles_for_bounds((-95.5, 34.5, -94.5, 35.5)) == [
        "n30w100",
        "n30w095",
        "n35w100",
        "n35w095",
    ]
    # Touching an edge does not pull in the neighbour.
    assert merit_tiles_for_bounds((-100.0, 30.0, -95.0, 35.0)) == ["n30w100"]
    assert len(merit_tiles_for_bounds((-125.0, 24.0, -66.0, 50.0))) == 12 * 6


def test_cli_grid_info_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", "info", "conus-90m", "--tile-size", "1200"]) == 0
    out = capsys.readouterr().out
    assert "31200 rows x 70800 cols" in out
    assert "EPSG:4326" in out
    assert "2,208,960,000" in out
    assert "1,534 (26 x 59" in out  # ceil(31200/1200) x ceil(70800/1200)
    assert main(["grid", "list"]) == 0
    assert "ease2-m09" in capsys.readouterr().out
    assert main(["grid", "info", "nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "known grids" in err
