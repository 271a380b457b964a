"""Confidence intervals of bias, ubRMSE and R, as the soil-moisture validation field reports them.

Two kinds, both at level ``1 - alpha`` (default 95 %):

Analytical, per site and pooled (the formulas of pytesmo's
``pytesmo.metrics.confidence_intervals``, which take them from Gilleland
(2010), NCAR/TN-479+STR, doi:10.5065/D6WD3XJM):

- bias:   ``bias +- t(1 - alpha/2, n - 1) * sd(p - o) / sqrt(n)`` (Student t);
- ubRMSE: ``[ubRMSE * sqrt((n - 1) / chi2(1 - alpha/2, n - 1)),
  ubRMSE * sqrt((n - 1) / chi2(alpha/2, n - 1))]`` (chi-square of the
  residual variance);
- R:      ``tanh(atanh(R) -+ z(1 - alpha/2) / sqrt(n - 3))`` (Fisher z).

Daily soil moisture is strongly autocorrelated, so ``n`` is the *effective*
sample size of Gruber et al. (2020), Remote Sens. Environ. 244, 111806 (the
CEOS LPV soil-moisture good-practice paper), section 3.3:
``n_eff = n (1 - rho) / (1 + rho)`` with ``rho`` the autocorrelation
between successive samples, the mean of the in-situ and the predicted
series' (:func:`lag1_autocorrelation`: gaps within the site's interquartile
range of gaps; ``rho`` is clipped to [0, 1)). A site's
``n_eff`` is never above its ``n`` nor below 4 (so ``n - 3 >= 1``). The pooled
analytical interval uses the sum of the sites' ``n_eff`` and the pooled
metric; it treats sites as independent of one another.

Bootstrap by site (the pooled metrics): the scored sites are drawn with
replacement ``n_boot`` times (seeded) and the pooled metric recomputed from
the drawn sites' days; the interval is the ``alpha/2`` and ``1 - alpha/2``
percentiles. Sites, not days, are the independent unit here, so this is the
interval that also covers the between-site spread. It is computed from
per-site sufficient sums (one matrix product per metric), so 1000 draws of a
few hundred sites take milliseconds.

Every interval is computed on the same site-days for every model and SMAP
(``metrics.common_rows``), like every other table of the evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.evaluate.metrics import MIN_DAYS, SMAP, common_rows, score

ALPHA = 0.05
N_BOOT = 1000
MIN_N_EFF = 4.0
"""Floor of a site's effective sample size (Fisher z needs n - 3 > 0)."""

INTERVAL_COLUMNS: tuple[str, ...] = (
    "model",
    "n_sites",
    "n_days",
    "n_eff",
    "bias",
    "bias_lo",
    "bias_hi",
    "ubrmse",
    "ubrmse_lo",
    "ubrmse_hi",
    "r",
    "r_lo",
    "r_hi",
    "boot_bias_lo",
    "boot_bias_hi",
    "boot_ubrmse_lo",
    "boot_ubrmse_hi",
    "boot_r_lo",
    "boot_r_hi",
)


def bias_ci(e_sd: float, bias: float, n: float, alpha: float = ALPHA) -> tuple[float, float]:
    """Student-t interval of the mean error ``bias`` with error sd ``e_sd`` (ddof=1) and ``n``."""
    if not (n > 1 and np.isfinite(bias) and np.isfinite(e_sd)):
        return float("nan"), float("nan")
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * e_sd / np.sqrt(n)
    return bias - half, bias + half


def ubrmse_ci(ubrmse: float, n: float, alpha: float = ALPHA) -> tuple[float, float]:
    """Chi-square interval of ``ubrmse`` estimated from ``n`` (effective) pairs."""
    if not (n > 1 and np.isfinite(ubrmse)):
        return float("nan"), float("nan")
    df = n - 1
    lo = ubrmse * np.sqrt(df / float(stats.chi2.ppf(1 - alpha / 2, df)))
    hi = ubrmse * np.sqrt(df / float(stats.chi2.ppf(alpha / 2, df)))
    return float(lo), float(hi)


def r_ci(r: float, n: float, alpha: float = ALPHA) -> tuple[float, float]:
    """Fisher-z interval of a Pearson ``r`` from ``n`` (effective) pairs."""
    if not (n > 3 and np.isfinite(r)):
        return float("nan"), float("nan")
    z = np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12))
    half = float(stats.norm.ppf(1 - alpha / 2)) / np.sqrt(n - 3)
    return float(np.tanh(z - half)), float(np.tanh(z + half))


def lag1_autocorrelation(values: np.ndarray, days: np.ndarray) -> float:
    """Autocorrelation between successive samples of one site's series (NaN if < 3 pairs).

    The series is sorted by day; pairs of successive samples count when their
    gap lies within the interquartile range of the site's gaps (so a site
    sampled every 2-3 days, as SMAP revisits, is judged at its own spacing
    and long outages are left out), as in Gruber et al. (2020).
    """
    v = np.asarray(values, np.float64)
    d = np.asarray(days, np.int64)
    order = np.argsort(d, kind="stable")
    v, d = v[order], d[order]
    gaps = np.diff(d)
    if gaps.size < 3:
        return float("nan")
    lo, hi = np.percentile(gaps, [25, 75])
    step = np.flatnonzero((gaps >= lo) & (gaps <= hi) & (gaps > 0))
    if step.size < 3:
        return float("nan")
    a, b = v[step], v[step + 1]
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def effective_n(n: int, rho: float) -> float:
    """``n (1 - rho) / (1 + rho)`` with ``rho`` clipped to [0, 0.999], kept in [MIN_N_EFF, n]."""
    if n <= 0:
        return 0.0
    rho = 0.0 if not np.isfinite(rho) else float(np.clip(rho, 0.0, 0.999))
    return float(min(n, max(MIN_N_EFF, n * (1 - rho) / (1 + rho))))


def _day_numbers(dates: pd.Series) -> np.ndarray:
    return (pd.to_datetime(dates).to_numpy("datetime64[D]")).astype(np.int64)


def site_intervals(
    df: pd.DataFrame,
    pred_col: str,
    obs_col: str = "sm",
    *,
    site_col: str = "site_id",
    date_col: str = "date",
    min_days: int = MIN_DAYS,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Per site: n, lag-1 rho, n_eff, and bias / ubRMSE / R with their analytical intervals."""
    rows = []
    sub = df.loc[common_rows(df, [obs_col, pred_col])]
    days = _day_numbers(sub[date_col]) if len(sub) else np.zeros(0, np.int64)
    sub = sub.assign(_day=days)
    for site, g in sub.groupby(site_col, sort=True):
        if len(g) < min_days:
            continue
        o = g[obs_col].to_numpy(np.float64)
        p = g[pred_col].to_numpy(np.float64)
        d = g["_day"].to_numpy()
        s = score(o, p)
        rhos = [lag1_autocorrelation(o, d), lag1_autocorrelation(p, d)]
        finite = [x for x in rhos if np.isfinite(x)]
        rho = float(np.mean(finite)) if finite else float("nan")
        ne = effective_n(s.n, rho)
        e = p - o
        e_sd = float(e.std(ddof=1)) if s.n > 1 else float("nan")
        rows.append(
            {
                site_col: site,
                "n": s.n,
                "rho1": rho,
                "n_eff": ne,
                "bias": s.bias,
                **dict(zip(("bias_lo", "bias_hi"), bias_ci(e_sd, s.bias, ne, alpha), strict=True)),
                "ubrmse": s.ubrmse,
                **dict(
                    zip(("ubrmse_lo", "ubrmse_hi"), ubrmse_ci(s.ubrmse, ne, alpha), strict=True)
                ),
                "r": s.r,
                **dict(zip(("r_lo", "r_hi"), r_ci(s.r, ne, alpha), strict=True)),
            }
        )
    cols = [site_col, "n", "rho1", "n_eff", "bias", "bias_lo", "bias_hi", "ubrmse"]
    cols += ["ubrmse_lo", "ubrmse_hi", "r", "r_lo", "r_hi"]
    return pd.DataFrame(rows, columns=cols)


SUMS = ("n", "e", "ee", "p", "o", "pp", "oo", "po")


def site_sums(
    df: pd.DataFrame, pred_col: str, obs_col: str = "sm", *, site_col: str = "site_id"
) -> tuple[np.ndarray, np.ndarray]:
    """(sites, (k, 8) sufficient sums per site: n, sum e, e^2, p, o, p^2, o^2, p*o; e = p - o)."""
    sub = df.loc[common_rows(df, [obs_col, pred_col])]
    p = sub[pred_col].to_numpy(np.float64)
    o = sub[obs_col].to_numpy(np.float64)
    codes, sites = pd.factorize(sub[site_col].to_numpy(), sort=True)
    k = len(sites)
    e = p - o
    cols = [np.ones_like(p), e, e * e, p, o, p * p, o * o, p * o]
    sums = np.stack([np.bincount(codes, c, minlength=k) for c in cols], axis=1)
    return np.asarray(sites), sums


def metrics_from_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Pooled bias, ubRMSE and R from (..., 8) summed sufficient statistics (last axis)."""
    n, se, see, sp, so, spp, soo, spo = np.moveaxis(np.asarray(sums, np.float64), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        bias = se / n
        ubrmse = np.sqrt(np.maximum(see / n - bias * bias, 0.0))
        cov = spo - sp * so / n
        vp = spp - sp * sp / n
        vo = soo - so * so / n
        r = np.clip(cov / np.sqrt(vp * vo), -1.0, 1.0)
    return {"bias": bias, "ubrmse": ubrmse, "r": r}


def bootstrap_by_site(
    sums: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0, alpha: float = ALPHA
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the pooled metrics, resampling sites (rows of ``sums``)."""
    k = sums.shape[0]
    if k < 2:
        nan = (float("nan"), float("nan"))
        return {"bias": nan, "ubrmse": nan, "r": nan}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(n_boot, k))
    counts = np.zeros((n_boot, k))
    np.add.at(counts, (np.repeat(np.arange(n_boot), k), draws.ravel()), 1.0)
    boot = metrics_from_sums(counts @ sums)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    out = {}
    for m, v in boot.items():
        lo, hi = np.nanpercentile(v, q) if np.isfinite(v).any() else (np.nan, np.nan)
        out[m] = (float(lo), float(hi))
    return out


def interval_table(
    df: pd.DataFrame,
    models: Mapping[str, str],
    *,
    obs_col: str = "sm",
    smap_col: str | None = "smap",
    site_col: str = "site_id",
    date_col: str = "date",
    min_days: int = MIN_DAYS,
    alpha: float = ALPHA,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """Pooled bias / ubRMSE / R of every model and SMAP, each with both 95 % intervals.

    Same site-days for every row. Columns :data:`INTERVAL_COLUMNS`: the
    analytical interval (``*_lo``/``*_hi``, effective n = sum of the scored
    sites' ``n_eff``) and the bootstrap-by-site one (``boot_*``). Only sites
    with ``min_days`` common days count, in both.
    """
    compared = dict(models)
    if smap_col is not None:
        compared[SMAP] = smap_col
    sub = df.loc[common_rows(df, [obs_col, *compared.values()])]
    counts = sub.groupby(site_col)[obs_col].transform("size")
    sub = sub.loc[counts.to_numpy() >= min_days]
    rows = []
    for name, col in compared.items():
        sites = site_intervals(
            sub, col, obs_col, site_col=site_col, date_col=date_col, min_days=min_days, alpha=alpha
        )
        pooled = score(sub[obs_col], sub[col])
        n_eff = float(sites["n_eff"].sum()) if len(sites) else 0.0
        e = (sub[col] - sub[obs_col]).to_numpy(np.float64)
        e_sd = float(e.std(ddof=1)) if e.size > 1 else float("nan")
        _, sums = site_sums(sub, col, obs_col, site_col=site_col)
        boot = bootstrap_by_site(sums, n_boot=n_boot, seed=seed, alpha=alpha)
        b_lo, b_hi = bias_ci(e_sd, pooled.bias, n_eff, alpha)
        u_lo, u_hi = ubrmse_ci(pooled.ubrmse, n_eff, alpha)
        r_lo, r_hi = r_ci(pooled.r, n_eff, alpha)
        rows.append(
            {
                "model": name,
                "n_sites": len(sites),
                "n_days": pooled.n,
                "n_eff": n_eff,
                "bias": pooled.bias,
                "bias_lo": b_lo,
                "bias_hi": b_hi,
                "ubrmse": pooled.ubrmse,
                "ubrmse_lo": u_lo,
                "ubrmse_hi": u_hi,
                "r": pooled.r,
                "r_lo": r_lo,
                "r_hi": r_hi,
                "boot_bias_lo": boot["bias"][0],
                "boot_bias_hi": boot["bias"][1],
                "boot_ubrmse_lo": boot["ubrmse"][0],
                "boot_ubrmse_hi": boot["ubrmse"][1],
                "boot_r_lo": boot["r"][0],
                "boot_r_hi": boot["r"][1],
            }
        )
    return pd.DataFrame(rows, columns=list(INTERVAL_COLUMNS))
