"""A small synthetic training table with a learnable relation, for tests and benchmarks.

It follows the schema of ``models.table`` exactly. The target is
``sm = smap + 0.1 * f(ndvi, clay, precip, lst) + noise`` (m3 m-3), so every
architecture can learn something in a few epochs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.features import FEATURE_NAMES, WEIGHT_VARIABLES


def _balanced(codes: np.ndarray) -> np.ndarray:
    """w_i = n_samples / (n_classes * n_i) for each row's class."""
    values, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    return (len(codes) / (len(values) * counts))[inverse].astype(np.float64)


def synthetic_table(
    n_sites: int = 40, n_days: int = 60, *, seed: int = 0, n_textures: int = 4
) -> pd.DataFrame:
    """A table of ``n_sites`` x ``n_days`` rows with every column models/ reads."""
    rng = np.random.default_rng(seed)
    sites = np.array([f"NET:S{i:03d}" for i in range(n_sites)])
    texture_codes = np.array([1, 4, 7, 9, 12, 8, 2, 5, 3, 6, 10, 11])[: max(1, n_textures)]
    site_texture = texture_codes[np.arange(n_sites) % len(texture_codes)]
    site_lc = rng.choice([4, 10, 12, 14], n_sites)
    site_kg = rng.choice([7, 14, 25, 26], n_sites)
    sand = rng.uniform(10, 80, n_sites)
    clay = rng.uniform(5, 45, n_sites)
    ph = rng.uniform(5.0, 8.0, n_sites)
    elev = rng.uniform(50, 2000, n_sites)
    fold = np.arange(n_sites) % 10
    split = np.where(rng.random(n_sites) < 0.2, "validation", "train")
    split[:2] = "train"

    n = n_sites * n_days
    si = np.repeat(np.arange(n_sites), n_days)
    day = np.tile(np.arange(n_days), n_sites)
    dates = pd.Timestamp("2020-04-01") + pd.to_timedelta(day, unit="D")
    season = np.sin(2 * np.pi * day / 365.0)
    smap = np.clip(0.25 + 0.08 * season + 0.05 * rng.standard_normal(n), 0.02, 0.5)
    ndvi = np.clip(0.5 + 0.2 * season + 0.05 * rng.standard_normal(n), -0.2, 1.0)
    lst = 20 + 10 * season + 3 * rng.standard_normal(n)
    precip = rng.gamma(0.5, 4.0, n)
    et = np.clip(2 + 1.5 * season + 0.3 * rng.standard_normal(n), 0, None)
    f = np.tanh(2 * (ndvi - 0.5)) + 0.02 * (clay[si] - 25) + 0.03 * np.log1p(precip)
    f -= 0.02 * (lst - 20)
    sm = np.clip(smap + 0.1 * f + 0.01 * rng.standard_normal(n), 0.01, 0.6)

    table = pd.DataFrame(
        {
            "site_id": sites[si],
            "date": dates,
            "sm": sm,
            "smap": smap,
            "ndvi": ndvi,
            "lst": lst,
            "precip": precip,
            "sand": sand[si],
            "clay": clay[si],
            "ph": ph[si],
            "et": et,
            "elevation": elev[si],
            "texture": site_texture[si].astype(np.int16),
            "landcover": site_lc[si].astype(np.int16),
            "koppen": site_kg[si].astype(np.int16),
            "split": split[si],
            "fold": fold[si].astype(np.int8),
        }
    )
    for name in FEATURE_NAMES:
        table[name] = table[name].astype(np.float32)
    bins = {
        "texture": table["texture"].to_numpy(),
        "clay": np.digitize(table["clay"].to_numpy(), [10, 20, 30, 40]),
        "sand": np.digitize(table["sand"].to_numpy(), [20, 40, 60, 80]),
        "ph": np.digitize(table["ph"].to_numpy(), [5.5, 6.5, 7.5]),
        "koppen": table["koppen"].to_numpy(),
        "landcover": table["landcover"].to_numpy(),
    }
    for var in WEIGHT_VARIABLES:
        table[f"w_{var}"] = _balanced(bins[var]) if var in bins else 1.0
    return table
