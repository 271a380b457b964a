"""Feature screening: an unrelated variable is dropped, a strong one kept and ranked first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import TableConfig
from pipeline.errors import TableError
from pipeline.table.screening import correlations, screen_features, write_report

pytest.importorskip("sklearn")


def _table(seed: int = 0, n_sites: int = 40, days: int = 60) -> pd.DataFrame:
    """sm depends strongly on `strong`, weakly on `weak`, not at all on `noise`."""
    rng = np.random.default_rng(seed)
    n = n_sites * days
    site = np.repeat([f"s{i:02d}" for i in range(n_sites)], days)
    strong = rng.uniform(0, 1, n)
    weak = rng.uniform(0, 1, n)
    noise = rng.uniform(0, 1, n)
    sm = 0.05 + 0.3 * strong + 0.05 * weak + rng.normal(0, 0.02, n)
    split = np.where(np.isin(site, [f"s{i:02d}" for i in range(8)]), "validation", "train")
    return pd.DataFrame(
        {"site_id": site, "strong": strong, "weak": weak, "noise": noise, "sm": sm, "split": split}
    )


def test_unrelated_dropped_strong_kept_and_ranked(tmp_path: Path) -> None:
    cfg = TableConfig(screen_rf_trees=20, screen_seed=1)
    rep = screen_features(_table(), cfg, features=["strong", "weak", "noise"])
    by = {v.name: v for v in rep.variables}
    assert not by["strong"].dropped and by["strong"].marks == 0
    assert by["strong"].rf_relative == pytest.approx(1.0)
    assert by["noise"].dropped and by["noise"].marks >= 3  # three correlations near 0
    assert abs(by["noise"].pearson) < 0.1
    assert rep.lovo[0].name == "strong" and rep.lovo[0].rank == 1
    assert rep.lovo[0].delta_rmse > 0.05  # leaving it out costs most of the signal
    assert rep.n_validation_rows == 8 * 60
    md, js = write_report(rep, tmp_path / "report")
    text = md.read_text()
    assert "| noise |" in text and "drop" in text and "Leave-one-variable-out" in text
    data = json.loads(js.read_text())
    assert "noise" in data["dropped"] and "strong" in data["kept"]
    assert data["lovo"][0]["name"] == "strong"


def test_seeded_report_is_reproducible() -> None:
    cfg = TableConfig(screen_rf_trees=10, screen_seed=3, screen_max_rows=1000)
    df = _table(seed=2).drop(columns="split")  # falls back to an 80/20 site split
    a = screen_features(df, cfg, features=["strong", "noise"])
    b = screen_features(df, cfg, features=["strong", "noise"])
    assert a.to_dict() == b.to_dict()
    assert a.n_rows == 1000


def test_constant_variable_gets_marks_and_bad_input_errors() -> None:
    x = np.ones(50)
    assert all(np.isnan(correlations(x, np.arange(50.0))))
    df = _table()
    with pytest.raises(TableError, match="lacks column"):
        screen_features(df, TableConfig(), features=["strong", "missing"])
    with pytest.raises(TableError, match="too few"):
        screen_features(df.head(5), TableConfig(), features=["strong", "noise"])


def test_features_command_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMDOWN__TABLE__SCREEN_RF_TREES", "10")
    from models.features import FEATURE_NAMES
    from pipeline.cli import main
    from pipeline.table import COLUMNS, DTYPES, write_table

    rng = np.random.default_rng(7)
    base = _table(seed=5, n_sites=20, days=30)
    n = len(base)
    df = pd.DataFrame({c: np.zeros(n, dtype=DTYPES[c]) for c in COLUMNS if DTYPES[c] != "str"})
    for c in COLUMNS:
        if DTYPES[c] == "str":
            df[c] = "x"
    df["site_id"], df["split"], df["sm"] = base["site_id"], base["split"], base["sm"]
    df["date"] = pd.Timestamp("2020-06-01") + pd.to_timedelta(np.tile(np.arange(30), 20), "D")
    for name in FEATURE_NAMES:
        df[name] = rng.uniform(0, 1, n).astype(np.float32)
    df["smap"] = base["strong"].astype(np.float32)
    table = write_table(df, tmp_path / "t.parquet")
    out = tmp_path / "rep"
    assert main(["features", "--table", str(table), "--out", str(out)]) == 0
    data = json.loads((out / "screening.json").read_text())
    assert "smap" in data["kept"] and len(data["lovo"]) == len(FEATURE_NAMES)
    assert data["lovo"][0]["name"] == "smap"
    assert main(["features", "--table", str(tmp_path / "absent.parquet")]) == 1
