"""MODIS readers: layer GeoTIFFs (raw int and float), the real NDVI set, the real HDF4-EOS
MOD11B2 granule, QC bits, scale/units, tile mosaics and composite padding."""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _writers_sources import REGION, modis_crop, write_lst, write_modis_layer

from pipeline.sources.modis import (
    GRID_X0,
    GRID_Y0,
    PRODUCTS,
    TILE_SIZE_M,
    ModisSource,
    index_files,
    read_modis_file,
)

MODISTSP = "ropensci_MODIStsp/inst/testdata"
GRANULE = "MOD11B2.A2017001.h14v04.006.2017013155631.hdf"
START = dt.date(2020, 6, 1)  # DOY 153: an 8-day composite start (153 = 1 + 19 * 8)


@pytest.fixture(scope="module")
def ndvi_dir(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ndvi")
    with zipfile.ZipFile(realdata / MODISTSP / "VI_16Days_500m_v6/NDVI.zip") as z:
        z.extractall(out)
    return out / "NDVI"


@pytest.fixture(scope="module")
def mod11b2(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("pyhdf")
    out = tmp_path_factory.mktemp("hdf")
    with zipfile.ZipFile(realdata / MODISTSP / f"{GRANULE}.zip") as z:
        z.extractall(out)
    return out / GRANULE


# -- the real NDVI set (MODIStsp): raw int16 and already-scaled float32 ---------------------
@pytest.mark.parametrize("doy", ["001", "177", "321", "337", "353"])
def test_real_ndvi_raw_and_float_both_in_range(ndvi_dir: Path, doy: str) -> None:
    import rasterio

    path = ndvi_dir / f"MOD13A1_NDVI_2016_{doy}.tif"
    with rasterio.open(path) as ds:
        raw = ds.read(1)
        nodata = ds.nodata
        is_float = ds.dtypes[0] == "float32"
    # README: DOY 001-321 raw int16 (x10000, nodata 32767); 337 and 353 float32, scaled.
    assert is_float == (doy in ("337", "353"))
    nr = read_modis_file(path, "MOD13A1", qc="any")
    valid = np.isfinite(nr.data)
    assert valid.sum() == (raw != nodata).sum()
    assert nr.data[valid].min() >= -0.2 and nr.data[valid].max() <= 1.0
    expected = raw.astype(np.float64) * (1.0 if is_float else 1e-4)
    assert np.allclose(nr.data[valid], expected[raw != nodata], atol=1e-6)
    assert nr.provenance.composite_start == dt.date(2016, 1, 1) + dt.timedelta(int(doy) - 1)
    assert nr.lattice == PRODUCTS["MOD13A1"].global_grid()


# -- the real HDF4-EOS granule ---------------------------------------------------------------
def test_real_mod11b2_hdf4_granule(mod11b2: Path) -> None:
    from pyhdf.SD import SD, SDC

    sd = SD(str(mod11b2), SDC.READ)
    raw = sd.select("LST_Day_6km").get()
    qc = sd.select("QC_Day").get()
    sd.end()
    nr = read_modis_file(mod11b2, "MOD11B2", qc="any")
    # h14v04 upper-left from the tile formula of docs/data-layout.md, 200 x 200 cells of 6 km.
    a, _, c, _, _, f = nr.grid.transform
    assert nr.grid.shape == (200, 200)
    assert c == pytest.approx(GRID_X0 + 14 * TILE_SIZE_M, abs=1.0)
    assert f == pytest.approx(GRID_Y0 - 4 * TILE_SIZE_M, abs=1.0)
    assert a == pytest.approx(TILE_SIZE_M / 200, rel=1e-6)
    # uint16, scale 0.02 K, fill 0 -> degC.
    valid = raw != 0
    assert np.isfinite(nr.data).sum() == valid.sum()
    assert np.allclose(nr.data[valid], raw[valid] * 0.02 - 273.15, atol=1e-3)
    assert nr.provenance.composite_start == dt.date(2017, 1, 1)
    # QC bits 0-1: 'usable' keeps 00 and 01, 'good' only 00.
    usable = read_modis_file(mod11b2, "MOD11B2", qc="usable")
    good = read_modis_file(mod11b2, "MOD11B2", qc="good")
    assert np.isfinite(usable.data).sum() == (valid & ((qc & 3) <= 1)).sum()
    assert np.isfinite(good.data).sum() == (valid & ((qc & 3) == 0)).sum()


def test_hdf_granule_served_through_the_layout(mod11b2: Path, tmp_path: Path) -> None:
    folder = tmp_path / "MODIS" / "MOD11B2.061" / "2017.01.01"
    folder.mkdir(parents=True)
    shutil.copy(mod11b2, folder / GRANULE)
    src = ModisSource("MOD11B2", tmp_path / "MODIS", max_pad_days=7)
    nr = src.native(dt.date(2017, 1, 5), (-52.0, 44.0, -50.0, 46.0))  # inside h14v04
    assert nr.provenance.files == (str(folder / GRANULE),)
    assert nr.provenance.days_stale == 0 and nr.provenance.composite_days == 8
    padded = src.available(dt.date(2017, 1, 15))
    assert padded is not None and padded.days_stale == 7  # composite ends 1-8, +7 days
    assert src.available(dt.date(2017, 1, 16)) is None


# -- written layer GeoTIFFs ------------------------------------------------------------------
def test_lst_scale_units_and_qc(tmp_path: Path) -> None:
    grid = write_lst(tmp_path, START, 300.0, qc=1)
    src = ModisSource("MOD11A2", tmp_path / "MODIS", qc="usable")
    nr = src.native(START, REGION)
    assert nr.grid.crs == grid.crs
    assert np.nanmean(nr.data) == pytest.approx(300.0 - 273.15, abs=1e-3)
    strict = ModisSource("MOD11A2", tmp_path / "MODIS", qc="good").native(START, REGION)
    # Every pixel is QC 01 ("other quality"): 'good' rejects them all and says so.
    assert not np.isfinite(strict.data).any()
    n_written = grid.size
    assert f"QC 'good' rejected {n_written} pixel(s)" in strict.provenance.note
    write_lst(tmp_path, START, 300.0, qc=2)  # 10: LST not produced
    with_bad = ModisSource("MOD11A2", tmp_path / "MODIS", qc="usable").native(START, REGION)
    assert not np.isfinite(with_bad.data).any()
    raw = ModisSource("MOD11A2", tmp_path / "MODIS", qc="any").native(START, REGION)
    assert np.isfinite(raw.data).sum() == n_written


def test_gdal_scale_metadata_wins_over_product_default(tmp_path: Path) -> None:
    grid = modis_crop("MOD13A1")
    raw = np.full(grid.shape, 5000, np.int16)
    path = write_modis_layer(
        tmp_path, "MOD13A1", START, "500m_16_days_NDVI", raw, grid, nodata=-3000, scale=1e-4
    )
    assert np.nanmean(read_modis_file(path, "MOD13A1").data) == pytest.approx(0.5)


def test_et_is_a_daily_rate_also_for_the_short_year_end_composite(tmp_path: Path) -> None:
    grid = modis_crop("MOD16A2")
    raw = np.full(grid.shape, 80, np.int16)  # 8.0 kg m-2 over the 8-day composite
    raw[0, :5] = [32761, 32762, 32765, 32766, 32767]  # not land / fill
    write_modis_layer(tmp_path, "MOD16A2", START, "ET_500m", raw, grid, nodata=32767)
    write_modis_layer(
        tmp_path, "MOD16A2", START, "ET_QC_500m", np.zeros(grid.shape, np.uint8), grid
    )
    last = dt.date(2021, 12, 27)  # DOY 361 of 2021: a 5-day composite
    write_modis_layer(
        tmp_path, "MOD16A2", last, "ET_500m", np.full(grid.shape, 50, np.int16), grid, nodata=32767
    )
    write_modis_layer(tmp_path, "MOD16A2", last, "ET_QC_500m", np.zeros(grid.shape, np.uint8), grid)
    src = ModisSource("MOD16A2", tmp_path / "MODIS", max_pad_days=7)
    nr = src.native(START + dt.timedelta(days=3), REGION)
    assert np.nanmax(nr.data) == pytest.approx(1.0) and np.nanmin(nr.data) == pytest.approx(1.0)
    lattice = PRODUCTS["MOD16A2"].global_grid()
    row0 = nr.offset[0]
    first = lattice.window_of_bounds(grid.bounds)[0]
    assert np.isnan(nr.data[first - row0, :]).sum() >= 5
    y = src.native(dt.date(2021, 12, 31), REGION)
    assert y.provenance.composite_days == 5
    assert np.nanmean(y.data) == pytest.approx(1.0)  # 5.0 kg m-2 / 5 days


def test_landcover_latest_year_serves(tmp_path: Path) -> None:
    grid = modis_crop("MCD12Q1")
    codes = np.full(grid.shape, 12, np.uint8)
    codes[0, 0] = 255
    codes[0, 1] = 40  # not an IGBP code
    write_modis_layer(tmp_path, "MCD12Q1", dt.date(2019, 1, 1), "LC_Type1", codes, grid, nodata=255)
    src = ModisSource("MCD12Q1", tmp_path / "MODIS", max_pad_days=3660)
    nr = src.native(dt.date(2021, 7, 1), REGION)
    assert nr.provenance.composite_start == dt.date(2019, 1, 1)
    assert set(np.unique(nr.data[np.isfinite(nr.data)])) == {12.0}
    assert "outside IGBP" in nr.provenance.note


def test_tiles_are_mosaicked_on_the_lattice(tmp_path: Path) -> None:
    prod = PRODUCTS["MOD11A2"]
    lattice = prod.global_grid()
    edge = 11 * prod.tile_px  # first column of h11
    left = lattice.window(5 * 1200 + 600, 5 * 1200 + 620, edge - 10, edge)
    right = lattice.window(5 * 1200 + 600, 5 * 1200 + 620, edge, edge + 10)
    for tile, g, k in (((10, 5), left, 290.0), ((11, 5), right, 300.0)):
        raw = np.full(g.shape, round(k / 0.02), np.uint16)
        write_modis_layer(tmp_path, "MOD11A2", START, "LST_Day_1km", raw, g, tile=tile, nodata=0)
        write_modis_layer(
            tmp_path, "MOD11A2", START, "QC_Day", np.zeros(g.shape, np.uint8), g, tile=tile
        )
    from pyproj import Transformer

    t = Transformer.from_crs(lattice.crs, "EPSG:4326", always_xy=True)
    x0, y0 = left.x_coords()[5], left.y_coords()[10]
    x1, _ = right.x_coords()[5], right.y_coords()[10]
    lon0, lat0 = t.transform(x0, y0)
    lon1, _ = t.transform(x1, y0)
    src = ModisSource("MOD11A2", tmp_path / "MODIS")
    nr = src.native(START, (lon0, lat0 - 0.01, lon1, lat0 + 0.01))
    assert len(nr.provenance.files) == 4
    vals = set(np.round(np.unique(nr.data[np.isfinite(nr.data)]) + 273.15, 3))
    assert vals == {290.0, 300.0}


def test_index_keeps_newest_production(tmp_path: Path) -> None:
    stamps = ("2020162045356", "2020170000000")
    names = [f"MOD11A2.A2020153.h10v05.061.{p}_LST_Day_1km.tif" for p in stamps]
    idx = index_files([tmp_path / "2020.06.01" / n for n in names])
    g = idx["MOD11A2"][START][(10, 5)]
    assert g.production == "2020170000000" and g.folder_date == START


def test_appeears_area_mosaic_is_read(tmp_path: Path) -> None:
    grid = modis_crop("MOD11A2")
    folder = tmp_path / "MODIS" / "appeears-request-1"
    raw = np.full(grid.shape, round(295.0 / 0.02), np.uint16)
    from _writers_sources import write_geotiff

    write_geotiff(folder / "MOD11A2.061_LST_Day_1km_doy2020153_aid0001.tif", raw, grid, nodata=0)
    write_geotiff(
        folder / "MOD11A2.061_QC_Day_doy2020153_aid0001.tif", np.zeros(grid.shape, np.uint8), grid
    )
    src = ModisSource("MOD11A2", tmp_path / "MODIS", max_pad_days=7)
    nr = src.native(START + dt.timedelta(days=9), REGION)
    assert nr.provenance.days_stale == 2 and len(nr.provenance.files) == 2
    assert np.nanmean(nr.data) == pytest.approx(295.0 - 273.15, abs=1e-3)
    prov = src.available(START)
    assert prov is not None and prov.note == "tiles area"
