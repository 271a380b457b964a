"""ISMN readers on the real TUW-GEO/ismn test files and on small generated edge cases.

Figures marked "realdata README" come from ../shared/realdata/README.md, which
counted them with an independent parse; the tests re-derive them here.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import InsituConfig
from pipeline.errors import InsituError
from pipeline.insitu import (
    build_insitu,
    daily_means,
    parse_ismn_name,
    read_ismn_file,
    read_static_variables,
)

TD = Path("TUW-GEO_ismn/tests/test_data")
ARM1 = "COSMOS_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
BARROW = "COSMOS_COSMOS_Barrow-ARM_sm_0.000000_0.210000_Cosmic-ray-Probe_20170810_20180809.stm"
NARBONNE = "SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm"
AACES = "AACES_AACES_Farm07_sm_0.000000_0.050000_ThetaProbe-ML2X_19500101_20230521.stm"
# ARM-1 and Barrow are cosmic-ray probes 0-0.19 / 0-0.21 m: the tests relax the depth rule.
COSMOS_CFG = InsituConfig(max_depth_m=0.25)


@pytest.fixture(scope="module")
def td(realdata: Path) -> Path:
    return realdata / TD


def header_file(td: Path, station: str = "ARM-1", name: str = ARM1) -> Path:
    return td / "Data_seperate_files_header_20170810_20180809" / "COSMOS" / station / name


def ceop_file(td: Path, station: str = "ARM-1", name: str = ARM1) -> Path:
    return td / "Data_seperate_files_20170810_20180809" / "COSMOS" / station / name


# ----------------------------------------------------------------------------- real files


def test_arm1_header_and_ceop_formats_give_the_same_series(td: Path) -> None:
    a = read_ismn_file(header_file(td))
    b = read_ismn_file(ceop_file(td))
    assert (a.format, b.format) == ("header_values", "ceop")
    for field in ("network", "station", "lat", "lon", "elevation", "depth_from", "depth_to"):
        assert getattr(a, field) == getattr(b, field), field
    assert a.site_id == b.site_id == "ISMN:COSMOS:ARM-1"
    pd.testing.assert_frame_equal(a.data, b.data)
    pd.testing.assert_frame_equal(a.good(), b.good())


def test_arm1_figures_match_the_realdata_readme(td: Path) -> None:
    # realdata README: 6865 rows, 6514 flagged exactly G (mean 0.13196 m3/m3),
    # 333 days with a G value; daily G means 2017-08-10 0.21279, 08-11 0.26208, 08-12 0.24975.
    s = read_ismn_file(header_file(td))
    assert (s.lat, s.lon, s.depth_from, s.depth_to) == (36.6054, -97.4878, 0.0, 0.19)
    assert s.sensor == "Cosmic-ray-Probe"
    assert len(s.data) == 6865
    assert s.data["time"].iloc[0] == pd.Timestamp("2017-08-10 00:00")
    assert s.data["time"].iloc[-1] == pd.Timestamp("2018-08-09 23:00")
    good = s.good()
    assert len(good) == 6514
    assert good["value"].mean() == pytest.approx(0.13196, abs=5e-6)
    days = daily_means(good["time"].to_numpy(), good["value"].to_numpy(), 1)
    assert len(days) == 333
    first = days.set_index("date")["sm"].iloc[:3]
    np.testing.assert_allclose(first.to_numpy(), [0.21279, 0.26208, 0.24975], atol=5e-6)
    assert list(first.index) == list(pd.to_datetime(["2017-08-10", "2017-08-11", "2017-08-12"]))


def test_multi_flags_are_not_g(td: Path) -> None:
    s = read_ismn_file(header_file(td))
    flags = s.data["ismn_flag"]
    assert (flags == "D03,D05").sum() > 0  # the file has multi-flags
    assert set(s.good()["time"]).isdisjoint(set(s.data.loc[flags == "D03,D05", "time"]))
    assert (flags != "G").sum() == 6865 - 6514
    assert set(s.data["provider_flag"]) == {"M"}


def test_build_keeps_arm1_g_days(td: Path) -> None:
    res = build_insitu(td / "Data_seperate_files_header_20170810_20180809", None, COSMOS_CFG)
    arm = res.daily[res.daily["site_id"] == "ISMN:COSMOS:ARM-1"]
    assert len(arm) == 333 and arm["n_obs"].sum() == 6514
    assert arm["sm"].iloc[0] == pytest.approx(0.21279, abs=5e-6)
    assert arm["date"].dtype == np.dtype("datetime64[ns]")
    assert set(arm["depth_from"]) == {0.0} and set(arm["depth_to"]) == {0.19}
    site = res.sites.set_index("site_id").loc["ISMN:COSMOS:ARM-1"]
    assert site["koppen"] == "Cfa" and bool(site["in_conus"]) and site["group"] == "COSMOS"
    assert site["source"] == "ISMN" and site["n_days"] == 333
    g = res.report.step("ISMN", "ISMN flag is exactly G")
    assert (g.kept, g.dropped) == (6514 + 4963, (6865 - 6514) + (7059 - 4963))


def test_default_depth_rule_drops_cosmic_ray_probes(td: Path) -> None:
    res = build_insitu(td / "Data_seperate_files_header_20170810_20180809", None, InsituConfig())
    assert res.daily.empty
    step = res.report.step("ISMN", "sensor depth_to <= 0.05 m")
    assert step.kept == 0 and step.dropped == 6514 + 4963
    assert set(res.sites["excluded"]) == {"no sensor with depth_to <= 0.05 m"}


def test_narbonne_has_no_g_readings_in_either_cr_only_format(td: Path) -> None:
    for path in (
        td / "format_header_values" / "SMOSMANIA" / NARBONNE,
        td / "format_ceop_sep" / "SMOSMANIA" / NARBONNE,
    ):
        raw = path.read_bytes()
        assert b"\r" in raw and b"\n" not in raw  # CR-only line endings
        s = read_ismn_file(path)
        assert s.station == "Narbonne" and len(s.data) == 741
        assert set(s.data["ismn_flag"]) == {"U", "D05"}
        assert s.good().empty
    res = build_insitu(td / "format_header_values", None, InsituConfig(conus_only=False))
    assert res.daily.empty
    assert res.report.step("ISMN", "ISMN flag is exactly G").kept == 0


def test_barrow_falls_outside_conus(td: Path) -> None:
    res = build_insitu(td / "Data_seperate_files_20170810_20180809", None, COSMOS_CFG)
    sites = res.sites.set_index("site_id")
    assert not bool(sites.loc["ISMN:COSMOS:Barrow-ARM", "in_conus"])
    assert sites.loc["ISMN:COSMOS:Barrow-ARM", "excluded"] == "outside CONUS"
    assert set(res.daily["site_id"]) == {"ISMN:COSMOS:ARM-1"}
    conus = res.report.step("ISMN", "inside CONUS")
    assert (conus.kept, conus.dropped) == (6514, 4963)


def test_zip_archives_read_the_same_as_folders(td: Path) -> None:
    zips = td / "zip_archives"
    for folder, archive in (
        (td / "Data_seperate_files_header_20170810_20180809", zips / "header"),
        (td / "Data_seperate_files_20170810_20180809", zips / "ceop"),
    ):
        a = build_insitu(folder, None, COSMOS_CFG)
        b = build_insitu(next(archive.glob("*.zip")), None, COSMOS_CFG)
        pd.testing.assert_frame_equal(a.daily, b.daily)
        pd.testing.assert_frame_equal(a.sites, b.sites)
    smos = build_insitu(zips / "format_header_values", None, InsituConfig(conus_only=False))
    assert list(smos.sites["site_id"]) == ["ISMN:SMOSMANIA:Narbonne"]
    assert smos.report.step("ISMN", "ISMN flag is exactly G").dropped == 741


def test_aaces_2023_format_with_c03_flag(realdata: Path) -> None:
    s = read_ismn_file(realdata / "TUW-GEO_ismn" / "changes_done" / AACES)
    assert (s.network, s.station, s.sensor) == ("AACES", "Farm07", "ThetaProbe ML2X")
    assert (s.lat, s.lon, s.elevation) == (-34.67459, 145.47188, 121.0)
    assert len(s.data) == 15 and len(s.good()) == 14
    last = s.data.iloc[-1]
    assert last["ismn_flag"] == "C03" and last["value"] == 0.5352
    assert last["time"] == pd.Timestamp("2010-09-13 01:00")


def test_malformed_file_is_rejected_naming_it(td: Path) -> None:
    path = td / "malformed" / "mal_formed_file.txt"
    with pytest.raises(InsituError) as err:
        read_ismn_file(path)
    assert err.value.path == str(path) and str(path) in str(err.value)
    with pytest.raises(InsituError, match=r"mal_formed_file\.txt"):
        build_insitu(td / "malformed", None, InsituConfig(), strict=True)


def test_bulk_mode_skips_the_malformed_file_and_reports_it(td: Path, tmp_path: Path) -> None:
    tree = tmp_path / "ISMN" / "COSMOS" / "ARM-1"
    tree.mkdir(parents=True)
    shutil.copy(header_file(td), tree / ARM1)
    shutil.copy(td / "malformed" / "mal_formed_file.txt", tree / "mal_formed_file.txt")
    res = build_insitu(tmp_path / "ISMN", None, COSMOS_CFG)
    assert [Path(s.path).name for s in res.report.skipped] == ["mal_formed_file.txt"]
    assert "not an ISMN data file" in res.report.skipped[0].reason
    files = res.report.step("ISMN", "data files read")
    assert (files.kept, files.dropped) == (1, 1)
    assert res.daily["n_obs"].sum() == 6514
    assert "mal_formed_file.txt" in res.report.table()


def test_static_variables(td: Path) -> None:
    static = read_static_variables(header_file(td, name="COSMOS_COSMOS_ARM-1_static_variables.csv"))
    # Values of the file's 0.00-0.30 m HWSD rows and its last ESA CCI epoch.
    assert static.koppen == "Cfa"
    assert (static.clay, static.sand, static.silt, static.saturation) == (23.0, 36.0, 41.0, 0.46)
    assert static.landcover_cci == 130 and static.landcover_name == "Grassland"
    with pytest.raises(InsituError):
        read_static_variables(b"no;such\n1;2\n", "x_static_variables.csv")


def test_name_parsing() -> None:
    n = parse_ismn_name(ARM1)
    assert n is not None and n.is_soil_moisture
    assert (n.depth_from, n.depth_to, n.sensor) == (0.0, 0.19, "Cosmic-ray-Probe")
    ts = parse_ismn_name("SCAN_SCAN_Station_ts_0.050000_0.050000_Hydraprobe_20100101_20101231.stm")
    assert ts is not None and not ts.is_soil_moisture
    assert parse_ismn_name("mal_formed_file.txt") is None


# ----------------------------------------------------------------------------- edge cases

HEADER = (
    "NETX       NETX            {station:<17} 35.00000   -98.00000  300.00    0.00    0.05 {sensor}"
)


def _header_file(station: str = "Red Hill", sensor: str = "Hydra Probe II") -> bytes:
    lines = [HEADER.format(station=station, sensor=sensor)]
    lines += [
        "2020/06/01 22:00   0.2000 G M",
        "2020/06/01 23:00   0.2200 G provider ok, checked",
        "2020/06/02 00:00   0.3000 D03,D05 OK",
        "2020/06/02 01:00   0.2500 G  a,b  c ",
    ]
    return "\r\n".join(lines[:2]).encode() + b"\r" + "\n".join(lines[2:]).encode() + b"\n"


def test_spaces_commas_in_flags_station_names_and_mixed_endings() -> None:
    s = read_ismn_file(
        _header_file(), name="NETX_NETX_Red-Hill_sm_0.0_0.05_x_20200601_20200602.stm"
    )
    assert (s.station, s.sensor, s.lat, s.lon) == ("Red Hill", "Hydra Probe II", 35.0, -98.0)
    assert list(s.data["ismn_flag"]) == ["G", "G", "D03,D05", "G"]
    assert list(s.data["provider_flag"]) == ["M", "provider ok, checked", "OK", "a,b  c"]
    assert list(s.good()["value"]) == [0.2, 0.22, 0.25]


def test_latin1_station_name_and_bytes_equal_path(tmp_path: Path) -> None:
    raw = (
        _header_file(station="Säntis Öst")
        .replace(b"\xc3\xa4", b"\xe4")
        .replace(b"\xc3\x96", b"\xd6")
    )
    assert b"\xe4" in raw  # Latin-1 encoded, invalid as UTF-8
    path = tmp_path / "NETX_NETX_Santis_sm_0.0_0.05_x_20200601_20200602.stm"
    path.write_bytes(raw)
    a = read_ismn_file(path)
    b = read_ismn_file(raw, name=path.name)
    assert a.station == b.station == "Säntis Öst"
    pd.testing.assert_frame_equal(a.data, b.data)


def test_station_folder_name_differs_from_header(tmp_path: Path) -> None:
    folder = tmp_path / "NETX" / "RedHill_folder"
    folder.mkdir(parents=True)
    (folder / "NETX_NETX_RedHill_sm_0.000000_0.050000_x_20200601_20200602.stm").write_bytes(
        _header_file()
    )
    res = build_insitu(tmp_path, None, InsituConfig())
    assert list(res.sites["site_id"]) == ["ISMN:NETX:Red Hill"]
    assert res.daily["n_obs"].tolist() == [2, 1]  # 06-01: 2 G readings; 06-02: 1 G reading


def test_shallowest_sensor_wins_and_deep_ones_are_dropped(tmp_path: Path) -> None:
    folder = tmp_path / "NETX" / "S1"
    folder.mkdir(parents=True)
    for dfrom, dto, value in ((0.0, 0.05, 0.2), (0.05, 0.05, 0.3), (0.1, 0.1, 0.4)):
        head = HEADER.format(station="S1", sensor="probe").replace(
            "0.00    0.05", f"{dfrom:.2f}    {dto:.2f}"
        )
        body = "\n".join(f"2020/06/01 {h:02d}:00 {value:.4f} G M" for h in range(24))
        name = f"NETX_NETX_S1_sm_{dfrom:.6f}_{dto:.6f}_probe_20200601_20200601.stm"
        (folder / name).write_text(head + "\n" + body + "\n")
    res = build_insitu(tmp_path, None, InsituConfig())
    assert res.daily["sm"].tolist() == [pytest.approx(0.2)]
    assert res.report.step("ISMN", "sensor depth_to <= 0.05 m")[1:3] == (48, 24)
    assert res.report.step("ISMN", "one sensor per site (shallowest)")[1:3] == (24, 24)
    by_from = build_insitu(tmp_path, None, InsituConfig(depth_field="depth_from"))
    assert by_from.report.step("ISMN", "sensor depth_from <= 0.05 m")[1:3] == (48, 24)


def test_other_variables_are_ignored_and_zip_of_tree(tmp_path: Path) -> None:
    archive = tmp_path / "Data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(
            "NETX/S/NETX_NETX_S_sm_0.000000_0.050000_x_20200601_20200602.stm",
            _header_file(station="S"),
        )
        zf.writestr(
            "NETX/S/NETX_NETX_S_ts_0.050000_0.050000_x_20200601_20200602.stm",
            _header_file(station="S"),
        )
        zf.writestr("Readme.txt", "ISMN readme")
    res = build_insitu(archive, None, InsituConfig())
    assert res.report.step("ISMN", "data files read")[1:3] == (1, 0)
    assert not res.report.skipped
    assert any("other variables" in n for n in res.report.notes)
    assert res.daily["n_obs"].sum() == 3


def test_write_and_load_round_trip(td: Path, tmp_path: Path) -> None:
    from pipeline.insitu import load_insitu

    res = build_insitu(td / "Data_seperate_files_header_20170810_20180809", None, COSMOS_CFG)
    daily_path, sites_path = res.write(tmp_path / "out" / "insitu.parquet")
    assert daily_path.name == "insitu.parquet" and sites_path.name == "insitu_sites.parquet"
    assert not list((tmp_path / "out").glob("*.tmp"))
    back = load_insitu(tmp_path / "out" / "insitu.parquet")
    pd.testing.assert_frame_equal(back.daily, res.daily)
    assert back.daily["date"].dtype == np.dtype("datetime64[ns]")
    assert list(back.sites["site_id"]) == list(res.sites["site_id"])
    assert back.report.steps == res.report.steps
