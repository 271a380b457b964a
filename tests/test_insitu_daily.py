"""Daily aggregation: means per UTC day, minimum readings per day, day boundaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import InsituConfig
from pipeline.insitu import DAILY_COLUMNS, SITE_COLUMNS, build_insitu, daily_means

HEAD = (
    "NETD       NETD            S1                "
    "35.00000   -98.00000  300.00    0.00    0.05 probe"
)


def write_station(root: Path, rows: list[tuple[str, float, str]], station: str = "S1") -> Path:
    """A header+values file under ``root/NETD/<station>`` with (time, value, flag) rows."""
    folder = root / "NETD" / station
    folder.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"{t} {v:.4f} {f} M" for t, v, f in rows)
    name = f"NETD_NETD_{station}_sm_0.000000_0.050000_probe_20200101_20200105.stm"
    (folder / name).write_text(HEAD.replace("S1 ", f"{station} ", 1) + "\n" + body + "\n")
    return folder / name


def test_means_and_counts_per_day() -> None:
    t = np.array(
        ["2020-01-01T00:00", "2020-01-01T12:00", "2020-01-02T06:00", "2020-01-04T23:00"],
        dtype="datetime64[ns]",
    )
    v = np.array([0.1, 0.3, 0.25, np.nan])
    out = daily_means(t, v, 1)
    assert list(out.columns) == ["date", "sm", "n_obs"]
    assert out["date"].dtype == np.dtype("datetime64[ns]")
    assert list(out["date"]) == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02")]
    np.testing.assert_allclose(out["sm"], [0.2, 0.25])
    assert out["n_obs"].tolist() == [2, 1]


def test_min_obs_per_day_drops_thin_days() -> None:
    t = np.array(["2020-01-01T01:00", "2020-01-01T02:00", "2020-01-02T01:00"], "datetime64[s]")
    out = daily_means(t, np.array([0.1, 0.2, 0.3]), 2)
    assert out["date"].tolist() == [pd.Timestamp("2020-01-01")]
    assert daily_means(t, np.array([0.1, 0.2, 0.3]), 3).empty


def test_utc_midnight_starts_a_new_day() -> None:
    t = np.array(["2020-01-01T23:59:59", "2020-01-02T00:00:00"], "datetime64[s]")
    out = daily_means(t, np.array([0.1, 0.3]), 1)
    assert out["date"].tolist() == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02")]
    assert out["n_obs"].tolist() == [1, 1]


def test_mismatched_shapes_raise() -> None:
    with pytest.raises(ValueError):
        daily_means(np.zeros(2, "datetime64[s]"), np.zeros(3), 1)


def test_build_applies_min_obs_and_reports_days(tmp_path: Path) -> None:
    rows = [(f"2020/01/01 {h:02d}:00", 0.2, "G") for h in range(24)]
    rows += [("2020/01/02 00:00", 0.4, "G"), ("2020/01/02 01:00", 0.5, "D03")]
    rows += [(f"2020/01/03 {h:02d}:00", 0.1 + 0.01 * h, "G") for h in range(0, 24, 2)]
    write_station(tmp_path, rows)
    res = build_insitu(tmp_path, None, InsituConfig(min_obs_per_day=12))
    assert list(res.daily.columns) == list(DAILY_COLUMNS)
    assert list(res.sites.columns) == list(SITE_COLUMNS)
    assert res.daily["date"].tolist() == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-03")]
    assert res.daily["n_obs"].tolist() == [24, 12]
    np.testing.assert_allclose(
        res.daily["sm"], [0.2, np.mean([0.1 + 0.01 * h for h in range(0, 24, 2)])]
    )
    days = res.report.step("ISMN", "days with >= 12 readings")
    assert (days.kept, days.dropped, days.unit) == (2, 1, "days")
    assert res.sites["n_days"].tolist() == [2]


def test_daily_table_dtypes_and_order(tmp_path: Path) -> None:
    write_station(tmp_path, [("2020/01/02 03:00", 0.3, "G")], station="S2")
    write_station(tmp_path, [("2020/01/01 03:00", 0.2, "G")], station="S1")
    res = build_insitu(tmp_path, None, InsituConfig())
    d = res.daily
    assert d["site_id"].tolist() == ["ISMN:NETD:S1", "ISMN:NETD:S2"]
    assert {
        c: str(d[c].dtype) for c in ("lat", "lon", "depth_from", "depth_to", "sm")
    } == dict.fromkeys(("lat", "lon", "depth_from", "depth_to", "sm"), "float64")
    assert d["n_obs"].dtype == np.int64 and d["date"].dtype == np.dtype("datetime64[ns]")
    assert (d["date"] == d["date"].dt.normalize()).all()
