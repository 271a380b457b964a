"""What was held out, in words, and the CEOS LPV good-practice items of this evaluation.

The Committee on Earth Observation Satellites' Land Product Validation
subgroup (CEOS LPV) soil-moisture good practice (Gruber et al. 2020, Remote
Sens. Environ. 244, 111806; Montzka et al. 2020, CEOS LPV protocol v1.0)
asks a validation to state: the reference data and its quality control, the
collocation in space and time, that every product is compared on the same
space-time points, the metrics (bias, ubRMSE, R; anomaly R), their
confidence intervals with the effective sample size for autocorrelation,
and how the reference sites were chosen. :func:`good_practice_table` lists
each item with what this evaluation does for it, computed from the rows it
scored; :func:`heldout_text` says which sites were held out and how.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.evaluate.metrics import common_rows, score

ANOMALY_WINDOW_DAYS = 35
"""Moving-window length of the short-term anomalies (Gruber et al. 2020 use 35 days)."""


def _count_by(rows: pd.DataFrame, col: str) -> str:
    if col not in rows.columns or rows.empty:
        return ""
    counts = rows.drop_duplicates("site_id")[col].astype(str).value_counts().sort_index()
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def heldout_text(
    rows: pd.DataFrame,
    split_label: str,
    *,
    table_cfg: Any = None,
    n_folds: int | None = None,
) -> str:
    """One paragraph: which sites were scored in ``split_label`` and how they were chosen."""
    sites = sorted(str(s) for s in pd.unique(rows["site_id"]))
    seed = getattr(table_cfg, "split_seed", None)
    fraction = getattr(table_cfg, "validation_fraction", None)
    days = pd.to_datetime(rows["date"]) if len(rows) else pd.Series(dtype="datetime64[ns]")
    period = f"{days.min():%Y-%m-%d} to {days.max():%Y-%m-%d}" if len(days) else "no days"
    if split_label == "validation":
        how = (
            "the validation split: within each USDA texture class the sites were shuffled "
            f"(seed {seed if seed is not None else 'of the table'}) and "
            f"{f'{100 * fraction:.0f} %' if fraction is not None else 'the validation fraction'}"
            " of them (rounded half up, at least one training site kept per class) were held "
            "out of training entirely (no day of theirs was used to train or to stop training)"
        )
    else:
        how = (
            f"{n_folds or 'the'} texture-stratified CV folds: each site belongs to one fold and "
            "is scored by the ensemble trained without its fold; sites of texture classes with "
            "fewer sites than folds were held out of every training set (cv_holdout) and are "
            "scored by every fold (their prediction is the mean over folds)"
        )
    parts = [
        f"{split_label}: {len(sites)} sites, {len(rows)} site-days ({period}), chosen by {how}.",
    ]
    nets = _count_by(rows, "network")
    if nets:
        parts.append(f"Networks: {nets}.")
    tex = _count_by(rows, "texture_name") or _count_by(rows, "texture")
    if tex:
        parts.append(f"Texture classes: {tex}.")
    parts.append(f"Sites: {', '.join(sites[:60])}{' ...' if len(sites) > 60 else ''}.")
    return " ".join(parts)


def anomalies(
    rows: pd.DataFrame, col: str, *, window: int = ANOMALY_WINDOW_DAYS, site_col: str = "site_id"
) -> np.ndarray:
    """Short-term anomalies: value minus its centred ``window``-day moving mean, per site.

    The mean needs at least a third of the window's days present; else NaN.
    """
    out = np.full(len(rows), np.nan)
    if rows.empty:
        return out
    frame = pd.DataFrame(
        {
            "site": rows[site_col].to_numpy(),
            "date": pd.to_datetime(rows["date"]).to_numpy(),
            "v": rows[col].to_numpy(np.float64),
            "pos": np.arange(len(rows)),
        }
    )
    for _, g in frame.groupby("site", sort=False):
        s = pd.Series(g["v"].to_numpy(), index=pd.DatetimeIndex(g["date"].to_numpy()))
        s = s.sort_index()
        mean = s.rolling(f"{window}D", center=True, min_periods=max(3, window // 3)).mean()
        anom = (s - mean).reindex(pd.DatetimeIndex(g["date"].to_numpy()))
        out[g["pos"].to_numpy()] = anom.to_numpy()
    return out


def anomaly_r(rows: pd.DataFrame, models: Mapping[str, str]) -> dict[str, float]:
    """Pooled R of the short-term anomalies of each model (and any column) against ``sm``."""
    obs = anomalies(rows, "sm")
    return {name: score(obs, anomalies(rows, col)).r for name, col in models.items()}


def good_practice_table(
    rows: pd.DataFrame,
    models: Mapping[str, str],
    *,
    split_label: str,
    min_days: int,
    qc_rules: Sequence[str] = (),
) -> pd.DataFrame:
    """The CEOS LPV good-practice items with what this evaluation did for each (one row each)."""
    cols = {**models, "SMAP": "smap"}
    common = rows.loc[common_rows(rows, ["sm", *cols.values()])]
    anom = anomaly_r(common, cols) if len(common) else {}
    anom_txt = ", ".join(f"{k} {v:.3f}" for k, v in anom.items() if np.isfinite(v)) or "too few"
    networks = _count_by(common, "network") or "unknown"
    items = [
        (
            "Reference data and its quality control",
            f"in-situ daily means (networks: {networks}) after the QC rules of 'smdown insitu' "
            "(pipeline/insitu: flags, CONUS box, wetlands, sensor depth; counts per rule in its "
            "report)" + (f" ({'; '.join(qc_rules)})" if qc_rules else ""),
        ),
        (
            "Spatial collocation",
            "each station is compared with its nearest 90 m pixel and SMAP's 9 km cell over "
            "it (point-to-pixel: representativeness error is part of every metric)",
        ),
        (
            "Temporal collocation",
            "daily: the in-situ daily mean beside the same UTC day's prediction and SMAP retrieval",
        ),
        (
            "Same space-time points for every product",
            f"yes: {len(common)} site-days where in-situ, SMAP and every model are finite",
        ),
        (
            "Metrics",
            "bias, RMSE, ubRMSE, Pearson R (pooled and per site, sites with at least "
            f"{min_days} days); short-term anomaly R ({ANOMALY_WINDOW_DAYS}-day moving mean "
            f"removed): {anom_txt}",
        ),
        (
            "Confidence intervals",
            "95 %: analytical (t for bias, chi-square for ubRMSE, Fisher z for R) with the "
            "effective sample size n (1 - rho1) / (1 + rho1) for autocorrelation, and a "
            "bootstrap over sites (1000 draws) for the pooled metrics",
        ),
        (
            "Independence of the reference sites",
            "site-disjoint: no day of a scored site was used in training or early stopping "
            f"({split_label} split, see 'What was held out')",
        ),
        (
            "Reporting of the sample",
            f"{common['site_id'].nunique() if len(common) else 0} sites; per-site tables and "
            "per-class (texture, land cover, Koeppen) tables below",
        ),
        (
            "Not done here",
            "triple collocation (needs a third independent product) and the comparison over "
            "several years and seasons (the demo world covers one period)",
        ),
    ]
    return pd.DataFrame(items, columns=["good-practice item", f"this evaluation ({split_label})"])
