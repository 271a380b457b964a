"""Station metrics of the paper (eqs. 3-6): bias, RMSE, ubRMSE and Pearson R.

All soil-moisture values are volumetric (m3 m-3); bias, RMSE and ubRMSE are in
m3 m-3 too, R is dimensionless.

Definitions (``p`` prediction, ``o`` observation, means over the site-days used):

- bias   = mean(p - o)
- RMSE   = sqrt(mean((p - o)^2))
- ubRMSE = sqrt(mean(((p - mean p) - (o - mean o))^2)) = sqrt(RMSE^2 - bias^2); it is
  computed in the centred form, which is exact in floating point where the
  subtraction form can go slightly negative.
- R      = Pearson correlation of p and o.

Per-site rules: a site is scored only with at least ``min_days`` site-days
where both values are finite (default :data:`MIN_DAYS`); sites with fewer are
left out of the per-site table and counted as ``n_sites_short``. A site whose
observed or predicted series is constant has no defined correlation: its R is
NaN, it is left out of the R mean and median, and counted as ``n_sites_nan_r``.
Pooled metrics use every common site-day (including short sites).

Comparisons are always made on the same site-days: :func:`summarize` first keeps
the rows where the observation, SMAP and every compared prediction are finite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

MIN_DAYS = 10
"""Default minimum number of valid site-days for a site to get per-site metrics."""

METRICS: tuple[str, ...] = ("r", "ubrmse", "rmse", "bias")
"""The four metrics, in the order of the paper's tables."""

SMAP = "SMAP"
"""Row name of the SMAP baseline (the table's ``smap`` column) in every summary."""


@dataclass(frozen=True, slots=True)
class Scores:
    """Metrics of one set of pairs: bias, RMSE, ubRMSE (m3 m-3), Pearson R, n pairs."""

    bias: float
    rmse: float
    ubrmse: float
    r: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _as_float(a: object) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).ravel()


def score(obs: object, pred: object) -> Scores:
    """Bias, RMSE, ubRMSE and R of ``pred`` against ``obs`` over pairs where both are finite.

    With no valid pair every metric is NaN; with fewer than two pairs, or a
    constant series, R is NaN.
    """
    o = _as_float(obs)
    p = _as_float(pred)
    if o.shape != p.shape:
        raise ValueError(f"obs and pred differ in length: {o.size} vs {p.size}")
    keep = np.isfinite(o) & np.isfinite(p)
    o, p = o[keep], p[keep]
    n = int(o.size)
    if n == 0:
        nan = float("nan")
        return Scores(nan, nan, nan, nan, 0)
    e = p - o
    bias = float(e.mean())
    rmse = float(np.sqrt(np.mean(e * e)))
    ubrmse = float(np.sqrt(np.mean((e - bias) ** 2)))
    r = float("nan")
    if n >= 2 and np.ptp(o) > 0 and np.ptp(p) > 0:
        dp = p - p.mean()
        do = o - o.mean()
        denom = float(np.sqrt(np.sum(dp * dp) * np.sum(do * do)))
        if denom > 0:  # can underflow to 0 for spreads near the smallest float
            r = float(np.clip(np.sum(dp * do) / denom, -1.0, 1.0))
    return Scores(bias, rmse, ubrmse, r, n)


def per_site(
    df: pd.DataFrame,
    pred_col: str,
    obs_col: str = "sm",
    *,
    site_col: str = "site_id",
    min_days: int = MIN_DAYS,
) -> pd.DataFrame:
    """Metrics per site: a DataFrame indexed by site with columns n, bias, rmse, ubrmse, r.

    Only pairs where both values are finite count; sites with fewer than
    ``min_days`` such pairs are dropped. R is NaN for a constant series.
    Vectorised over sites (one pass of bincounts, no Python loop per site).
    """
    for col in (site_col, obs_col, pred_col):
        if col not in df.columns:
            raise KeyError(f"column {col!r} not in the table (have {list(df.columns)})")
    p_all = df[pred_col].to_numpy(dtype=np.float64, na_value=np.nan)
    o_all = df[obs_col].to_numpy(dtype=np.float64, na_value=np.nan)
    keep = np.isfinite(p_all) & np.isfinite(o_all)
    p, o = p_all[keep], o_all[keep]
    codes, sites = pd.factorize(df[site_col].to_numpy()[keep], sort=True)
    k = len(sites)
    out_cols = ["n", "bias", "rmse", "ubrmse", "r"]
    if k == 0:
        empty = pd.DataFrame(columns=out_cols)
        empty.index.name = site_col
        return empty.astype({"n": np.int64, **dict.fromkeys(out_cols[1:], np.float64)})
    n = np.bincount(codes, minlength=k).astype(np.float64)
    e = p - o
    bias = np.bincount(codes, e, k) / n
    rmse = np.sqrt(np.bincount(codes, e * e, k) / n)
    de = e - bias[codes]
    ubrmse = np.sqrt(np.bincount(codes, de * de, k) / n)
    dp = p - (np.bincount(codes, p, k) / n)[codes]
    do = o - (np.bincount(codes, o, k) / n)[codes]
    sxy = np.bincount(codes, dp * do, k)
    sxx = np.bincount(codes, dp * dp, k)
    syy = np.bincount(codes, do * do, k)
    # Constancy from the raw values (a centred constant can be a few ulp off zero).
    grouped = pd.DataFrame({"c": codes, "p": p, "o": o}).groupby("c", sort=True)
    spread = grouped.max() - grouped.min()
    varying = (spread["p"].to_numpy() > 0) & (spread["o"].to_numpy() > 0) & (n >= 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(varying, sxy / np.sqrt(sxx * syy), np.nan)
    r = np.clip(r, -1.0, 1.0)
    out = pd.DataFrame(
        {"n": n.astype(np.int64), "bias": bias, "rmse": rmse, "ubrmse": ubrmse, "r": r},
        index=pd.Index(sites, name=site_col),
    )
    return out[out["n"] >= min_days]


def common_rows(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows where every named column is finite (the same site-days)."""
    mask = np.ones(len(df), dtype=bool)
    for col in columns:
        if col not in df.columns:
            raise KeyError(f"column {col!r} not in the table (have {list(df.columns)})")
        mask &= np.isfinite(df[col].to_numpy(dtype=np.float64, na_value=np.nan))
    return mask


def _compared(models: Mapping[str, str], smap_col: str | None) -> dict[str, str]:
    if SMAP in models:
        raise ValueError(f"model name {SMAP!r} is reserved for the SMAP baseline")
    compared = dict(models)
    if smap_col is not None:
        compared[SMAP] = smap_col
    return compared


def summary_row(
    df: pd.DataFrame,
    pred_col: str,
    obs_col: str = "sm",
    *,
    site_col: str = "site_id",
    min_days: int = MIN_DAYS,
) -> dict[str, float | int]:
    """One summary row: pooled metrics, per-site mean and median, and the site counts."""
    pooled = score(df[obs_col], df[pred_col])
    sites = per_site(df, pred_col, obs_col, site_col=site_col, min_days=min_days)
    n_all = int(df[site_col].nunique()) if len(df) else 0
    row: dict[str, float | int] = {
        "n_sites": len(sites),
        "n_days": pooled.n,
        "n_sites_short": n_all - len(sites),
        "n_sites_nan_r": int(sites["r"].isna().sum()),
    }
    for m in METRICS:
        row[m] = getattr(pooled, m)
    for m in METRICS:
        vals = sites[m].dropna()
        row[f"site_mean_{m}"] = float(vals.mean()) if len(vals) else float("nan")
        row[f"site_median_{m}"] = float(vals.median()) if len(vals) else float("nan")
    return row


SUMMARY_COLUMNS: tuple[str, ...] = (
    "model",
    "n_sites",
    "n_days",
    "n_sites_short",
    "n_sites_nan_r",
    *METRICS,
    *(f"site_{stat}_{m}" for m in METRICS for stat in ("mean", "median")),
)


def summarize(
    df: pd.DataFrame,
    models: Mapping[str, str],
    *,
    obs_col: str = "sm",
    smap_col: str | None = "smap",
    site_col: str = "site_id",
    min_days: int = MIN_DAYS,
) -> pd.DataFrame:
    """One row per model plus a ``SMAP`` row, all on exactly the same site-days.

    ``models`` maps a display name to the prediction column. Rows are kept
    where the observation, SMAP and every compared prediction are finite.
    Columns: :data:`SUMMARY_COLUMNS` (pooled metrics under their plain names,
    per-site statistics as ``site_mean_<m>`` / ``site_median_<m>``).
    """
    compared = _compared(models, smap_col)
    sub = df.loc[common_rows(df, [obs_col, *compared.values()])]
    rows = []
    for name, col in compared.items():
        rows.append(
            {"model": name, **summary_row(sub, col, obs_col, site_col=site_col, min_days=min_days)}
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def site_scores(
    df: pd.DataFrame,
    models: Mapping[str, str],
    *,
    obs_col: str = "sm",
    smap_col: str | None = "smap",
    site_col: str = "site_id",
    min_days: int = MIN_DAYS,
    attributes: Sequence[str] = (),
) -> pd.DataFrame:
    """Long per-site table (site, model, n, bias, rmse, ubrmse, r) on the same site-days.

    ``attributes`` are static per-site columns of ``df`` (e.g. texture, sand)
    copied from each site's first row.
    """
    compared = _compared(models, smap_col)
    sub = df.loc[common_rows(df, [obs_col, *compared.values()])]
    parts = []
    for name, col in compared.items():
        s = per_site(sub, col, obs_col, site_col=site_col, min_days=min_days).reset_index()
        s.insert(1, "model", name)
        parts.append(s)
    out = pd.concat(parts, ignore_index=True)
    attrs = [a for a in attributes if a in df.columns and a != site_col]
    if attrs:
        static = sub.groupby(site_col, sort=True)[attrs].first().reset_index()
        out = out.merge(static, on=site_col, how="left")
    return out


def wins_over_smap(sites: pd.DataFrame, model: str, *, site_col: str = "site_id") -> pd.Series:
    """Per site: True where ``model``'s ubRMSE is below SMAP's (both from :func:`site_scores`).

    Indexed by site; sites without both values are left out.
    """
    wide = sites.pivot_table(index=site_col, columns="model", values="ubrmse", aggfunc="first")
    if model not in wide.columns or SMAP not in wide.columns:
        return pd.Series(dtype=bool, name="wins")
    both = wide[[model, SMAP]].dropna()
    return (both[model] < both[SMAP]).rename("wins")
