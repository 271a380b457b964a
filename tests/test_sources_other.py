"""CHIRPS (daily GeoTIFF, .tif.gz, yearly NetCDF, the real CHIRPS crop), SoilGrids units,
MERIT tiles and the real 3" DEM, Koeppen classes and names, the USDA texture triangle."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _writers_sources import (
    REGION,
    chirps_grid,
    write_chirps,
    write_koppen,
    write_merit_tile,
    write_soilgrids,
)

from models.features import KOPPEN_CLASSES, TEXTURE_CLASSES
from pipeline.sources import MissingInputError
from pipeline.sources.chirps import ChirpsSource, read_chirps_tif
from pipeline.sources.koppen import KOPPEN_NAMES, KoppenSource, class_label
from pipeline.sources.merit import LATTICE, MeritSource, parse_tile, tile_name
from pipeline.sources.soilgrids import SoilGridsSource
from pipeline.sources.texture import TextureSource, usda_texture_class

DAY = dt.date(2020, 6, 1)


# -- CHIRPS -------------------------------------------------------------------------------
def test_chirps_daily_tif_and_gz(tmp_path: Path) -> None:
    rain = np.linspace(0, 30, chirps_grid().size, dtype=np.float32).reshape(chirps_grid().shape)
    path = write_chirps(tmp_path, DAY, rain)
    gz = path.with_name(f"chirps-v2.0.{DAY + dt.timedelta(days=1):%Y.%m.%d}.tif.gz")
    with open(path, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    src_ = ChirpsSource(tmp_path / "CHIRPS")
    a = src_.native(DAY, REGION)
    b = src_.native(DAY + dt.timedelta(days=1), REGION)
    assert b.provenance.files[0].endswith(".tif.gz")
    assert np.array_equal(a.data, b.data, equal_nan=True)
    assert a.grid == chirps_grid()  # the whole crop: the margin is clipped at the file edge
    assert np.array_equal(a.data, rain)
    with pytest.raises(MissingInputError) as err:
        src_.native(DAY - dt.timedelta(days=1), REGION)
    assert "chirps-v2.0.2020.05.31" in str(err.value)


def test_chirps_yearly_netcdf_with_ascending_latitude(tmp_path: Path) -> None:
    import h5py

    grid = chirps_grid()
    lat = grid.y_coords()[::-1]  # south to north, as CHIRPS NetCDF stores it
    lon = grid.x_coords()
    cube = np.zeros((3, lat.size, lon.size), np.float32)
    cube[1] = np.arange(lat.size, dtype=np.float32)[:, None]  # row i (from south) = i mm
    cube[1, 0, 0] = -9999.0
    path = tmp_path / "CHIRPS/global_daily/netcdf/p05/chirps-v2.0.2020.days_p05.nc"
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        f["latitude"] = lat
        f["longitude"] = lon
        t = f.create_dataset("time", data=np.array([14761, 14762, 14763], np.float64))
        t.attrs["units"] = "days since 1980-1-1 0:0:0"
        p = f.create_dataset("precip", data=cube)
        p.attrs["_FillValue"] = np.float32(-9999.0)
    day = dt.date(1980, 1, 1) + dt.timedelta(days=14762)
    nr = ChirpsSource(tmp_path / "CHIRPS").native(day, REGION)
    assert nr.grid == grid
    assert nr.data[0, 1] == lat.size - 1  # north row holds the largest value
    assert np.isnan(nr.data[-1, 0]) and nr.data[-1, 1] == 0.0


def test_real_chirps_crop_band_and_nodata(realdata: Path) -> None:
    path = realdata / "Turner-SCU_msdrought/inst/extdata/prcp_cropped.tif"
    import rasterio

    dates = json.loads(path.with_name(path.name + ".aux.json").read_text())["time"]
    band = dates.index("1981-6-15 0:0:0") + 1
    with rasterio.open(path) as ds:
        raw = ds.read(band)
    nr = read_chirps_tif(path, None, band=band)
    assert nr.grid.resolution == (0.25, 0.25)
    assert np.array_equal(nr.data, raw, equal_nan=True)
    # README: negative values were zeroed by that repository; NaN is nodata.
    assert np.nanmin(nr.data) >= 0.0


# -- SoilGrids ----------------------------------------------------------------------------
def test_soilgrids_units(tmp_path: Path) -> None:
    write_soilgrids(tmp_path, "sand", 423)  # g/kg
    write_soilgrids(tmp_path, "clay", 181)
    write_soilgrids(tmp_path, "phh2o", 65)  # pH x 10
    root = tmp_path / "SoilGrids"
    sand = SoilGridsSource("sand", root).native(None, REGION)
    clay = SoilGridsSource("clay", root).native(None, REGION)
    ph = SoilGridsSource("ph", root).native(None, REGION)
    assert np.nanmean(sand.data) == pytest.approx(42.3, abs=1e-4)
    assert np.nanmean(clay.data) == pytest.approx(18.1, abs=1e-4)
    assert np.nanmean(ph.data) == pytest.approx(6.5, abs=1e-5)
    assert sand.grid.crs == "ESRI:54052"
    tex = TextureSource(SoilGridsSource("sand", root), SoilGridsSource("clay", root))
    t = tex.native(None, REGION)
    assert set(np.unique(t.data)) == {7.0}  # 42.3 % sand, 18.1 % clay, 39.6 % silt: loam
    assert len(t.provenance.files) == 2


def test_soilgrids_missing_layer_names_the_file(tmp_path: Path) -> None:
    src = SoilGridsSource("clay", tmp_path / "SoilGrids")
    assert src.available(None) is None
    with pytest.raises(MissingInputError) as err:
        src.native(None, REGION)
    assert "clay_0-5cm_mean.tif" in str(err.value)


# -- MERIT --------------------------------------------------------------------------------
def test_merit_tile_names() -> None:
    assert tile_name(30, -100) == "n30w100" and parse_tile("n30w100_dem.tif") == (30, -100)
    assert tile_name(-5, 10) == "s05e010" and parse_tile("s05e010_dem.tif") == (-5, 10)


def test_merit_tiles_and_absent_ocean_tile(tmp_path: Path) -> None:
    write_merit_tile(tmp_path, 350.0, tile="n35w100", bounds=(-98.0, 35.0, -97.0, 37.0))
    src = MeritSource(tmp_path / "MERIT_DEM")
    nr = src.native(None, (-97.6, 36.4, -97.4, 36.6))
    assert np.nanmean(nr.data) == pytest.approx(350.0) and nr.lattice == LATTICE
    edge = src.native(None, (-97.6, 34.99, -97.4, 35.2))  # touches n30w100, absent
    assert "n30w100" in edge.provenance.note
    with pytest.raises(MissingInputError) as err:
        src.native(None, (-90.5, 30.1, -90.4, 30.2))
    assert "n30w095" in str(err.value)


def test_real_3_arcsecond_dem(realdata: Path) -> None:
    import rasterio

    path = realdata / "mdbartos_pysheds/data/dem.tif"
    with rasterio.open(path) as ds:
        raw = ds.read(1)
        t = ds.transform
    nr = MeritSource(path, margin=0).native(None, (-97.40, 32.70, -97.35, 32.75))
    # The file sits on the 3" lattice (README: 3 arc-seconds, Fort Worth); its pixel at
    # the window's first row/col is read unchanged (int16 -> float32, nodata -32768 -> NaN).
    r0 = round((t.f - nr.grid.transform[5]) * 1200)
    c0 = round((nr.grid.transform[2] - t.c) * 1200)
    expect = raw[r0 : r0 + nr.grid.height, c0 : c0 + nr.grid.width].astype(np.float32)
    expect[expect == -32768] = np.nan
    assert np.array_equal(nr.data, expect, equal_nan=True)
    assert 100 < np.nanmean(nr.data) < 300  # metres, north Texas


# -- Koeppen ------------------------------------------------------------------------------
def test_koppen_codes_and_names(tmp_path: Path) -> None:
    codes = np.full((120, 120), 14, np.uint8)
    codes[0, :3] = [0, 31, 7]
    write_koppen(tmp_path, codes)
    nr = KoppenSource(tmp_path / "Koeppen", margin=0).native(None, REGION)
    assert np.isnan(nr.data[0, 0]) and np.isnan(nr.data[0, 1]) and nr.data[0, 2] == 7
    assert "1 code(s) outside 1-30" in nr.provenance.note  # 31; 0 is ocean, not counted
    assert set(KOPPEN_NAMES) == set(KOPPEN_CLASSES) == set(range(1, 31))
    assert class_label(14) == "Cfa (Temperate, no dry season, hot summer)"


# -- USDA texture triangle -----------------------------------------------------------------
# (sand %, clay %) well inside each class of the USDA triangle, and the expected name.
KNOWN = [
    (20.0, 60.0, "clay"),
    (5.0, 45.0, "silty clay"),
    (52.0, 40.0, "sandy clay"),
    (33.0, 33.0, "clay loam"),
    (10.0, 33.0, "silty clay loam"),
    (60.0, 27.0, "sandy clay loam"),
    (40.0, 20.0, "loam"),
    (20.0, 15.0, "silt loam"),
    (65.0, 10.0, "sandy loam"),
    (7.0, 5.0, "silt"),
    (82.0, 5.0, "loamy sand"),
    (95.0, 2.0, "sand"),
]


def test_texture_triangle_known_points() -> None:
    sand = np.array([k[0] for k in KNOWN])
    clay = np.array([k[1] for k in KNOWN])
    codes = usda_texture_class(sand, clay)
    names = [TEXTURE_CLASSES[int(c)] for c in codes]
    assert names == [k[2] for k in KNOWN]
    assert sorted(int(c) for c in codes) == list(range(1, 13))


def test_texture_triangle_boundaries_and_coverage() -> None:
    # USDA: silt loam / silt at 80 % silt; loam / sandy loam at 52 % sand (clay 7-20).
    assert usda_texture_class(np.array([8.0, 10.0]), np.array([11.0, 11.0])).tolist() == [10, 8]
    assert usda_texture_class(np.array([52.0, 52.5]), np.array([10.0, 10.0])).tolist() == [7, 9]
    s, c = np.meshgrid(np.arange(0, 100.5, 0.5), np.arange(0, 100.5, 0.5))
    inside = s + c <= 100
    codes = usda_texture_class(s[inside], c[inside])
    assert np.isfinite(codes).all()  # every valid composition gets exactly one class
    bad = usda_texture_class(np.array([np.nan, 70.0, -1.0]), np.array([10.0, 40.0, 10.0]))
    assert np.isnan(bad).all()
