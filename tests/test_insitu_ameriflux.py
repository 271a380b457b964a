"""AmeriFlux BASE + BIF readers and the paper's rules, on the real US-CRT files.

Figures come from ../shared/realdata/README.md (SWC mean 43.11 %, UTC_OFFSET -5,
IGBP CRO, 41.628495 / -83.347086) and are re-derived here with the csv module.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pipeline.config import InsituConfig
from pipeline.errors import InsituError
from pipeline.insitu import build_insitu, read_ameriflux, read_bif

EXT = Path("chuhousen_amerifluxr/inst/extdata")
CSV_NAME = "AMF_US-CRT_BASE_HH_2-5.csv"
ZIP_NAME = "AMF_US-CRT_BASE-BADM_2-5.zip"
# Keep every reading of the (January) file: the temperature rule is tested on its own.
NO_TEMP = InsituConfig(min_soil_temperature_c=-100.0)


@pytest.fixture(scope="module")
def ext(realdata: Path) -> Path:
    return realdata / EXT


def raw_rows(path: Path) -> list[dict[str, str]]:
    """The BASE rows by the csv module (independent of the reader under test)."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def bif_rows(ext: Path) -> list[tuple[str, ...]]:
    with zipfile.ZipFile(ext / ZIP_NAME) as zf:
        name = next(n for n in zf.namelist() if "_BIF_" in n)
        wb = openpyxl.load_workbook(io.BytesIO(zf.read(name)), read_only=True)
        rows = [
            tuple("" if c is None else str(c) for c in r)
            for r in wb.active.iter_rows(values_only=True)
        ]
        wb.close()
    return rows


def write_bif_csv(
    path: Path, rows: list[tuple[str, ...]], extra: list[tuple[str, ...]] = ()
) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        for r in [*rows, *extra]:
            w.writerow(r)
    return path


def delivery(
    tmp_path: Path, ext: Path, csv_text: str | None = None, bif_extra=(), igbp=None
) -> Path:
    """A folder with a (possibly edited) BASE CSV and a CSV export of the BIF."""
    folder = tmp_path / "AmeriFlux"
    folder.mkdir(exist_ok=True)
    text = csv_text if csv_text is not None else (ext / CSV_NAME).read_text()
    (folder / CSV_NAME).write_text(text)
    rows = bif_rows(ext)
    if igbp is not None:
        rows = [r if r[3] != "IGBP" else (*r[:4], igbp) for r in rows]
    write_bif_csv(folder / "AMF_US-CRT_BIF_20201005.csv", rows, list(bif_extra))
    return folder


def edit_column(ext: Path, column: str, fn) -> str:
    """The BASE CSV text with ``column`` rewritten by ``fn(list_of_str) -> list_of_str``."""
    lines = (ext / CSV_NAME).read_text().splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln.split(",") for ln in lines if not ln.startswith("#")]
    j = body[0].index(column)
    new = fn([r[j] for r in body[1:]])
    for r, v in zip(body[1:], new, strict=True):
        r[j] = v
    return "\n".join(comments + [",".join(r) for r in body]) + "\n"


# ----------------------------------------------------------------------------- reading


def test_bif_from_the_badm_zip(ext: Path) -> None:
    site = read_bif(ext / ZIP_NAME)["US-CRT"]
    assert (site.lat, site.lon, site.utc_offset, site.igbp) == (41.628495, -83.347086, -5.0, "CRO")
    assert site.koppen == "Dfa" and site.elevation == 180.0


def test_bif_csv_export_reads_like_the_spreadsheet(ext: Path, tmp_path: Path) -> None:
    path = write_bif_csv(tmp_path / "AMF_US-CRT_BIF_20201005.csv", bif_rows(ext))
    assert read_bif(path) == read_bif(ext / ZIP_NAME)


def test_us_crt_percent_to_fraction_in_utc(ext: Path) -> None:
    rows = raw_rows(ext / CSV_NAME)
    swc_pct = np.array([float(r["SWC"]) for r in rows])
    assert swc_pct.mean() == pytest.approx(43.11, abs=0.005)  # realdata README: mean 43.11 %
    site = read_ameriflux(ext / CSV_NAME, badm=ext / ZIP_NAME)
    assert site.utc_offset == -5.0 and site.unit_errors == ()
    np.testing.assert_allclose(site.swc["SWC"].to_numpy(), swc_pct / 100.0)
    # 201101010000-201101010030 local standard time (UTC-5) -> middle 05:15 UTC.
    assert rows[0]["TIMESTAMP_START"] == "201101010000"
    assert site.times[0] == pd.Timestamp("2011-01-01 05:15")
    assert site.times[-1] == pd.Timestamp("2011-01-03 04:45")
    assert [c.name for c in site.ts_columns] == ["TS_1_1_1", "TS_2_1_1"]
    assert site.best_ts() is not None and site.best_ts().name == "TS_1_1_1"


def test_the_zip_alone_gives_data_and_metadata(ext: Path) -> None:
    a = read_ameriflux(ext / CSV_NAME, badm=ext / ZIP_NAME)
    b = read_ameriflux(ext / ZIP_NAME)
    pd.testing.assert_frame_equal(a.swc, b.swc)
    assert b.site_id == "US-CRT" and b.version == "2-5"


def test_no_metadata_is_an_error_naming_the_file(ext: Path) -> None:
    with pytest.raises(InsituError, match=CSV_NAME):
        read_ameriflux(ext / CSV_NAME)


def test_us_crt_daily_means_per_utc_day(ext: Path) -> None:
    rows = raw_rows(ext / CSV_NAME)
    # Independent UTC day of each half hour: local start + 15 min + 5 h.
    start = pd.to_datetime([r["TIMESTAMP_START"] for r in rows], format="%Y%m%d%H%M")
    day = (start + pd.Timedelta(minutes=15) + pd.Timedelta(hours=5)).floor("D")
    expect = pd.Series([float(r["SWC"]) / 100 for r in rows]).groupby(day).agg(["mean", "size"])
    assert list(expect["size"]) == [38, 48, 10]
    res = build_insitu(None, ext, NO_TEMP)
    crt = res.daily[res.daily["site_id"] == "AMF:US-CRT"]
    assert list(crt["date"]) == list(expect.index)
    np.testing.assert_allclose(crt["sm"].to_numpy(), expect["mean"].to_numpy(), rtol=1e-12)
    assert list(crt["n_obs"]) == [38, 48, 10]
    site = res.sites.set_index("site_id").loc["AMF:US-CRT"]
    assert site["igbp"] == "CRO" and site["sensor"] == "SWC" and np.isnan(site["depth_to"])
    unknown = res.report.step("AmeriFlux", "sensor depth unknown in BADM (keep)")
    assert (unknown.kept, unknown.dropped) == (96, 0)


def test_soil_temperature_rule_uses_ts_1_1_1(ext: Path) -> None:
    rows = raw_rows(ext / CSV_NAME)
    ts = np.array([float(r["TS_1_1_1"]) for r in rows])
    warm = int((ts >= 3.0).sum())
    res = build_insitu(None, ext, InsituConfig())
    step = res.report.step("AmeriFlux", "temperature >= 3 degC (TS_* or MODIS LST)")
    assert (step.kept, step.dropped) == (warm, 96 - warm)
    assert res.daily["n_obs"].sum() == warm


def test_without_ts_the_rule_is_counted_not_applicable_or_uses_lst(
    ext: Path, tmp_path: Path
) -> None:
    text = (ext / CSV_NAME).read_text().replace("TS_1_1_1", "XTS_1").replace("TS_2_1_1", "XTS_2")
    folder = delivery(tmp_path, ext, csv_text=text)
    res = build_insitu(None, folder, InsituConfig())
    na = res.report.step("AmeriFlux", "temperature rule not applicable (no TS_*, no LST)")
    assert (na.kept, na.dropped) == (96, 0)
    assert res.daily["n_obs"].sum() == 96
    strict = build_insitu(None, folder, InsituConfig(require_temperature=True))
    assert strict.daily.empty
    seen: list[int] = []

    def lst(site_id: str, lat: float, lon: float, times: pd.DatetimeIndex) -> pd.Series:
        seen.append(len(times))
        assert site_id == "AMF:US-CRT" and lat == 41.628495
        return pd.Series(np.where(times < pd.Timestamp("2011-01-02"), 5.0, 1.0), index=times)

    with_lst = build_insitu(None, folder, InsituConfig(), lst_at_site=lst)
    assert seen == [96]
    step = with_lst.report.step("AmeriFlux", "temperature >= 3 degC (TS_* or MODIS LST)")
    assert (step.kept, step.dropped) == (38, 58)
    assert list(with_lst.daily["n_obs"]) == [38]


def test_fraction_series_is_a_unit_error_not_divided(ext: Path, tmp_path: Path) -> None:
    text = edit_column(ext, "SWC", lambda v: [f"{float(x) / 100:.6f}" for x in v])
    folder = delivery(tmp_path, ext, csv_text=text)
    site = read_ameriflux(folder / CSV_NAME, badm=folder / "AMF_US-CRT_BIF_20201005.csv")
    assert site.unit_errors == ("SWC",)
    assert site.swc["SWC"].max() <= 1.0 and site.swc["SWC"].min() > 0.39  # not divided again
    res = build_insitu(None, folder, NO_TEMP)
    assert res.daily.empty
    step = res.report.step("AmeriFlux", "SWC in percent (max > 1; else unit error)")
    assert (step.kept, step.dropped) == (0, 96)
    assert res.sites["excluded"].tolist() == ["unit error"]
    assert any("unit error" in n for n in res.report.notes)


def test_swc_above_0_7_is_dropped_and_missing_is_not_a_reading(ext: Path, tmp_path: Path) -> None:
    def edit(v: list[str]) -> list[str]:
        out = list(v)
        out[0], out[1], out[2] = "75.0", "-9999", "70.0"
        return out

    folder = delivery(tmp_path, ext, csv_text=edit_column(ext, "SWC", edit))
    res = build_insitu(None, folder, NO_TEMP)
    present = res.report.step("AmeriFlux", "SWC value present (not -9999)")
    assert (present.kept, present.dropped) == (95, 1)
    rng = res.report.step("AmeriFlux", "0 <= sm <= 0.7 m3 m-3")
    assert (rng.kept, rng.dropped) == (94, 1)  # 0.75 dropped, 0.70 kept
    assert res.daily["n_obs"].tolist() == [36, 48, 10]


def test_wetland_sites_are_excluded(ext: Path, tmp_path: Path) -> None:
    wet = build_insitu(None, delivery(tmp_path, ext, igbp="WET"), NO_TEMP)
    assert wet.daily.empty and wet.sites["excluded"].tolist() == ["wetland site"]
    assert wet.report.step("AmeriFlux", "not a wetland site")[1:3] == (0, 96)
    listed = build_insitu(
        None, delivery(tmp_path, ext), NO_TEMP.model_copy(update={"wetland_sites": ["US-CRT"]})
    )
    assert listed.daily.empty


def test_badm_depths_choose_the_shallow_sensor(ext: Path, tmp_path: Path) -> None:
    lines = (ext / CSV_NAME).read_text().splitlines()
    header = lines[2].split(",")
    j = header.index("SWC")
    header[j] = "SWC_1_1_1"
    out = [*lines[:2], ",".join([*header, "SWC_1_2_1", "SWC_1_3_1"])]
    for ln in lines[3:]:
        out.append(ln + ",30.0,20.0")
    info = [
        ("US-CRT", "900", "GRP_VAR_INFO", "VAR_INFO_VARNAME", "SWC_1_1_1"),
        ("US-CRT", "900", "GRP_VAR_INFO", "VAR_INFO_HEIGHT", "-0.3"),
        ("US-CRT", "901", "GRP_VAR_INFO", "VAR_INFO_VARNAME", "SWC_1_2_1"),
        ("US-CRT", "901", "GRP_VAR_INFO", "VAR_INFO_HEIGHT", "-0.05"),
    ]
    folder = delivery(tmp_path, ext, csv_text="\n".join(out) + "\n", bif_extra=info)
    res = build_insitu(None, folder, NO_TEMP)
    site = res.sites.iloc[0]
    assert site["sensor"] == "SWC_1_2_1" and site["depth_to"] == 0.05
    assert res.daily["sm"].tolist() == pytest.approx([0.3, 0.3, 0.3])
    depth = res.report.step("AmeriFlux", "sensor depth_to <= 0.05 m")
    assert (depth.kept, depth.dropped) == (96, 96)
    one = res.report.step("AmeriFlux", "one sensor per site (shallowest)")
    assert (one.kept, one.dropped) == (96, 96)  # SWC_1_3_1 (depth unknown) not chosen
    drop_unknown = build_insitu(None, folder, NO_TEMP.model_copy(update={"unknown_depth": "drop"}))
    assert drop_unknown.report.step("AmeriFlux", "sensor depth unknown in BADM (drop)")[1:3] == (
        0,
        96,
    )


def test_gap_filled_and_statistics_columns_are_not_measurements() -> None:
    from pipeline.insitu.ameriflux import sensor_column

    assert sensor_column("SWC_F", {}) is None
    assert sensor_column("SWC_1_1_1_SD", {}) is None
    assert sensor_column("SWC_PI_1", {}) is not None
    assert sensor_column("TS_2_1_1", {"TS_2_1_1": 0.1}).depth == 0.1


def test_not_a_base_file_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "AMF_US-XXX_BASE_HH_1-1.csv"
    bad.write_text("# Site: US-XXX\nfoo,bar\n1,2\n")
    with pytest.raises(InsituError, match="TIMESTAMP"):
        read_ameriflux(bad, badm={})
