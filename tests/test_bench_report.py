"""The benchmark report writer (the figures themselves are not tested for speed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import benchmarks.report as report
from pipeline.cli import main


def test_flatten_and_markdown() -> None:
    rows = report.flatten({"a": {"b": 1.23456, "c": [1, 2]}, "d": "x"})
    assert rows == [("a.b", 1.23456), ("a.c", [1, 2]), ("d", "x")]
    md = report.to_markdown({"toy": {"speedup": 21.5}}, {"cpus": 2})
    assert "## toy" in md and "| speedup | 21.5 |" in md


def test_run_all_writes_json_and_markdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "load", lambda name: lambda quick: {"quick": quick, "ratio": 2.0})
    monkeypatch.setattr(report, "BENCHMARKS", ("toy",))
    json_path, md_path = report.run_all(["toy"], tmp_path, quick=True, log=lambda s: None)
    data = json.loads(json_path.read_text())
    assert data["results"]["toy"] == {"quick": True, "ratio": 2.0}
    assert "| ratio | 2 |" in md_path.read_text()


def test_unknown_benchmark_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bench", "--only", "nope", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err
