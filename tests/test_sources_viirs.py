"""The VIIRS HDF-EOS5 reader on the two real VNP21A1D granules of ../shared/realdata.

The expected figures are re-derived here by an independent parse (h5py, the raw
arrays and the attributes as stored) and also checked against the figures the
realdata README gives for these files (its "Value statistics" section).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.sources import viirs
from pipeline.sources.base import (
    CorruptFileError,
    DateMismatchError,
    MissingInputError,
    SchemaError,
)

DIR = "ET-Toolbox_VNP21A1D-002/VNP21A1D.002"
JAN = "2025-01-17/VNP21A1D.A2025017.h08v05.002.2025022014218.h5"
MAY = "2025-05-27/VNP21A1D.A2025147.h08v05.002.2025148135613.h5"
FIELDS = "HDFEOS/GRIDS/VIIRS_Grid_Daily_1km_LST21/Data Fields"


def _raw(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    with h5py.File(path, "r") as f:
        return f[f"{FIELDS}/LST_1KM"][()], f[f"{FIELDS}/QC"][()]


@pytest.mark.parametrize(
    ("name", "readme_valid", "readme_mean", "readme_good", "readme_good_mean", "readme_centre"),
    [
        # README "Value statistics": fill 393242 of 1,440,000 -> 1046758 valid, mean
        # 293.392997 K; QC bits 0-1 == 00 on 970844 valid pixels, their mean 293.894257 K;
        # raw LST at [600, 600] = 15019 (300.38 K).
        (JAN, 1046758, 293.392997, 970844, 293.894257, 300.38),
        # 2025-05-27: 878909 valid, mean 320.610271 K; 00: 738880, mean 321.565792 K;
        # [600, 600] = 16495 (329.90 K).
        (MAY, 878909, 320.610271, 738880, 321.565792, 329.90),
    ],
)
def test_real_granule_values_match_an_independent_parse(
    realdata: Path,
    name: str,
    readme_valid: int,
    readme_mean: float,
    readme_good: int,
    readme_good_mean: float,
    readme_centre: float,
) -> None:
    path = realdata / DIR / name
    raw, qc = _raw(path)
    valid = raw != 0  # the `_Fillvalue` (lower-case v) is 0
    good = valid & ((qc & 0b11) == 0)
    expect_mean = float(np.mean(raw[valid] * 0.02))
    expect_good_mean = float(np.mean(raw[good] * 0.02))

    anyqc = viirs.read_viirs_file(path, "VNP21A1D", qc="any")
    k = anyqc.data.astype(np.float64) + 273.15
    assert anyqc.data.shape == (1200, 1200)
    assert int(np.isfinite(k).sum()) == int(valid.sum()) == readme_valid
    assert np.nanmean(k) == pytest.approx(expect_mean, abs=1e-3)
    assert np.nanmean(k) == pytest.approx(readme_mean, abs=1e-3)
    assert k[600, 600] == pytest.approx(raw[600, 600] * 0.02, abs=1e-3)
    assert k[600, 600] == pytest.approx(readme_centre, abs=1e-3)
    assert np.isnan(k[0, 0])  # fill at [0, 0]

    best = viirs.read_viirs_file(path, "VNP21A1D", qc="good")
    kb = best.data.astype(np.float64) + 273.15
    assert int(np.isfinite(kb).sum()) == int(good.sum()) == readme_good
    assert np.nanmean(kb) == pytest.approx(expect_good_mean, abs=1e-3)
    assert np.nanmean(kb) == pytest.approx(readme_good_mean, abs=1e-3)
    assert "QC 'good' rejected" in best.provenance.note

    # "usable" keeps 00 and 01: every valid LST pixel has one of them (README).
    usable = viirs.read_viirs_file(path, "VNP21A1D")
    assert int(np.isfinite(usable.data).sum()) == int(valid.sum())
    assert usable.provenance.product == "VNP21A1D"
    assert usable.provenance.composite_days == 1


def test_real_granule_geolocation_comes_from_struct_metadata(realdata: Path) -> None:
    from pyproj import Transformer

    r = viirs.read_viirs_file(realdata / DIR / JAN, "VNP21A1D", qc="any")
    a, _, x0, _, e, y0 = r.grid.transform
    # StructMetadata.0: UpperLeftPointMtrs=(-11119505.196667,4447802.078667),
    # LowerRightMtrs=(-10007554.677000,3335851.559000), 1200 x 1200 -> 926.6254330558 m.
    assert x0 == pytest.approx(-11119505.196667, abs=0.01)
    assert y0 == pytest.approx(4447802.078667, abs=0.01)
    assert a == pytest.approx((-10007554.677 + 11119505.196667) / 1200, abs=1e-6)
    assert e == pytest.approx(-a)
    assert r.offset == (5 * 1200, 8 * 1200)  # tile h08v05 on the global lattice
    x = x0 + 600.5 * a
    y = y0 + 600.5 * e
    lon, lat = Transformer.from_crs(r.grid.crs, "EPSG:4326", always_xy=True).transform(x, y)
    # README: row 600, column 600 is at 34.99583 N, 115.96259 W.
    assert lat == pytest.approx(34.99583, abs=1e-5)
    assert lon == pytest.approx(-115.96259, abs=1e-5)


def test_window_read_equals_the_whole_file_slice(realdata: Path) -> None:
    path = realdata / DIR / MAY
    whole = viirs.read_viirs_file(path, "VNP21A1D")
    part = viirs.read_viirs_file(path, "VNP21A1D", bounds=(-116.5, 34.5, -115.5, 35.5))
    r0 = part.offset[0] - whole.offset[0]
    c0 = part.offset[1] - whole.offset[1]
    h, w = part.data.shape
    assert 0 < h < 1200 and 0 < w < 1200
    np.testing.assert_array_equal(part.data, whole.data[r0 : r0 + h, c0 : c0 + w])


def test_source_serves_each_day_from_its_granule(realdata: Path, tmp_path: Path) -> None:
    src = viirs.ViirsSource("VNP21A1D", realdata / DIR)
    prov = src.available(dt.date(2025, 5, 27))
    assert prov is not None and prov.files[0].endswith(Path(MAY).name)
    assert src.available(dt.date(2025, 5, 28)) is None  # daily: never padded
    nat = src.native(dt.date(2025, 1, 17), (-116.2, 34.8, -115.8, 35.2))
    whole = viirs.read_viirs_file(realdata / DIR / JAN, "VNP21A1D")
    r0 = nat.offset[0] - whole.offset[0]
    c0 = nat.offset[1] - whole.offset[1]
    h, w = nat.data.shape
    np.testing.assert_array_equal(nat.data, whole.data[r0 : r0 + h, c0 : c0 + w])
    with pytest.raises(MissingInputError, match=r"VNP21A1D\.AYYYYDDD\.hHHvVV\.002"):
        src.native(dt.date(2025, 1, 18), (-116.2, 34.8, -115.8, 35.2))


def test_bad_granules_are_named(realdata: Path, tmp_path: Path) -> None:
    src = realdata / DIR / JAN
    # The file name's date disagrees with RangeBeginningDate (2025-01-17).
    moved = tmp_path / "VNP21A1D.A2025018.h08v05.002.2025022014218.h5"
    shutil.copyfile(src, moved)
    with pytest.raises(DateMismatchError, match="RangeBeginningDate says 2025-01-17"):
        viirs.read_viirs_file(moved, "VNP21A1D")
    # Truncated bytes.
    cut = tmp_path / "cut" / src.name
    cut.parent.mkdir()
    cut.write_bytes(src.read_bytes()[:4096])
    with pytest.raises(CorruptFileError, match=str(cut.name)):
        viirs.read_viirs_file(cut, "VNP21A1D")
    # A product whose layer the file does not hold.
    with pytest.raises(SchemaError, match="LST_Day_1KM"):
        viirs.read_viirs_file(src, "VNP21A2")


def test_fill_attribute_is_read_in_both_spellings(realdata: Path) -> None:
    import h5py

    with h5py.File(realdata / DIR / JAN, "r") as f:
        lst = viirs.layer_attrs(f[f"{FIELDS}/LST_1KM"])
        qc = viirs.layer_attrs(f[f"{FIELDS}/QC"])
        emis = viirs.layer_attrs(f[f"{FIELDS}/Emis_14"])
    assert lst.fill == 0.0 and lst.scale == 0.02 and lst.valid_range == (7500.0, 65535.0)
    assert qc.fill is None  # `_Fillvalue` is the string "n/a"
    # README: Emis_14 scale 0.002, offset 0.49 (raw * scale + offset).
    assert (emis.scale, emis.offset) == (0.002, 0.49)
