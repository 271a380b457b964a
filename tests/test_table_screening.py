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
