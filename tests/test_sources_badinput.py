"""Bad input: each case gives a SourceError naming the file and the problem (or a documented
flagged result), never a bare traceback from h5py, rasterio or numpy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from _writers_sources import (
    REGION,
    chirps_grid,
    modis_crop,
    smap_window,
    write_chirps,
    write_geotiff,
    write_lst,
    write_modis_layer,
    write_smap,
    write_soilgrids,
)

from grids import Grid
from pipeline.errors import SourceError
from pipeline.sources import (
    CorruptFileError,
    DateMismatchError,
    MissingInputError,
    OutOfRangeError,
    SchemaError,
    WrongCRSError,
)
from pipeline.sources.chirps import ChirpsSource, read_chirps_tif
from pipeline.sources.modis import ModisSource, read_modis_file
from pipeline.sources.smap import SmapSource, read_smap
from pipeline.sources.soilgrids import SoilGridsSource

DAY = dt.date(2020, 6, 1)


def _names_file(err: pytest.ExceptionInfo[SourceError], path: Path) -> None:
    assert isinstance(err.value, SourceError)
    assert err.value.path == str(path) and str(path) in str(err.value)


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# -- corrupt files ---------------------------------------------------------------------------
def test_truncated_hdf5(tmp_path: Path) -> None:
    path = write_smap(tmp_path, DAY, 0.2, 0.2)
    _truncate(path)
    with pytest.raises(CorruptFileError) as err:
        read_smap(path, REGION)
    _names_file(err, path)
    assert "HDF5" in str(err.value)


def test_not_hdf5_at_all(tmp_path: Path) -> None:
    path = tmp_path / "SMAP_L3_SM_P_E_20200601_R19240_001.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CorruptFileError) as err:
        SmapSource(tmp_path).native(DAY, REGION)
    _names_file(err, path)


@pytest.mark.parametrize("keep", [0.05, 0.6])
def test_truncated_geotiff(tmp_path: Path, keep: float) -> None:
    rng = np.random.default_rng(1)
    path = write_chirps(tmp_path, DAY, rng.gamma(1.0, 5.0, chirps_grid().shape))
    _truncate(path, keep)
    with pytest.raises(CorruptFileError) as err:
        ChirpsSource(tmp_path / "CHIRPS").native(DAY, REGION)
    _names_file(err, path)


def test_truncated_modis_layer(tmp_path: Path) -> None:
    write_lst(
        tmp_path, DAY, np.random.default_rng(2).uniform(280, 310, modis_crop("MOD11A2").shape)
    )
    (path,) = (tmp_path / "MODIS").rglob("*LST_Day_1km.tif")
    _truncate(path, 0.6)
    with pytest.raises(CorruptFileError) as err:
        ModisSource("MOD11A2", tmp_path / "MODIS").native(DAY, REGION)
    _names_file(err, path)


# -- schema ----------------------------------------------------------------------------------
def test_missing_group(tmp_path: Path) -> None:
    path = write_smap(tmp_path, DAY, 0.2, 0.2, omit=("Soil_Moisture_Retrieval_Data_PM",))
    with pytest.raises(SchemaError) as err:
        read_smap(path, REGION)
    _names_file(err, path)
    assert "Soil_Moisture_Retrieval_Data_PM" in str(err.value)


def test_missing_variable(tmp_path: Path) -> None:
    omit = ("Soil_Moisture_Retrieval_Data_PM/retrieval_qual_flag_pm",)
    path = write_smap(tmp_path, DAY, 0.2, 0.2, omit=omit)
    with pytest.raises(SchemaError) as err:
        read_smap(path, REGION)
    _names_file(err, path)
    assert "retrieval_qual_flag_pm" in str(err.value)
    # Without the quality filter the flag is not needed.
    assert np.nanmax(read_smap(path, REGION, quality="any").data) == pytest.approx(0.2)


def test_missing_qc_layer_when_qc_is_required(tmp_path: Path) -> None:
    write_lst(tmp_path, DAY, 300.0)
    (qc,) = (tmp_path / "MODIS").rglob("*QC_Day.tif")
    qc.unlink()
    with pytest.raises(SchemaError) as err:
        ModisSource("MOD11A2", tmp_path / "MODIS").native(DAY, REGION)
    assert "QC_Day" in str(err.value) and "LST_Day_1km.tif" in str(err.value)
    nr = ModisSource("MOD11A2", tmp_path / "MODIS", qc="any").native(DAY, REGION)
    assert np.isfinite(nr.data).any()


# -- wrong CRS -------------------------------------------------------------------------------
def test_modis_layer_in_the_wrong_crs(tmp_path: Path) -> None:
    grid = Grid.from_bounds(REGION, 0.01, "EPSG:4326")
    raw = np.full(grid.shape, 15000, np.uint16)
    path = write_modis_layer(tmp_path, "MOD11A2", DAY, "LST_Day_1km", raw, grid, nodata=0)
    with pytest.raises(WrongCRSError) as err:
        read_modis_file(path, "MOD11A2")
    _names_file(err, path)
    assert "sinusoidal" in str(err.value)


def test_chirps_in_the_wrong_crs(tmp_path: Path) -> None:
    grid = Grid.from_bounds((-10_900_000, 4_300_000, -10_800_000, 4_400_000), 5000.0, "EPSG:3857")
    path = write_geotiff(
        tmp_path / "chirps-v2.0.2020.06.01.tif",
        np.zeros(grid.shape, np.float32),
        grid,
        nodata=-9999.0,
    )
    with pytest.raises(WrongCRSError) as err:
        read_chirps_tif(path, REGION)
    _names_file(err, path)


def test_soilgrids_in_the_wrong_crs(tmp_path: Path) -> None:
    grid = Grid.from_bounds(REGION, 0.0025, "EPSG:4326")
    path = write_geotiff(
        tmp_path / "SoilGrids/sand/sand_0-5cm_mean.tif",
        np.full(grid.shape, 400, np.int16),
        grid,
        nodata=-32768,
    )
    with pytest.raises(WrongCRSError) as err:
        SoilGridsSource("sand", tmp_path / "SoilGrids").native(None, REGION)
    _names_file(err, path)


def test_modis_off_the_lattice(tmp_path: Path) -> None:
    g = modis_crop("MOD11A2")
    a, b, c, d, e, f = g.transform
    shifted = Grid(g.crs, (a, b, c + a / 3, d, e, f), g.shape)
    path = write_modis_layer(
        tmp_path,
        "MOD11A2",
        DAY,
        "LST_Day_1km",
        np.full(g.shape, 15000, np.uint16),
        shifted,
        nodata=0,
    )
    with pytest.raises(WrongCRSError) as err:
        read_modis_file(path, "MOD11A2")
    assert "lattice" in str(err.value)


# -- dates -----------------------------------------------------------------------------------
def test_smap_name_disagrees_with_metadata(tmp_path: Path) -> None:
    path = write_smap(tmp_path, DAY, 0.2, 0.2, meta_date=DAY - dt.timedelta(days=1))
    with pytest.raises(DateMismatchError) as err:
        SmapSource(tmp_path).native(DAY, REGION)
    _names_file(err, path)
    assert "2020-06-01" in str(err.value) and "2020-05-31" in str(err.value)


def test_modis_folder_disagrees_with_name(tmp_path: Path) -> None:
    g = modis_crop("MOD11A2")
    for layer, arr in (
        ("LST_Day_1km", np.full(g.shape, 15000, np.uint16)),
        ("QC_Day", np.zeros(g.shape, np.uint8)),
    ):
        write_modis_layer(tmp_path, "MOD11A2", DAY, layer, arr, g, folder=dt.date(2020, 6, 9))
    with pytest.raises(DateMismatchError) as err:
        ModisSource("MOD11A2", tmp_path / "MODIS").native(DAY, REGION)
    assert "2020.06.09" in str(err.value) or "2020-06-09" in str(err.value)


def test_modis_metadata_disagrees_with_name(tmp_path: Path) -> None:
    g = modis_crop("MOD11A2")
    path = write_modis_layer(
        tmp_path,
        "MOD11A2",
        DAY,
        "LST_Day_1km",
        np.full(g.shape, 15000, np.uint16),
        g,
        nodata=0,
        tags={"RANGEBEGINNINGDATE": "2020-06-09"},
    )
    with pytest.raises(DateMismatchError) as err:
        read_modis_file(path, "MOD11A2")
    _names_file(err, path)


# -- all-fill SMAP day -----------------------------------------------------------------------
def test_all_fill_smap_day_is_flagged_missing(tmp_path: Path) -> None:
    path = write_smap(tmp_path, DAY, -9999.0, -9999.0)
    with pytest.raises(MissingInputError) as err:
        SmapSource(tmp_path).native(DAY, REGION)
    _names_file(err, path)
    assert "all fill" in str(err.value) and err.value.variable == "smap"
    # Only retrievals without recommended quality: flagged missing under the default too.
    path2 = write_smap(tmp_path / "b", DAY, 0.2, 0.2, qual_am=1, qual_pm=1)
    with pytest.raises(MissingInputError):
        read_smap(path2, REGION)


# -- physical range --------------------------------------------------------------------------
def test_smap_out_of_range_raises_when_widespread(tmp_path: Path) -> None:
    path = write_smap(tmp_path, DAY, 1.5, 1.5)
    with pytest.raises(OutOfRangeError) as err:
        read_smap(path, REGION)
    _names_file(err, path)
    assert "[0, 1]" in str(err.value)


def test_smap_isolated_out_of_range_pixel_is_masked_and_counted(tmp_path: Path) -> None:
    r0, r1, c0, c1 = smap_window()
    am = np.full((r1 - r0, c1 - c0), 0.2, np.float32)
    am[3, 4] = 1.7
    path = write_smap(tmp_path, DAY, am, None)
    nr = read_smap(path, REGION, margin=0)
    assert np.isnan(nr.data[3, 4]) and np.nanmax(nr.data) == pytest.approx(0.2)
    assert "1 isolated value(s) outside [0, 1]" in nr.provenance.note


def test_sand_in_wrong_units_raises(tmp_path: Path) -> None:
    path = write_soilgrids(tmp_path, "sand", 1500)  # 150 %: not g/kg
    with pytest.raises(OutOfRangeError) as err:
        SoilGridsSource("sand", tmp_path / "SoilGrids").native(None, REGION)
    _names_file(err, path)


def test_negative_precip_pixel_is_masked(tmp_path: Path) -> None:
    rain = np.full(chirps_grid().shape, 3.0, np.float32)
    rain[5, 5] = -2.0
    write_chirps(tmp_path, DAY, rain)
    nr = ChirpsSource(tmp_path / "CHIRPS").native(DAY, REGION)
    assert np.isnan(nr.data[5, 5]) and "1 isolated" in nr.provenance.note
    rain[:, :] = -1.0
    path = write_chirps(tmp_path, DAY, rain)
    with pytest.raises(OutOfRangeError) as err:
        ChirpsSource(tmp_path / "CHIRPS").native(DAY, REGION)
    _names_file(err, path)


def test_lst_beyond_physical_range_raises(tmp_path: Path) -> None:
    write_lst(tmp_path, DAY, 400.0)  # 126.85 degC
    with pytest.raises(OutOfRangeError) as err:
        ModisSource("MOD11A2", tmp_path / "MODIS").native(DAY, REGION)
    assert "LST_Day_1km.tif" in str(err.value) and "lst" in str(err.value)
