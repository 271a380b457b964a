"""Nearest neighbour identical to GDAL on real rasters and generated grid pairs; bilinear; nodata.

GDAL reference: a raster whose value is its own flat pixel index, warped by GDAL
(rasterio ``WarpedVRT``, nearest) onto the target; each target value then names
the source pixel GDAL chose. ``exact=True`` sets the approximate transformer's
error threshold to 1e-9 pixel (rasterio 1.4's ``reproject`` ignores a tolerance),
which is GDAL following the exact geometry, as ``grids.resample`` does.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5netcdf
import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.transform import from_origin
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject, transform_bounds

from grids import (
    CRSError,
    Grid,
    GridError,
    bilinear,
    gather,
    index_for_window,
    named_grid,
    nearest_index,
    nearest_points,
    read_grid,
    read_netcdf_grid,
    source_window,
)
from grids.io import geotransform_offset
from grids.resample import reproject_nearest

DEM = "mdbartos_pysheds/data/dem.tif"
GRIDMET = "corteva_rioxarray/test/test_data/input/tmmx_20190121.nc"
COG = "corteva_rioxarray/test/test_data/input/cog.tif"
NDVI = "ropensci_MODIStsp/inst/testdata/VI_16Days_500m_v6/NDVI.zip"


def gdal_choice(src: Grid, dst: Grid, *, exact: bool = True) -> np.ndarray:
    """Flat source index GDAL's nearest picks for each target pixel, -1 for none."""
    data = np.arange(src.size, dtype=np.float64).reshape(src.shape)
    with MemoryFile() as mf:
        with mf.open(
            driver="GTiff",
            width=src.width,
            height=src.height,
            count=1,
            dtype="float64",
            crs=src.to_wkt(),
            transform=src.affine,
        ) as ds:
            ds.write(data, 1)
        with (
            mf.open() as ds,
            WarpedVRT(
                ds,
                crs=dst.to_wkt(),
                transform=dst.affine,
                width=dst.width,
                height=dst.height,
                resampling=Resampling.nearest,
                tolerance=1e-9 if exact else 0.125,
                src_nodata=None,
                nodata=-1.0,
            ) as vrt,
        ):
            return vrt.read(1).astype(np.int64)


def our_choice(src: Grid, dst: Grid) -> np.ndarray:
    idx = nearest_index(src, dst)
    rows = idx.rows_2d().astype(np.int64)
    return np.where(idx.valid, rows * src.width + idx.cols_2d(), -1)


def assert_same_choice(src: Grid, dst: Grid) -> float:
    ours = our_choice(src, dst)
    theirs = gdal_choice(src, dst)
    bad = ours != theirs
    assert not bad.any(), f"{bad.sum()} of {bad.size} pixels differ from GDAL"
    return nearest_index(src, dst).coverage


# ----------------------------------------------------------------------------------------
# Real rasters
# ----------------------------------------------------------------------------------------
def test_dem_3s_onto_90m_window(realdata: Path) -> None:
    src = read_grid(realdata / DEM)
    # dem.tif: 367 x 359 int16, 3" cells (realdata README), on the MERIT lattice up to 4e-12 deg.
    assert src.shape == (359, 367)
    conus = named_grid("conus-90m")
    dst = conus.crop(src.bounds)
    idx = nearest_index(src, dst)
    assert idx.separable
    cov = assert_same_choice(src, dst)
    assert 0.99 < cov <= 1.0
    # A window reaching beyond the DEM: exact coverage, nodata outside.
    r0, r1, c0, c1 = conus.window_of_bounds(src.bounds)
    big = conus.window(r0 - 50, r1 + 50, c0 - 50, c1 + 50)
    cov_big = assert_same_choice(src, big)
    assert cov_big == pytest.approx(src.size / big.size, rel=0.02)
    with rasterio.open(realdata / DEM) as ds:
        dem = ds.read(1)
        dem_nodata = ds.nodata
    out = gather(dem, nearest_index(src, big), fill=int(dem_nodata))
    assert out.dtype == dem.dtype
    assert (out[:50] == dem_nodata).all() and (out[:, :50] == dem_nodata).all()


def test_gridmet_half_cell_geotransform_trap(
    realdata: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = realdata / GRIDMET
    with caplog.at_level(logging.WARNING, logger="grids.io"):
        src = read_netcdf_grid(path, "air_temperature")
    assert "GeoTransform" in caplog.text  # the trap is detected and reported
    # 585 x 1386 cells of 1/24 degree (realdata README); corner half a cell beyond lon[0].
    assert src.shape == (585, 1386)
    assert src.resolution == pytest.approx((1 / 24, 1 / 24), rel=1e-9)
    with h5netcdf.File(path, "r") as f:
        gt = f.variables["crs"].attrs["GeoTransform"]
        lon0 = float(f.variables["lon"][0])
    assert geotransform_offset(src, gt) == pytest.approx((0.5, 0.5), abs=1e-6)
    assert src.transform[2] == pytest.approx(lon0 - 1 / 48, abs=1e-9)
    # GDAL's netCDF driver also builds the grid from the coordinates: same grid.
    with rasterio.open(path) as ds:
        np.testing.assert_allclose(tuple(ds.transform)[:6], src.transform, rtol=0, atol=1e-9)
    # Trusting the attribute instead would pick other pixels for much of a 90 m window.
    dst = named_grid("conus-90m").crop((-98.5, 34.5, -97.5, 35.5))
    trap = Grid("EPSG:4326", (1 / 24, 0, src.transform[2] + 1 / 48, 0, -1 / 24, 49.4), src.shape)
    assert (our_choice(trap, dst) != our_choice(src, dst)).mean() > 0.4


def test_gridmet_onto_90m_windows_matches_gdal(realdata: Path) -> None:
    path = realdata / GRIDMET
    src = read_netcdf_grid(path, "air_temperature")
    conus = named_grid("conus-90m")
    inner = conus.crop((-98.5, 34.5, -97.5, 35.5))
    assert assert_same_choice(src, inner) == 1.0
    edge = conus.crop((-125.0, 48.9, -124.3, 50.0))  # north-west corner: partly outside
    cov = assert_same_choice(src, edge)
    assert 0.2 < cov < 0.5
    # Values: raw uint16 gathered == GDAL's nearest on the raw band (fill 32767), on the
    # inner window (data) and the edge window (Pacific/Canada: nodata and uncovered).
    with rasterio.open(path) as ds:
        raw = ds.read(1)
    for dst in (inner, edge):
        expected = np.full(dst.shape, 32767, dtype=np.uint16)
        reproject(
            raw,
            expected,
            src_transform=src.affine,
            src_crs="EPSG:4326",
            src_nodata=32767,
            dst_transform=dst.affine,
            dst_crs="EPSG:4326",
            dst_nodata=32767,
            resampling=Resampling.nearest,
        )
        got = gather(raw, nearest_index(src, dst), fill=32767)
        np.testing.assert_array_equal(got, expected)
    # Scaled as CF says (K = raw * 0.1 + 220): a plausible January maximum in Oklahoma.
    got = gather(raw, nearest_index(src, inner), fill=32767)
    assert (got != 32767).all()
    k = got * 0.1 + 220.0
    assert 260 < k.mean() < 300


def test_albers_cog_onto_epsg4326_matches_exact_gdal(realdata: Path) -> None:
    src = read_grid(realdata / COG)
    assert src.shape == (500, 500) and not src.crs.startswith("EPSG")  # custom WKT
    b = transform_bounds(src.to_wkt(), "EPSG:4326", *src.bounds)
    dst = named_grid("conus-90m").crop(b)
    assert not nearest_index(src, dst).separable
    cov = assert_same_choice(src, dst)
    assert 0.5 < cov < 1.0  # a rotated square inside its lon/lat bounding box
    # GDAL's default approximate transformer (0.125 px) picks other pixels for a few
    # percent of targets, all within one pixel of ours: the documented difference.
    approx = gdal_choice(src, dst, exact=False)
    ours = our_choice(src, dst)
    differ = (approx != ours) & (approx >= 0) & (ours >= 0)
    assert 0 < differ.mean() < 0.05
    dr = np.abs(approx[differ] // src.width - ours[differ] // src.width)
    dc = np.abs(approx[differ] % src.width - ours[differ] % src.width)
    assert dr.max() <= 1 and dc.max() <= 1


@pytest.mark.parametrize("doy", ["001", "337"])
def test_modis_sinusoidal_ndvi_onto_epsg4326(realdata: Path, doy: str) -> None:
    path = f"/vsizip/{realdata / NDVI}/NDVI/MOD13A1_NDVI_2016_{doy}.tif"
    src = read_grid(path)
    assert src.shape == (122, 65) and "Sinusoidal" in src.crs
    b = transform_bounds(src.to_wkt(), "EPSG:4326", *src.bounds)
    dst = named_grid("merit-3s").crop(b)
    cov = assert_same_choice(src, dst)
    assert 0.6 < cov < 1.0
    with rasterio.open(path) as ds:
        band = ds.read(1)
        nodata = ds.nodata
    got = gather(band, nearest_index(src, dst), fill=nodata)
    expected = np.full(dst.shape, nodata, dtype=band.dtype)
    with MemoryFile() as mf:
        with mf.open(
            driver="GTiff",
            width=src.width,
            height=src.height,
            count=1,
            dtype=band.dtype,
            crs=src.to_wkt(),
            transform=src.affine,
        ) as ds:
            ds.write(band, 1)
        with (
            mf.open() as ds,
            WarpedVRT(
                ds,
                crs="EPSG:4326",
                transform=dst.affine,
                width=dst.width,
                height=dst.height,
                resampling=Resampling.nearest,
                tolerance=1e-9,
                src_nodata=None,
                nodata=nodata,
            ) as vrt,
        ):
            expected = vrt.read(1)
    np.testing.assert_array_equal(got, expected)


# ----------------------------------------------------------------------------------------
# Generated grid pairs
# ----------------------------------------------------------------------------------------
_RATIOS = [1, 2, 3, 4, 5, 1 / 2, 1 / 3, 1 / 4, 2 / 3, 3 / 2, 0.37, 1.9]


@st.composite
def same_crs_pairs(draw: st.DrawFn) -> tuple[Grid, Grid]:
    """Pairs on related lattices: many target centres fall exactly on source edges."""
    res = draw(st.sampled_from([1 / 1200, 1 / 24, 0.05, 0.25, 1.0]))
    ratio = draw(st.sampled_from(_RATIOS))
    sh = (draw(st.integers(3, 40)), draw(st.integers(3, 40)))
    x0 = -100.0 + draw(st.integers(0, 40)) * res
    y0 = 40.0 - draw(st.integers(0, 40)) * res
    south_up = draw(st.booleans())
    e = res if south_up else -res
    src = Grid("EPSG:4326", (res, 0.0, x0, 0.0, e, y0 if not south_up else 20.0), sh)
    dres = res * ratio
    # Offsets in quarter/half target cells make exact ties on source edges.
    ox = draw(st.integers(-30, 30)) * dres / draw(st.sampled_from([1, 2, 4]))
    oy = draw(st.integers(-30, 30)) * dres / draw(st.sampled_from([1, 2, 4]))
    dsh = (draw(st.integers(1, 50)), draw(st.integers(1, 50)))
    dst = Grid("EPSG:4326", (dres, 0.0, x0 + ox, 0.0, -dres, src.bounds[3] + oy), dsh)
    return src, dst


@settings(
    max_examples=80, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(same_crs_pairs())
def test_same_crs_pairs_match_gdal_including_ties(pair: tuple[Grid, Grid]) -> None:
    src, dst = pair
    assert nearest_index(src, dst).separable
    ours = our_choice(src, dst)
    theirs = gdal_choice(src, dst)
    np.testing.assert_array_equal(ours, theirs)


_CRSS = ["EPSG:5070", "EPSG:32614", "EPSG:3857", "EPSG:6933", "ESRI:54052"]


@st.composite
def cross_crs_pairs(draw: st.DrawFn) -> tuple[Grid, Grid]:
    crs = draw(st.sampled_from(_CRSS))
    lon = draw(st.floats(-104.0, -92.0))
    lat = draw(st.floats(28.0, 45.0))
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    res = draw(st.sampled_from([90.0, 250.0, 463.3127165, 1000.0, 9008.055210146]))
    sh = (draw(st.integers(4, 30)), draw(st.integers(4, 30)))
    src = Grid(crs, (res, 0.0, x - res * sh[1] / 2, 0.0, -res, y + res * sh[0] / 2), sh)
    deg = res / 111_000 * draw(st.sampled_from([0.3, 0.5, 1.0, 2.0]))
    dsh = (draw(st.integers(4, 40)), draw(st.integers(4, 40)))
    dst = Grid(
        "EPSG:4326", (deg, 0.0, lon - deg * dsh[1] / 2, 0.0, -deg, lat + deg * dsh[0] / 2), dsh
    )
    if draw(st.booleans()):
        src, dst = dst, src
    return src, dst


@settings(
    max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(cross_crs_pairs())
def test_cross_crs_pairs_match_exact_gdal(pair: tuple[Grid, Grid]) -> None:
    src, dst = pair
    np.testing.assert_array_equal(our_choice(src, dst), gdal_choice(src, dst))


def test_exact_tie_goes_to_the_higher_index() -> None:
    # Target centres at x = 0, 0.5, 1.0, ... on a 1-degree source: x = 1.0 is the edge
    # between columns 0 and 1 and belongs to column 1 (floor), as in GDAL.
    src = Grid("EPSG:4326", (1.0, 0.0, 0.0, 0.0, -1.0, 10.0), (10, 10))
    dst = Grid("EPSG:4326", (0.5, 0.0, -0.25, 0.0, -0.5, 10.25), (21, 21))
    idx = nearest_index(src, dst)
    assert idx.cols[:6].tolist() == [0, 0, 1, 1, 2, 2]
    assert idx.rows[:6].tolist() == [0, 0, 1, 1, 2, 2]
    assert not idx.valid_rows[-1] and not idx.valid_cols[-1]  # x = 10.0: outside
    np.testing.assert_array_equal(our_choice(src, dst), gdal_choice(src, dst))


# ----------------------------------------------------------------------------------------
# Coverage, nodata, windows, points
# ----------------------------------------------------------------------------------------
def _pair() -> tuple[Grid, Grid]:
    src = Grid("EPSG:4326", (0.25, 0.0, -100.0, 0.0, -0.25, 40.0), (8, 12))
    dst = Grid("EPSG:4326", (0.1, 0.0, -101.0, 0.0, -0.1, 41.0), (30, 30))
    return src, dst


def test_uncovered_targets_get_fill_and_coverage_is_reported() -> None:
    src, dst = _pair()
    data = np.zeros(src.shape, dtype=np.float32)  # zeros everywhere in the source
    out, cov = reproject_nearest(data, src, dst)
    valid = nearest_index(src, dst).valid
    assert np.isnan(out[~valid]).all() and (out[valid] == 0).all()
    assert cov == pytest.approx(valid.mean())
    # Inside: x in [-100, -97) and y in (38, 40] -> 20 rows x 20 cols of 0.1 degree.
    assert valid.sum() == 20 * 20
    far = Grid("EPSG:4326", (0.1, 0.0, 10.0, 0.0, -0.1, 10.0), (5, 5))
    out, cov = reproject_nearest(data, src, far)
    assert cov == 0.0 and np.isnan(out).all()
    assert source_window(src, far) is None


def test_integer_data_needs_a_representable_fill() -> None:
    src, dst = _pair()
    idx = nearest_index(src, dst)
    data = np.ones(src.shape, dtype=np.uint8)
    with pytest.raises(GridError, match="integer"):
        gather(data, idx)
    with pytest.raises(GridError, match="fit"):
        gather(data, idx, fill=-1)
    out = gather(data, idx, fill=255)
    assert out.dtype == np.uint8 and set(np.unique(out)) == {1, 255}


def test_gather_keeps_leading_axes_and_checks_shape() -> None:
    src, dst = _pair()
    rng = np.random.default_rng(0)
    cube = rng.random((3, 2, *src.shape))
    out = gather(cube, nearest_index(src, dst))
    assert out.shape == (3, 2, *dst.shape)
    np.testing.assert_array_equal(out[1, 1], gather(cube[1, 1], nearest_index(src, dst)))
    with pytest.raises(GridError, match="shape"):
        gather(cube[..., :-1], nearest_index(src, dst))


def test_window_read_gives_the_same_result() -> None:
    src = named_grid("chirps-p05")
    dst = named_grid("conus-90m").crop((-98.5, 34.5, -96.5, 36.5))
    idx = nearest_index(src, dst)
    win = source_window(src, dst, pad=1)
    assert win is not None
    r0, r1, c0, c1 = win
    assert (r1 - r0, c1 - c0) == (2 / 0.05 + 2, 2 / 0.05 + 2)
    rng = np.random.default_rng(1)
    part = rng.random((r1 - r0, c1 - c0)).astype(np.float32)
    full = np.full(src.shape, np.nan, dtype=np.float32)
    full[r0:r1, c0:c1] = part
    np.testing.assert_array_equal(gather(part, index_for_window(idx, win)), gather(full, idx))
    # Non-separable index, windowed: same identity.
    modis = named_grid("modis-h10v05-500m")
    small = dst.window(0, 200, 0, 300)
    idx2 = nearest_index(modis, small)
    win2 = source_window(modis, small)
    assert win2 is not None
    data = rng.random(modis.shape).astype(np.float32)
    sub = data[win2[0] : win2[1], win2[2] : win2[3]]
    np.testing.assert_array_equal(gather(sub, index_for_window(idx2, win2)), gather(data, idx2))
    # A too-small window loses sources instead of reading wrong pixels.
    shrunk = index_for_window(idx, (r0 + 5, r1, c0, c1))
    assert shrunk.coverage < idx.coverage
    assert np.isnan(gather(part[5:], shrunk)[: shrunk.dst_shape[0] // 4]).any()


def test_index_is_cached_and_read_only() -> None:
    src, dst = _pair()
    a = nearest_index(src, dst)
    assert nearest_index(src, dst) is a
    assert a.key == nearest_index(Grid(src.crs, src.transform, src.shape), dst).key
    with pytest.raises(ValueError):
        a.rows[0] = 3


def test_index_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from grids.resample import clear_caches

    clear_caches()
    src = named_grid("modis-h10v05-1000m")
    tiles = [named_grid("conus-90m").window(12000, 12100, i * 100, (i + 1) * 100) for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda t: our_choice(src, t), tiles * 3))
    clear_caches()
    for k, t in enumerate(tiles):
        expected = our_choice(src, t)
        for rep in range(3):
            np.testing.assert_array_equal(got[rep * 8 + k], expected)


def test_cache_is_bounded_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from grids import resample

    cache = resample._LRU(size=100, max_bytes=3 * 2**20)
    monkeypatch.setattr(resample, "_nearest_cache", cache)
    src = named_grid("chirps-p05")
    tiles = [named_grid("conus-90m").window(0, 300, i * 300, (i + 1) * 300) for i in range(8)]
    a = nearest_index(named_grid("modis-h10v05-500m"), tiles[0])  # 2-D: ~1.1 MB
    assert a.nbytes > 2**20
    for t in tiles[1:]:
        nearest_index(named_grid("modis-h10v05-500m"), t)
    assert cache.bytes <= 3 * 2**20 and len(cache.data) < 8
    assert nearest_index(src, tiles[0]).separable
    assert nearest_index(named_grid("modis-h10v05-500m"), tiles[0]) is not a  # evicted


def test_nearest_points_matches_the_grid_index() -> None:
    src = named_grid("ease2-m09")
    lon = np.array([-97.4878, -83.347086, 0.0, 10.0])
    lat = np.array([36.6054, 41.628495, 89.9, -86.0])  # EASE-2 M09 stops at 85.04 N/S
    rows, cols, valid = nearest_points(src, lon, lat, "EPSG:4326")
    assert valid.tolist() == [True, True, False, False]
    from grids.ease import ease2_rowcol

    r, c = ease2_rowcol(lat[:2], lon[:2])
    assert rows[:2].tolist() == r.tolist() and cols[:2].tolist() == c.tolist()


# ----------------------------------------------------------------------------------------
# Bilinear
# ----------------------------------------------------------------------------------------
def test_bilinear_reproduces_a_plane_and_matches_gdal_inside() -> None:
    src = Grid("EPSG:4326", (0.25, 0.0, -100.0, 0.0, -0.25, 40.0), (20, 24))
    dst = Grid("EPSG:4326", (0.05, 0.0, -99.0, 0.0, -0.05, 39.0), (40, 60))
    xs, ys = src.pixel_centres()
    plane = 3.0 * xs - 2.0 * ys + 1.0
    out = bilinear(plane, src, dst)
    dx, dy = dst.pixel_centres()
    np.testing.assert_allclose(out, 3.0 * dx - 2.0 * dy + 1.0, rtol=0, atol=1e-9)
    rng = np.random.default_rng(5)
    field = rng.random(src.shape)
    expected = np.full(dst.shape, np.nan)
    reproject(
        field,
        expected,
        src_transform=src.affine,
        src_crs="EPSG:4326",
        dst_transform=dst.affine,
        dst_crs="EPSG:4326",
        resampling=Resampling.bilinear,
    )
    np.testing.assert_allclose(bilinear(field, src, dst), expected, rtol=1e-6, atol=1e-9)


def test_bilinear_renormalises_around_nodata() -> None:
    src = Grid("EPSG:4326", (1.0, 0.0, 0.0, 0.0, -1.0, 2.0), (2, 2))
    dst = Grid("EPSG:4326", (1.0, 0.0, 0.5, 0.0, -1.0, 1.5), (1, 1))  # centre at (1, 1)
    data = np.array([[1.0, 2.0], [3.0, -9999.0]])
    assert bilinear(data, src, dst, nodata=-9999.0)[0, 0] == pytest.approx(2.0)
    data[:] = np.nan
    assert np.isnan(bilinear(data, src, dst)[0, 0])


# ----------------------------------------------------------------------------------------
# Bad input files
# ----------------------------------------------------------------------------------------
def test_raster_without_crs_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "no_crs.tif"
    with rasterio.open(
        p, "w", driver="GTiff", width=4, height=3, count=1, dtype="float32",
        transform=from_origin(0, 3, 1, 1),
    ) as ds:  # fmt: skip
        ds.write(np.zeros((1, 3, 4), dtype="float32"))
    with pytest.raises(CRSError, match=r"no_crs\.tif"):
        read_grid(p)
    vrt = tmp_path / "garbage_srs.vrt"
    vrt.write_text(
        f'<VRTDataset rasterXSize="4" rasterYSize="3"><SRS>NOT A CRS</SRS>'
        f"<GeoTransform>0, 1, 0, 3, 0, -1</GeoTransform>"
        f'<VRTRasterBand dataType="Float32" band="1"><SimpleSource>'
        f'<SourceFilename relativeToVRT="0">{p}</SourceFilename><SourceBand>1</SourceBand>'
        f"</SimpleSource></VRTRasterBand></VRTDataset>"
    )
    with pytest.raises(CRSError, match=r"garbage_srs\.vrt"):
        read_grid(vrt)


def test_netcdf_with_unparseable_crs_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "bad_crs.nc"
    with h5netcdf.File(p, "w") as f:
        f.dimensions = {"y": 3, "x": 4}
        f.create_variable("x", ("x",), data=np.arange(4.0) * 1000)
        f.create_variable("y", ("y",), data=np.arange(3.0)[::-1] * 1000)
        crs = f.create_variable("crs", (), dtype="i4")
        crs.attrs["spatial_ref"] = "PROJCS[nonsense"
        v = f.create_variable("sm", ("y", "x"), data=np.zeros((3, 4), dtype="f4"))
        v.attrs["grid_mapping"] = "crs"
    with pytest.raises(CRSError, match=r"bad_crs\.nc"):
        read_netcdf_grid(p, "sm")
    with pytest.raises(GridError, match=r"bad_crs\.nc"):
        read_netcdf_grid(p, "nope")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(GridError, match=r"missing\.tif"):
        read_grid(tmp_path / "missing.tif")


# -- closed-form sinusoidal centres (issue 19) ----------------------------------------------
def test_sinusoidal_closed_form_gives_proj_bits_and_the_same_indices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """conus-90m tiles (corners of the grid, random ones, a one-pixel one) into MODIS
    sinusoidal: closed-form centres equal PROJ's bit for bit, and the nearest indices
    onto the 250 m / 1 km MODIS lattices are identical with and without the fast path."""
    from grids import resample as rs
    from grids.named import MODIS_SINUSOIDAL_CRS, modis_tile_grid, named_grid

    g = named_grid("conus-90m")
    rng = np.random.default_rng(19)
    corners = [(0, 0), (0, g.width - 300), (g.height - 300, 0), (g.height - 300, g.width - 300)]
    some = [(int(rng.integers(0, g.height - 300)), int(rng.integers(0, g.width - 300)))]
    tiles = [g.window(r, r + 300, c, c + 300) for r, c in corners + some * 3]
    tiles.append(g.window(1000, 1001, 2000, 2001))
    for t in tiles:
        fast = rs._sinusoidal_centres(t, MODIS_SINUSOIDAL_CRS)
        assert fast is not None
        x, y = t.pixel_centres()
        px, py = rs.transform_xy(x, y, t.crs, MODIS_SINUSOIDAL_CRS)
        assert np.array_equal(fast.xs, px) and np.array_equal(fast.ys, py)
    lattices = [modis_tile_grid(10, 5, 250), modis_tile_grid(9, 5, 1000)]
    # Tiles straddling MODIS tile edges h09/h10 (x = -8.9e6 m) on the 250 m and 1 km lattices.
    probe = named_grid("conus-90m").crop((-99.0, 35.0, -96.5, 36.0))
    rs.clear_caches()
    fast_idx = [rs.nearest_index(src, probe) for src in lattices]
    rs.clear_caches()
    monkeypatch.setattr(rs, "_sinusoidal_centres", lambda dst, crs: None)
    slow_idx = [rs.nearest_index(src, probe) for src in lattices]
    rs.clear_caches()
    for a, b in zip(fast_idx, slow_idx, strict=True):
        assert np.array_equal(a.rows, b.rows) and np.array_equal(a.cols, b.cols)
        assert np.array_equal(a.valid, b.valid)
        assert 0.0 < a.coverage < 1.0  # the probe crosses the lattice's edge


def test_sinusoidal_closed_form_declines_other_projections() -> None:
    from grids import resample as rs
    from grids.named import named_grid

    t = named_grid("conus-90m").window(0, 10, 0, 10)
    assert rs._sinusoidal_centres(t, "+proj=sinu +lon_0=0 +a=6378137 +rf=298.257 +units=m") is None
    assert rs._sinusoidal_centres(t, "EPSG:5070") is None


def test_normalize_crs_is_cached_and_still_refuses_bad_text() -> None:
    from grids.errors import CRSError
    from grids.grid import _normalize_crs_text, normalize_crs

    text = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs"
    first = normalize_crs(text)
    hits = _normalize_crs_text.cache_info().hits
    assert normalize_crs(text) == first
    assert _normalize_crs_text.cache_info().hits == hits + 1
    for _ in range(2):
        with pytest.raises(CRSError, match="cannot parse CRS"):
            normalize_crs("+proj=nonsense")


def test_fused_2d_index_equals_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled 2-D index builder gives the numpy path's arrays on cross-CRS cases
    (MODIS sinusoidal, EASE-Grid 2.0, Albers sources onto EPSG:4326 windows, edges)."""
    import numba  # noqa: F401  (the compiled path runs once numba is loaded)

    from grids import resample as rs
    from grids.named import modis_tile_grid, named_grid

    assert rs._compiled() is not None
    g = named_grid("conus-90m")
    albers = Grid("EPSG:5070", (240.0, 0.0, -400_000.0, 0.0, -240.0, 1_700_000.0), (900, 900))
    cases = [
        (modis_tile_grid(10, 5, 500), g.crop((-99.0, 35.0, -96.5, 36.0))),
        (modis_tile_grid(9, 4, 1000), g.crop((-105.0, 44.0, -103.0, 45.5))),
        (albers, g.crop((-100.5, 38.0, -98.0, 40.0))),
        (modis_tile_grid(10, 5, 250), g.window(100, 101, 100, 101)),
    ]
    for src, dst in cases:
        rs.clear_caches()
        fused = rs.nearest_index(src, dst)
        rs.clear_caches()
        with monkeypatch.context() as m:
            m.setattr(rs, "_COMPILED_ALLOWED", False)
            ref = rs.nearest_index(src, dst)
        rs.clear_caches()
        assert not fused.separable and not ref.separable
        for a, b in ((fused.rows, ref.rows), (fused.cols, ref.cols), (fused.valid, ref.valid)):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        assert np.array_equal(fused._flat, ref._flat) and fused.coverage == ref.coverage
        assert not fused.rows.flags.writeable
        h, w = src.shape
        for window in ((0, h, 0, w), (h // 3, h // 3 + 50, w // 4, w // 2), (5, 6, 7, 9)):
            rs.clear_caches()
            got = rs.index_for_window(fused, window)
            rs.clear_caches()
            with monkeypatch.context() as m:
                m.setattr(rs, "_COMPILED_ALLOWED", False)
                want = rs.index_for_window(ref, window)
            rs.clear_caches()
            for a, b in ((got.rows, want.rows), (got.cols, want.cols), (got.valid, want.valid)):
                assert a.dtype == b.dtype and np.array_equal(a, b)
            assert np.array_equal(got._flat, want._flat) and got.coverage == want.coverage
            assert got.src_shape == want.src_shape
