"""In-situ inputs an operator meets: CONUS membership from the real outline (US Census
cartographic boundaries, ``grids.conus``) for stations and for the grid's land mask; QC
notes and skipped files on the console with their file names; AmeriFlux files found by
content; unsupported formats named; depth conflicts noted; stations without G listed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from grids import Grid
from grids.conus import conus_mask, in_conus
from pipeline.config import InsituConfig
from pipeline.insitu import build_insitu

TD = Path("TUW-GEO_ismn/tests/test_data")
HEADER = "Data_seperate_files_header_20170810_20180809"
ARM1 = "COSMOS_COSMOS_ARM-1_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
# A RISMA (Agriculture and Agri-Food Canada) station by Ottawa, Ontario: 45.3 N, 75.1 W,
# 40 km north of the St. Lawrence (the US border) and inside the old lat/lon box.
RISMA = ("RISMA", "ON1", 45.30, -75.10)


def _risma_from_arm1(td: Path, dest: Path) -> Path:
    """A RISMA station file: ARM-1's real readings under a RISMA Ottawa header."""
    lines = (td / HEADER / "COSMOS" / "ARM-1" / ARM1).read_bytes().splitlines()
    net, station, lat, lon = RISMA
    head = f"{net} {net} {station} {lat:.5f} {lon:.5f} 80.00 0.00 0.19 Cosmic-ray-Probe"
    folder = dest / net / station
    folder.mkdir(parents=True)
    name = f"{net}_{net}_{station}_sm_0.000000_0.190000_Cosmic-ray-Probe_20170810_20180809.stm"
    (folder / name).write_bytes(b"\n".join([head.encode(), *lines[1:]]) + b"\n")
    return folder / name


@pytest.mark.realdata
def test_conus_membership_from_the_census_outline_keeps_arm1_drops_risma_ottawa(
    realdata: Path, tmp_path: Path
) -> None:
    td = realdata / TD
    root = tmp_path / "ISMN"
    shutil.copytree(td / HEADER / "COSMOS", root / "COSMOS")
    _risma_from_arm1(td, root)
    res = build_insitu(root, None, InsituConfig(max_depth_m=0.25))
    sites = res.sites.set_index("site_id")
    assert bool(sites.loc["ISMN:COSMOS:ARM-1", "in_conus"])  # Oklahoma
    assert not bool(sites.loc["ISMN:RISMA:ON1", "in_conus"])  # Ontario, inside the old box
    assert sites.loc["ISMN:RISMA:ON1", "excluded"] == "outside CONUS"
    assert not bool(sites.loc["ISMN:COSMOS:Barrow-ARM", "in_conus"])  # Alaska
    assert set(res.daily["site_id"]) == {"ISMN:COSMOS:ARM-1"}
    assert res.report.step("ISMN", "inside CONUS").dropped > 0


def test_conus_outline_points_and_grid_mask_agree_across_the_borders() -> None:
    # Points either side of the borders (1:10M outline: a few km off is either side).
    inside = [(36.6054, -97.4878), (41.6285, -83.3471), (44.90, -74.90), (48.90, -100.0),
              (32.72, -117.16), (25.76, -80.19), (31.80, -106.50)]  # fmt: skip
    outside = [(45.30, -75.10), (45.42, -75.70), (49.10, -100.0), (71.32, -156.61),
               (21.31, -157.86), (18.47, -66.11), (31.60, -106.50), (np.nan, -97.0)]  # fmt: skip
    lat, lon = np.array(inside + outside).T
    got = in_conus(lat, lon)
    assert got.tolist() == [True] * len(inside) + [False] * len(outside)
    # The land mask of a 0.02-degree grid over the St. Lawrence border (NY / Ontario):
    # pixel centres inside the outline, the same answer as the point test.
    g = Grid("EPSG:4326", (0.02, 0.0, -75.5, 0.0, -0.02, 45.5), (50, 50))
    mask = conus_mask(g)
    rows, cols = np.mgrid[0:50, 0:50]
    clon, clat = -75.5 + (cols + 0.5) * 0.02, 45.5 - (rows + 0.5) * 0.02
    pts = in_conus(clat, clon)
    assert 0.2 < mask.mean() < 0.8  # the border crosses the window
    assert (mask != pts).mean() < 0.01  # GDAL pixel-centre rule vs exact point test
    # In another CRS (CONUS Albers, EPSG:5070) the mask follows the same outline.
    from pyproj import Transformer

    to_ll = Transformer.from_crs("EPSG:5070", "EPSG:4326", always_xy=True)
    x0, y0 = Transformer.from_crs("EPSG:4326", "EPSG:5070", always_xy=True).transform(-75.5, 45.5)
    a = Grid("EPSG:5070", (2000.0, 0.0, x0, 0.0, -2000.0, y0), (50, 50))
    ma = conus_mask(a)
    alon, alat = to_ll.transform(x0 + (cols + 0.5) * 2000.0, y0 - (rows + 0.5) * 2000.0)
    assert 0.2 < ma.mean() < 0.8
    assert (ma != in_conus(alat, alon)).mean() < 0.01


def test_static_land_mask_of_a_conus_grid_stops_at_the_census_outline(tmp_path: Path) -> None:
    """A tiny synthetic world across the 49th parallel (North Dakota / Manitoba): land beyond the
    outline is OUTSIDE (never mapped), land inside stays LAND, water stays WATER."""
    import datetime as dt

    from test_reliability_world import MODE, config, model_dir

    from grids.mask import LAND, OUTSIDE, WATER
    from pipeline.config import Settings
    from pipeline.run import build_plan
    from pipeline.run.static import compute_static_tile, landcover_year
    from pipeline.synth import WorldSpec, write_world

    region = (-100.1, 48.9, -99.9, 49.1)
    day = dt.date(2020, 6, 1)
    spec = WorldSpec(region=region, start=day, end=day, seed=3, n_stations=0, n_ameriflux=0,
                     spinup_days=2)  # fmt: skip
    write_world(spec, tmp_path / "world")
    model_dir()
    s = Settings(**config(tmp_path, world_dir=tmp_path / "world", grid={"region": list(region)}))
    plan = build_plan(s, mode=MODE)
    plan = plan.static_for(landcover_year(plan, day), day)
    n_out = n_land = 0
    for tile in plan.tiles():
        surface = compute_static_tile(plan, tile)[0]["surface"]
        inside = conus_mask(tile.grid)
        assert not (surface[~inside] == LAND).any()  # nothing beyond the border is mapped
        assert (surface[inside] != OUTSIDE).all()
        assert ((surface == OUTSIDE) | (surface == WATER))[~inside].all()
        n_out += int((surface == OUTSIDE).sum())
        n_land += int((surface == LAND).sum())
    assert n_out > 1000 and n_land > 1000  # both sides of the border hold land


AMF = Path("chuhousen_amerifluxr/inst/extdata")
NARBONNE = "SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm"


def _ameriflux_renamed(realdata: Path, dest: Path, *, fraction: bool) -> Path:
    """The real US-CRT BASE CSV saved under a name that is not AMF_* (its BIF beside it),
    with SWC turned into a fraction (a unit error) when asked."""
    import zipfile

    folder = dest / "AmeriFlux"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(realdata / AMF / "AMF_US-CRT_BASE-BADM_2-5.zip") as zf:
        (folder / "AMF_US-CRT_BIF_20201005.xlsx").write_bytes(
            zf.read("AMF_US-CRT_BIF_20201005.xlsx")
        )
    text = (realdata / AMF / "AMF_US-CRT_BASE_HH_2-5.csv").read_text(encoding="utf-8")
    if fraction:
        lines = text.splitlines()
        i = next(n for n, line in enumerate(lines) if line.startswith("TIMESTAMP_START"))
        col = lines[i].split(",").index("SWC")
        for n in range(i + 1, len(lines)):
            cells = lines[n].split(",")
            if cells[col] != "-9999":
                cells[col] = f"{float(cells[col]) / 100:.6f}"
            lines[n] = ",".join(cells)
        text = "\n".join(lines) + "\n"
    (folder / "crt_half_hourly.csv").write_text(text, encoding="utf-8")
    (folder / "README.txt").write_text("notes of the field team\n", encoding="utf-8")
    return folder


@pytest.mark.realdata
def test_insitu_console_names_qc_notes_skipped_files_and_renamed_ameriflux(
    realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    td = realdata / TD
    ismn = tmp_path / "ISMN"
    shutil.copytree(td / HEADER / "COSMOS", ismn / "COSMOS")
    shutil.copy(td / "malformed" / "mal_formed_file.txt", ismn / "COSMOS" / "mal_formed_file.stm")
    amf = _ameriflux_renamed(realdata, tmp_path, fraction=True)
    rc = main(["insitu", "--ismn", str(ismn), "--ameriflux", str(amf),
               "--out", str(tmp_path / "out" / "insitu.parquet")])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    # Skipped files and QC notes on the console, each naming its file.
    assert f"{ismn / 'COSMOS' / 'mal_formed_file.stm'}: not an ISMN data file" in out
    assert "notes (" in out
    assert f"AmeriFlux: {amf / 'crt_half_hourly.csv'}: BASE CSV of US-CRT (found by content)" in out
    assert f"SWC in {amf / 'crt_half_hourly.csv'} looks like a fraction already" in out
    assert "ignored: README.txt" in out


@pytest.mark.realdata
def test_renamed_ameriflux_csv_passed_explicitly_is_read_by_content(
    realdata: Path, tmp_path: Path
) -> None:
    amf = _ameriflux_renamed(realdata, tmp_path, fraction=False)
    cfg = InsituConfig(max_depth_m=0.25, unknown_depth="keep")
    res = build_insitu(None, amf, cfg)
    site = res.sites.set_index("site_id").loc["AMF:US-CRT"]
    assert bool(site["in_conus"]) and site["sensor"] == "SWC"
    # The same values as the file under its AmeriFlux name.
    named = tmp_path / "named"
    named.mkdir()
    shutil.copy(amf / "AMF_US-CRT_BIF_20201005.xlsx", named)
    shutil.copy(realdata / AMF / "AMF_US-CRT_BASE_HH_2-5.csv", named)
    ref = build_insitu(None, named, cfg)
    assert res.daily.drop(columns="source", errors="ignore").equals(
        ref.daily.drop(columns="source", errors="ignore")
    )


@pytest.mark.realdata
def test_ceop_one_file_format_is_refused_naming_the_format(realdata: Path, tmp_path: Path) -> None:
    """ISMN's older "variables stored in one file" CEOP layout (a station's soil moisture and
    temperature on one line, no variable in the file name), made from ARM-1's real lines."""
    from pipeline.errors import InsituError

    src = realdata / TD / "Data_seperate_files_20170810_20180809" / "COSMOS" / "ARM-1" / ARM1
    rows = []
    for line in src.read_text(encoding="latin-1").splitlines()[:48]:
        t = line.split()
        # nominal, actual, CSE, network, station, lat, lon, elev, depth, Ts, flag, sm, flag
        rows.append(" ".join([*t[:10], "0.05", "21.40", "M", t[12], t[13]]))
    folder = tmp_path / "ISMN" / "COSMOS" / "ARM-1"
    folder.mkdir(parents=True)
    path = folder / "COSMOS_COSMOS_ARM-1_20170810_20180809.stm"
    path.write_text("\n".join(rows) + "\n", encoding="latin-1")
    with pytest.raises(InsituError) as err:
        build_insitu(tmp_path / "ISMN", None, InsituConfig(), strict=True)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ISMN CEOP one-file format")
    assert "not supported" in msg and "\n" not in msg
    # Without --strict: skipped, listed with the same reason.
    res = build_insitu(tmp_path / "ISMN", None, InsituConfig())
    assert [(s.path, s.reason.split(" (")[0]) for s in res.report.skipped] == [
        (str(path), "ISMN CEOP one-file format")
    ]


@pytest.mark.realdata
def test_depth_conflict_between_header_and_file_name_is_noted_and_the_precise_value_used(
    realdata: Path, tmp_path: Path
) -> None:
    src = realdata / TD / "format_header_values" / "SMOSMANIA" / NARBONNE
    folder = tmp_path / "ISMN" / "SMOSMANIA" / "Narbonne"
    folder.mkdir(parents=True)
    name = NARBONNE.replace("0.050000_0.050000", "0.050800_0.050800")
    (folder / name).write_bytes(src.read_bytes())  # header says 0.05 m, name 0.0508 m
    res = build_insitu(tmp_path / "ISMN", None, InsituConfig(conus_only=False, max_depth_m=0.06))
    site = res.sites.set_index("site_id").loc["ISMN:SMOSMANIA:Narbonne"]
    assert site["depth_from"] == 0.0508 and site["depth_to"] == 0.0508
    note = f"{folder / name}: depth_from 0.05 m in the header, 0.0508 m in the file name: "
    assert any(n.startswith(note) and "using 0.0508 m (the file name" in n
               for n in res.report.notes), res.report.notes  # fmt: skip


@pytest.mark.realdata
def test_stations_without_any_g_reading_are_listed_with_their_files(realdata: Path) -> None:
    res = build_insitu(realdata / TD / "format_header_values", None, InsituConfig(conus_only=False))
    assert res.daily.empty
    (note,) = [n for n in res.report.notes if "without any G reading" in n]
    assert note == f"ISMN: 1 station(s) without any G reading: ISMN:SMOSMANIA:Narbonne ({NARBONNE})"
