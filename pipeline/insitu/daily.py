"""Daily means per UTC day: the one aggregation both networks go through."""

from __future__ import annotations

import numpy as np
import pandas as pd


def daily_means(times: np.ndarray, values: np.ndarray, min_obs: int = 1) -> pd.DataFrame:
    """Mean of the readings of each UTC day, with the reading count.

    ``times`` are UTC (datetime64, any unit), ``values`` m3 m-3 (NaN readings are
    ignored). A day is midnight-to-midnight UTC; days with fewer than
    ``min_obs`` readings are dropped. Returns columns ``date`` (datetime64[ns],
    midnight of the UTC day), ``sm`` (float64), ``n_obs`` (int64), sorted by date.
    """
    t = np.asarray(times).astype("datetime64[ns]")
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape:
        raise ValueError(f"times {t.shape} and values {v.shape} differ in shape")
    ok = ~np.isnan(v) & ~np.isnat(t)
    t, v = t[ok], v[ok]
    days, inverse = np.unique(t.astype("datetime64[D]"), return_inverse=True)
    counts = np.bincount(inverse, minlength=len(days)).astype(np.int64)
    sums = np.bincount(inverse, weights=v, minlength=len(days))
    keep = counts >= max(int(min_obs), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return pd.DataFrame(
        {
            "date": days[keep].astype("datetime64[ns]"),
            "sm": means[keep].astype(np.float64),
            "n_obs": counts[keep],
        }
    )


def count_days(times: np.ndarray, values: np.ndarray) -> int:
    """Number of distinct UTC days with at least one non-NaN reading."""
    t = np.asarray(times).astype("datetime64[ns]")
    v = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(v) & ~np.isnat(t)
    return len(np.unique(t[ok].astype("datetime64[D]")))
