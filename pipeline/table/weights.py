"""Balanced sample weights w_i = n_samples / (n_classes * n_i) (paper 3.1).

Seven weight variables (``models.features.WEIGHT_VARIABLES``): the categorical
references texture, koppen and landcover use their integer codes as classes;
the continuous clay (%), sand (%) and pH are binned first; ``none`` is all
ones. Binning uses ``np.digitize(x, edges, right=False)``: class i holds
``edges[i-1] <= x < edges[i]``, class 0 is ``x < edges[0]`` and class
``len(edges)`` is ``x >= edges[-1]``. The edges come from ``[table]
clay_bins``, ``sand_bins``, ``ph_bins``.

The weights are *fitted* on the training rows (``split == "train"``): there the
weights of each variable sum to the number of training rows and every class
carries the same total weight. Validation rows get, by ``[table]
validation_weights``, either the weight of their class as counted on the
training rows ("class", the default, so a weighted validation loss measures
the same objective as the training loss; a class absent from training gets
1.0) or 1.0 ("one").

Weights are per *row* (site-day), as in the paper; for a CV fold, refit them
on that fold's training rows with ``weight_columns(table, cfg, fit=mask)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.features import WEIGHT_VARIABLES
from pipeline.config import TableConfig
from pipeline.errors import TableError

CONTINUOUS_WEIGHT_VARIABLES: tuple[str, ...] = ("clay", "sand", "ph")


def weight_column(variable: str) -> str:
    """Column name of the weights of ``variable`` (``w_texture`` ...)."""
    return f"w_{variable}"


WEIGHT_COLUMNS: tuple[str, ...] = tuple(weight_column(v) for v in WEIGHT_VARIABLES)


def bin_values(values: Any, edges: Sequence[float]) -> np.ndarray:
    """Class index (int64) of each value: ``np.digitize(values, edges, right=False)``.

    NaN is refused (rows with missing inputs are dropped before weighting).
    """
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size == 0 or np.any(np.diff(e) <= 0):
        raise TableError(f"bin edges must be non-empty and strictly increasing, got {list(e)}")
    x = np.asarray(values, dtype=np.float64)
    if np.isnan(x).any():
        raise TableError("cannot bin NaN values; drop rows with missing inputs first")
    return np.digitize(x, e, right=False).astype(np.int64)


def balanced_weights(classes: Any) -> np.ndarray:
    """w_i = n_samples / (n_classes * n_i) for each sample's class (float64).

    ``n_classes`` counts the distinct classes present. The weights sum to
    ``n_samples`` and every class receives the same total, n / n_classes.
    """
    c = pd.Series(np.asarray(classes).ravel())
    if c.isna().any():
        raise TableError("class labels contain missing values")
    n = len(c)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    codes, uniques = pd.factorize(c, sort=True)
    counts = np.bincount(codes, minlength=len(uniques)).astype(np.float64)
    return n / (len(uniques) * counts[codes])


def weight_classes(df: pd.DataFrame, variable: str, cfg: TableConfig) -> np.ndarray:
    """The class of every row for weight variable ``variable`` (int64)."""
    if variable == "none":
        return np.zeros(len(df), dtype=np.int64)
    if variable not in df.columns:
        raise TableError(f"table lacks column {variable!r} needed for weights")
    if variable in CONTINUOUS_WEIGHT_VARIABLES:
        edges = {"clay": cfg.clay_bins, "sand": cfg.sand_bins, "ph": cfg.ph_bins}[variable]
        return bin_values(df[variable].to_numpy(dtype=np.float64), edges)
    col = df[variable]
    if col.isna().any():
        raise TableError(f"column {variable!r} has missing classes; drop those rows first")
    return col.to_numpy().astype(np.int64)


def weight_columns(
    df: pd.DataFrame,
    cfg: TableConfig,
    *,
    fit: np.ndarray | pd.Series | None = None,
) -> pd.DataFrame:
    """The seven ``w_*`` columns (float64) for the rows of ``df``, same index.

    ``fit`` is a boolean row mask of the rows the class counts come from;
    by default the rows with ``split == "train"`` (all rows when there is no
    ``split`` column). Rows outside ``fit`` get their class weight as seen
    on the fitted rows (``validation_weights = "class"``) or 1.0 ("one").
    """
    fit_mask: np.ndarray
    if fit is None:
        fit_mask = (
            (df["split"] == "train").to_numpy()
            if "split" in df.columns
            else np.ones(len(df), dtype=bool)
        )
    else:
        fit_mask = np.asarray(fit, dtype=bool)
        if fit_mask.shape != (len(df),):
            raise TableError(f"fit mask has shape {fit_mask.shape}, expected ({len(df)},)")
    out = pd.DataFrame(index=df.index)
    for variable in WEIGHT_VARIABLES:
        classes = weight_classes(df, variable, cfg)
        w = np.ones(len(df), dtype=np.float64)
        if fit_mask.any():
            fitted = classes[fit_mask]
            w[fit_mask] = balanced_weights(fitted)
            if cfg.validation_weights == "class":
                uniq, counts = np.unique(fitted, return_counts=True)
                per_class = len(fitted) / (len(uniq) * counts.astype(np.float64))
                rest = ~fit_mask
                pos = np.searchsorted(uniq, classes[rest])
                pos_c = np.clip(pos, 0, len(uniq) - 1)
                seen = uniq[pos_c] == classes[rest]
                w[rest] = np.where(seen, per_class[pos_c], 1.0)
        out[weight_column(variable)] = w
    return out
