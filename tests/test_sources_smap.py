"""SPL3SMP_E reader: schema of the real DMR, the real CONUS subset, AM/PM mean, QC, releases."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest
from _writers_sources import REGION, smap_window, write_smap

from pipeline.sources import SchemaError, sample
from pipeline.sources.smap import (
    EASE2_M09,
    EASE2_M09_CELL,
    EASE2_M09_X0,
    EASE2_M09_Y0,
    FILL,
    GROUP_AM,
    GROUP_PM,
    QUAL_FILL,
    SmapSource,
    file_grid,
    parse_name,
    read_smap,
)

DAY = dt.date(2020, 6, 1)
SUBSET = "nasa_harmony-regression-tests/test/hoss/reference_files/" + (
    "hoss_shape_file_2d_no_dimensions_reference.nc4"
)
DMR = "nasa_harmony-opendap-subsetter/tests/data/SC_SPL3SMP_008.dmr"
GPD = "nasa_harmony-SMAP-L2-gridding-service/smap_l2_gridder/reference/EASE2_M09km.gpd"


# -- the real schema ----------------------------------------------------------------------
def _dmr_block(text: str, group: str, var: str) -> str:
    g = text.index(f'<Group name="{group}">')
    start = text.index(f'name="{var}">', g)
    end = text.index("</", text.index("<Map", start))
    return text[start:end]


def test_constants_follow_the_real_dmr(realdata: Path) -> None:
    text = (realdata / DMR).read_text()
    assert f'<Group name="{GROUP_AM}">' in text and f'<Group name="{GROUP_PM}">' in text
    sm = _dmr_block(text, GROUP_AM, "soil_moisture")
    fill = re.search(r'name="_FillValue" type="Float32">\s*<Value>([-\d.]+)', sm)
    assert fill is not None and float(fill.group(1)) == FILL
    assert "cm**3/cm**3" in sm
    q = _dmr_block(text, GROUP_AM, "retrieval_qual_flag")
    qfill = re.search(r'name="_FillValue" type="UInt16">\s*<Value>(\d+)', q)
    assert qfill is not None and int(qfill.group(1)) == QUAL_FILL
    # Bit 0 (mask 1) is the "recommended quality" bit that the reader tests.
    assert "<Value>1s, 2s, 4s, 8s</Value>" in q
    assert "<Value>Retrieval_recommended " in q
    # PM names carry the _pm suffix.
    assert 'name="soil_moisture_pm"' in text and 'name="retrieval_qual_flag_pm"' in text


def test_ease2_grid_matches_nsidc_gpd(realdata: Path) -> None:
    gpd = (realdata / GPD).read_text()

    def val(key: str) -> float:
        m = re.search(rf"^{key}:\s+([-\d.]+)", gpd, re.M)
        assert m is not None, key
        return float(m.group(1))

    assert EASE2_M09.shape == (int(val("Grid Height")), int(val("Grid Width")))
    assert EASE2_M09_CELL == val("Grid Map Units per Cell")
    assert EASE2_M09_X0 == val("Map Origin X") and EASE2_M09_Y0 == val("Map Origin Y")


def test_real_subset_is_placed_on_the_global_grid(realdata: Path) -> None:
    path = realdata / SUBSET
    grid = file_grid(path)
    # README: rows 195..468 and columns 590..1209 of the global 9 km grid.
    assert grid == EASE2_M09.window(195, 469, 590, 1210)
    import h5py
    from pyproj import Transformer

    with h5py.File(path) as f:
        lat = f[f"{GROUP_AM}/latitude"][:]
        lon = f[f"{GROUP_AM}/longitude"][:]
    x, y = grid.pixel_centres()
    ok = lat != -9999
    lon_c, lat_c = Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True).transform(
        x[ok], y[ok]
    )
    assert ok.sum() > 10_000  # the shape-file subset keeps lat/lon over land only
    assert np.abs(lat_c - lat[ok]).max() < 1e-4 and np.abs(lon_c - lon[ok]).max() < 1e-4


def test_real_subset_without_soil_moisture_is_a_schema_error(realdata: Path) -> None:
    path = realdata / SUBSET
    with pytest.raises(SchemaError) as err:
        read_smap(path, (-98.0, 35.0, -97.0, 36.0))
    assert str(path) in str(err.value) and "soil_moisture" in str(err.value)


# -- values -------------------------------------------------------------------------------
def test_am_pm_mean_where_both_else_either(tmp_path: Path) -> None:
    r0, r1, c0, c1 = smap_window()
    shape = (r1 - r0, c1 - c0)
    am = np.full(shape, 0.2, np.float32)
    pm = np.full(shape, 0.3, np.float32)
    am[0, 0] = -9999.0  # only PM
    pm[1, 1] = -9999.0  # only AM
    am[2, 2] = pm[2, 2] = -9999.0  # neither
    path = write_smap(tmp_path, DAY, am, pm)
    nr = read_smap(path, REGION, margin=0)
    grid = EASE2_M09.window(r0, r1, c0, c1)
    assert nr.grid == grid and nr.lattice == EASE2_M09 and nr.offset == (r0, c0)
    assert nr.data[0, 0] == pytest.approx(0.3)
    assert nr.data[1, 1] == pytest.approx(0.2)
    assert np.isnan(nr.data[2, 2])
    assert nr.data[3, 3] == pytest.approx(0.25)
    assert nr.provenance.product == "SPL3SMP_E" and nr.provenance.files == (str(path),)


def test_recommended_quality_bit_masks_unless_configured(tmp_path: Path) -> None:
    path = write_smap(tmp_path, DAY, 0.2, 0.4, qual_am=1, qual_pm=0b1110)
    strict = read_smap(path, REGION, margin=0)
    assert np.nanmax(strict.data) == pytest.approx(0.4)  # AM not recommended: PM only
    loose = read_smap(path, REGION, margin=0, quality="any")
    assert np.nanmax(loose.data) == pytest.approx(0.3)


def test_window_reads_only_the_bounds_with_margin(tmp_path: Path) -> None:
    path = write_smap(tmp_path, DAY, 0.2, 0.2)
    lon, lat = -97.5, 36.5
    nr = read_smap(path, (lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01), margin=2)
    assert nr.grid.shape == (5, 5)
    from grids import Grid

    station = Grid.from_bounds(
        (lon - 0.0005, lat - 0.0005, lon + 0.0005, lat + 0.0005), 0.001, "EPSG:4326"
    )
    assert sample(nr, station)[0, 0] == pytest.approx(0.2)


def test_source_takes_newest_release_and_records_it(tmp_path: Path) -> None:
    write_smap(tmp_path, DAY, 0.1, 0.1, crid=18290, number=2)
    write_smap(tmp_path, DAY, 0.2, 0.2, crid=19240, number=1)
    write_smap(tmp_path, DAY, 0.3, 0.3, crid=19240, number=2)
    src = SmapSource(tmp_path / "SMAP")
    prov = src.available(DAY)
    assert prov is not None and prov.files[0].endswith("R19240_002.h5")
    nr = src.native(DAY, REGION)
    assert np.nanmax(nr.data) == pytest.approx(0.3)
    assert "R19240_002" in nr.provenance.note and "newest of 3" in nr.provenance.note
    assert "R18290_002" in nr.provenance.note
    assert src.available(DAY + dt.timedelta(days=1)) is None


def test_parse_name() -> None:
    g = parse_name("SMAP_L3_SM_P_E_20200601_R19240_001.h5")
    assert g is not None and g.date == DAY and (g.crid, g.number) == (19240, 1)
    assert parse_name("SMAP_L3_SM_P_20200601_R19240_001.h5") is None
    assert parse_name("SMAP_L3_SM_P_E_20201301_R19240_001.h5") is None
