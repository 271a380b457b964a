"""``smdown insitu`` as a user runs it: QC table, output files, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main

TD = Path("TUW-GEO_ismn/tests/test_data")


def test_insitu_command_prints_rules_and_writes(
    realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("SMDOWN__INSITU__MAX_DEPTH_M", "0.25")
    out = tmp_path / "out" / "insitu.parquet"
    rc = main(
        [
            "insitu",
            "--ismn",
            str(realdata / TD / "zip_archives" / "header"),
            "--ameriflux",
            str(realdata / "chuhousen_amerifluxr"),
            "--out",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0
    assert "ISMN flag is exactly G" in text and "inside CONUS" in text
    assert "temperature >= 3 degC" in text and f"wrote {out}" in text
    daily = pd.read_parquet(out)
    assert set(daily["site_id"]) == {"ISMN:COSMOS:ARM-1", "AMF:US-CRT"}
    sites = pd.read_parquet(tmp_path / "out" / "insitu_sites.parquet")
    assert set(sites["site_id"]) == {"ISMN:COSMOS:ARM-1", "ISMN:COSMOS:Barrow-ARM", "AMF:US-CRT"}
    assert (tmp_path / "out" / "insitu_qc.json").exists()


def test_strict_stops_at_the_malformed_file_with_one_line(
    realdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "insitu",
            "--ismn",
            str(realdata / TD / "malformed"),
            "--strict",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1
    assert "mal_formed_file.txt" in err and "not an ISMN data file" in err
    assert not list(tmp_path.iterdir())


def test_no_input_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("SMDOWN__SOURCES__ROOT", str(tmp_path / "nowhere"))
    assert main(["insitu", "--out", str(tmp_path / "x")]) == 1
    assert "--ismn" in capsys.readouterr().err
