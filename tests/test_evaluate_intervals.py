"""Confidence intervals of bias, ubRMSE and R; the held-out text and good-practice items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.evaluate import intervals as iv
from pipeline.evaluate.evaluation import Predictor, run_evaluation
from pipeline.evaluate.metrics import score
from pipeline.evaluate.practice import anomalies, good_practice_table, heldout_text
from pipeline.evaluate.testing import LinearEnsemble, station_table


def test_r_interval_matches_scipy_pearsonr() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=80)
    y = 0.6 * x + rng.normal(size=80)
    res = stats.pearsonr(x, y)
    want = res.confidence_interval(0.95)
    got = iv.r_ci(float(res.statistic), len(x))
    assert got == pytest.approx((want.low, want.high), abs=1e-9)


def test_bias_interval_matches_scipy_t_interval() -> None:
    rng = np.random.default_rng(2)
    e = rng.normal(0.01, 0.03, 50)
    want = stats.t.interval(0.95, len(e) - 1, loc=e.mean(), scale=stats.sem(e))
    got = iv.bias_ci(float(e.std(ddof=1)), float(e.mean()), len(e))
    assert got == pytest.approx(want, abs=1e-12)


def test_ubrmse_interval_covers_the_true_sd_95_percent_of_the_time() -> None:
    """Independent check by simulation: the chi-square interval of an iid error sd."""
    rng = np.random.default_rng(3)
    sigma, n, trials = 0.04, 40, 4000
    e = rng.normal(0.02, sigma, (trials, n))
    ub = np.sqrt(((e - e.mean(axis=1, keepdims=True)) ** 2).mean(axis=1))
    # ubRMSE uses ddof=0; the chi-square interval is for the ddof=1 sd, so scale it.
    hits = 0
    for u in ub:
        lo, hi = iv.ubrmse_ci(float(u * np.sqrt(n / (n - 1))), n)
        hits += lo <= sigma <= hi
    assert abs(hits / trials - 0.95) < 0.015


def test_effective_n_of_an_ar1_series() -> None:
    rng = np.random.default_rng(4)
    n, phi = 3000, 0.8
    v = np.zeros(n)
    for i in range(1, n):
        v[i] = phi * v[i - 1] + rng.normal()
    rho = iv.lag1_autocorrelation(v, np.arange(n))
    assert rho == pytest.approx(phi, abs=0.03)
    assert iv.effective_n(n, rho) == pytest.approx(n * (1 - phi) / (1 + phi), rel=0.1)
    # A shuffled order changes nothing; sampled every other day, rho is phi^2.
    order = rng.permutation(n)
    assert iv.lag1_autocorrelation(v[order], np.arange(n)[order]) == pytest.approx(rho)
    every2 = np.arange(0, n, 2)
    assert iv.lag1_autocorrelation(v[every2], every2) == pytest.approx(phi**2, abs=0.05)
    assert iv.effective_n(100, float("nan")) == 100
    assert iv.effective_n(10, 0.99) == iv.MIN_N_EFF


def test_bootstrap_by_site_equals_a_naive_resampling_loop() -> None:
    df = station_table(n_sites=12, n_days=30, seed=5)
    df["pred"] = df["smap"] + 0.01
    sites, sums = iv.site_sums(df, "pred")
    # Pooled metrics from the sums are the plain ones.
    pooled = iv.metrics_from_sums(sums.sum(axis=0))
    direct = score(df["sm"], df["pred"])
    assert float(pooled["r"]) == pytest.approx(direct.r, abs=1e-12)
    assert float(pooled["ubrmse"]) == pytest.approx(direct.ubrmse, abs=1e-12)
    assert float(pooled["bias"]) == pytest.approx(direct.bias, abs=1e-12)
    got = iv.bootstrap_by_site(sums, n_boot=200, seed=9)
    rng = np.random.default_rng(9)
    draws = rng.integers(0, len(sites), size=(200, len(sites)))
    by_site = {s: g for s, g in df.groupby("site_id", sort=True)}
    vals: dict[str, list[float]] = {"bias": [], "ubrmse": [], "r": []}
    for d in draws:
        frame = pd.concat([by_site[sites[i]] for i in d])
        s = score(frame["sm"], frame["pred"])
        for m in vals:
            vals[m].append(getattr(s, m))
    for m, v in vals.items():
        want = np.percentile(v, [2.5, 97.5])
        assert got[m] == pytest.approx(tuple(want), abs=1e-10), m


def test_interval_table_brackets_the_estimates_and_uses_the_same_site_days() -> None:
    df = station_table(n_sites=16, n_days=40, seed=6)
    df["pred"] = 0.5 * df["smap"] + 0.5 * df["sm"]
    df.loc[df.index[:25], "pred"] = np.nan  # SMAP's row must lose these days too
    t = iv.interval_table(df, {"M": "pred"}, n_boot=200)
    assert list(t["model"]) == ["M", "SMAP"]
    assert (t["n_days"] == len(df) - 25).all()
    for m in ("bias", "ubrmse", "r"):
        assert (t[f"{m}_lo"] <= t[m]).all() and (t[m] <= t[f"{m}_hi"]).all()
        assert (t[f"boot_{m}_lo"] < t[f"boot_{m}_hi"]).all()
    assert (t["n_eff"] <= t["n_days"]).all()
    m_row = t.set_index("model").loc["M"]
    assert m_row["r"] > t.set_index("model").loc["SMAP", "r_hi"]


def test_anomalies_remove_the_moving_mean() -> None:
    dates = pd.date_range("2020-01-01", periods=100)
    rows = pd.DataFrame({"site_id": "A", "date": dates, "sm": 0.2 + 0.001 * np.arange(100)})
    a = anomalies(rows, "sm")
    assert np.nanmax(np.abs(a[20:80])) < 1e-12  # a linear trend has no anomaly


def test_evaluation_writes_intervals_heldout_and_good_practice(tmp_path: Path) -> None:
    df = station_table(n_sites=16, n_days=40, seed=7)
    ens = LinearEnsemble.skilful()

    def loader(_: Path) -> Predictor:
        return ens

    res = run_evaluation(
        df, {"Lin": tmp_path}, out_dir=tmp_path / "ev", loader=loader, make_figures=False
    )
    t = res.tables["validation_intervals"]
    assert set(t["model"]) == {"Lin", "SMAP"}
    assert t["r_lo"].notna().all() and t["boot_r_hi"].notna().all()
    text = str(res.tables["validation_held_out"].iloc[0, 0])
    val_sites = sorted(df.loc[df["split"] == "validation", "site_id"].unique())
    assert f"{len(val_sites)} sites" in text and all(s in text for s in val_sites)
    gp = res.tables["validation_good_practice"]
    assert "Confidence intervals" in set(gp.iloc[:, 0])
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "What was held out" in html and "CEOS LPV" in html


def test_heldout_text_names_the_seed_and_fraction() -> None:
    from pipeline.config import TableConfig

    df = station_table(n_sites=8, n_days=12)
    text = heldout_text(df[df["split"] == "validation"], "validation", table_cfg=TableConfig())
    assert "seed 42" in text and "20 %" in text
    gp = good_practice_table(df, {"X": "smap"}, split_label="validation", min_days=10)
    assert len(gp) >= 8
