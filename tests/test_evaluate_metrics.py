"""Station metrics cross-checked against scipy.stats and the formulas written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pipeline.evaluate.metrics import (
    SMAP,
    common_rows,
    per_site,
    score,
    site_scores,
    summarize,
    wins_over_smap,
)


def _by_hand(obs: list[float], pred: list[float]) -> dict[str, float]:
    """The paper's eqs. 3-6 written out with plain Python loops (independent of numpy)."""
    n = len(obs)
    bias = sum(p - o for o, p in zip(obs, pred, strict=True)) / n
    rmse = math.sqrt(sum((p - o) ** 2 for o, p in zip(obs, pred, strict=True)) / n)
    ubrmse = math.sqrt(rmse**2 - bias**2)
    return {"bias": bias, "rmse": rmse, "ubrmse": ubrmse}


def _table(seed: int = 0, n_sites: int = 12, n_days: int = 40) -> pd.DataFrame:
    """A small table: sm truth, smap = truth + coarse noise, 'good' = truth + small noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sites):
        base = rng.uniform(0.1, 0.35)
        sm = base + 0.05 * np.sin(np.arange(n_days) / 5 + s) + rng.normal(0, 0.01, n_days)
        rows.append(
            pd.DataFrame(
                {
                    "site_id": f"S{s:02d}",
                    "date": pd.date_range("2020-06-01", periods=n_days),
                    "sm": sm,
                    "smap": sm + rng.normal(0.03, 0.04, n_days),
                    "good": sm + rng.normal(0.0, 0.01, n_days),
                    "texture": 1 + s % 3,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_score_matches_scipy_and_hand_formulas() -> None:
    rng = np.random.default_rng(1)
    obs = rng.uniform(0.05, 0.45, 200)
    pred = obs + rng.normal(0.02, 0.03, 200)
    s = score(obs, pred)
    hand = _by_hand(obs.tolist(), pred.tolist())
    assert s.n == 200
    assert s.bias == pytest.approx(hand["bias"], rel=1e-10)
    assert s.rmse == pytest.approx(hand["rmse"], rel=1e-10)
    assert s.ubrmse == pytest.approx(hand["ubrmse"], rel=1e-8)
    assert s.r == pytest.approx(stats.pearsonr(obs, pred).statistic, rel=1e-10)


def test_score_ignores_nonfinite_pairs_and_handles_degenerate_input() -> None:
    obs = np.array([0.1, 0.2, np.nan, 0.3, 0.4])
    pred = np.array([0.12, np.inf, 0.5, 0.33, 0.41])
    s = score(obs, pred)
    keep = [0, 3, 4]
    assert s.n == 3
    assert s.r == pytest.approx(stats.pearsonr(obs[keep], pred[keep]).statistic)
    empty = score([np.nan], [0.2])
    assert empty.n == 0 and math.isnan(empty.rmse) and math.isnan(empty.r)
    const = score([0.2, 0.2, 0.2], [0.1, 0.2, 0.3])
    assert math.isnan(const.r) and const.rmse == pytest.approx(math.sqrt(0.02 / 3))
    with pytest.raises(ValueError, match="differ in length"):
        score([0.1, 0.2], [0.1])


def test_per_site_matches_scipy_site_by_site() -> None:
    df = _table()
    sites = per_site(df, "smap", min_days=10)
    assert len(sites) == 12
    for sid, grp in df.groupby("site_id"):
        row = sites.loc[sid]
        hand = _by_hand(grp["sm"].tolist(), grp["smap"].tolist())
        assert row["n"] == len(grp)
        assert row["bias"] == pytest.approx(hand["bias"], rel=1e-9)
        assert row["rmse"] == pytest.approx(hand["rmse"], rel=1e-9)
        assert row["ubrmse"] == pytest.approx(hand["ubrmse"], rel=1e-7)
        assert row["r"] == pytest.approx(stats.pearsonr(grp["sm"], grp["smap"]).statistic)


def test_per_site_min_days_and_constant_series() -> None:
    df = _table(n_sites=3, n_days=12)
    df.loc[df["site_id"] == "S00", "good"] = 0.25  # constant prediction: R undefined
    df.loc[(df["site_id"] == "S01") & (df.index % 12 < 5), "good"] = np.nan  # 7 valid days
    sites = per_site(df, "good", min_days=10)
    assert list(sites.index) == ["S00", "S02"]
    assert math.isnan(sites.loc["S00", "r"]) and np.isfinite(sites.loc["S00", "ubrmse"])
    assert sites.loc["S02", "n"] == 12
    assert list(per_site(df, "good", min_days=5).index) == ["S00", "S01", "S02"]
    summary = summarize(df, {"good": "good"}, min_days=10).set_index("model")
    assert summary.loc["good", "n_sites"] == 2
    assert summary.loc["good", "n_sites_short"] == 1
    assert summary.loc["good", "n_sites_nan_r"] == 1
    # The NaN R is excluded from the site mean, not propagated.
    assert summary.loc["good", "site_mean_r"] == pytest.approx(sites.loc["S02", "r"])


def test_pooled_differs_from_per_site_and_both_are_right() -> None:
    df = _table(seed=3)
    summary = summarize(df, {"good": "good"}).set_index("model")
    pooled = stats.pearsonr(df["sm"], df["good"]).statistic
    site_r = [stats.pearsonr(g["sm"], g["good"]).statistic for _, g in df.groupby("site_id")]
    assert summary.loc["good", "r"] == pytest.approx(pooled)
    assert summary.loc["good", "site_mean_r"] == pytest.approx(np.mean(site_r))
    assert summary.loc["good", "site_median_r"] == pytest.approx(np.median(site_r))
    # Pooled R includes between-site variance, so it exceeds the mean per-site R here.
    assert summary.loc["good", "r"] > summary.loc["good", "site_mean_r"]
    assert summary.loc["good", "n_days"] == len(df)


def test_smap_is_scored_on_the_same_site_days() -> None:
    df = _table(seed=4)
    df["gappy"] = df["good"]
    df.loc[df.index % 3 == 0, "gappy"] = np.nan
    df.loc[df.index % 7 == 0, "smap"] = np.nan
    summary = summarize(df, {"good": "good", "gappy": "gappy"}).set_index("model")
    same = df[np.isfinite(df["gappy"]) & np.isfinite(df["smap"])]
    assert set(summary["n_days"]) == {len(same)}
    assert summary.loc[SMAP, "rmse"] == pytest.approx(score(same["sm"], same["smap"]).rmse)
    assert summary.loc["good", "rmse"] == pytest.approx(score(same["sm"], same["good"]).rmse)
    # The full-series SMAP score differs: the restriction matters.
    assert score(df["sm"], df["smap"]).n != len(same)
    assert common_rows(df, ["sm", "smap", "gappy"]).sum() == len(same)
    with pytest.raises(ValueError, match="reserved"):
        summarize(df, {SMAP: "good"})


def test_site_scores_and_wins() -> None:
    df = _table(seed=5)
    sites = site_scores(df, {"good": "good"}, attributes=("texture",))
    assert set(sites["model"]) == {"good", SMAP}
    assert "texture" in sites.columns and len(sites) == 24
    wins = wins_over_smap(sites, "good")
    assert len(wins) == 12 and wins.all()  # small noise beats SMAP's coarse error
    assert not wins_over_smap(sites.replace({"model": {"good": SMAP, SMAP: "good"}}), "good").any()


finite = st.floats(min_value=0.0, max_value=0.6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(finite, finite), min_size=2, max_size=60),
    shift=st.floats(min_value=-0.3, max_value=0.3, allow_nan=False),
)
def test_property_decomposition_and_shift_invariance(
    pairs: list[tuple[float, float]], shift: float
) -> None:
    obs = np.array([p[0] for p in pairs])
    pred = np.array([p[1] for p in pairs])
    s = score(obs, pred)
    assert s.ubrmse**2 + s.bias**2 == pytest.approx(s.rmse**2, rel=1e-9, abs=1e-15)
    shifted = score(obs, pred + shift)
    assert shifted.ubrmse == pytest.approx(s.ubrmse, rel=1e-6, abs=1e-9)
    assert shifted.bias == pytest.approx(s.bias + shift, abs=1e-9)
    assert s.ubrmse <= s.rmse + 1e-12
    if not math.isnan(s.r):
        assert -1.0 <= s.r <= 1.0
