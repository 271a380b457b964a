"""Ensemble arithmetic: one pure function, shared by training, export checks and the runtime."""

from __future__ import annotations

import numpy as np


def combine_members(
    means: np.ndarray, sds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine m members' Normal predictions (arrays (m, n), m3 m-3) into ensemble figures.

    Returns (mean, sd, spread), each (n,):
    - mean: the mean of the member means;
    - sd: the sd of the equal-weight mixture, sqrt(mean(sd_m^2 + mu_m^2) - mean^2),
      computed in the equivalent cancellation-free form
      sqrt(mean(sd_m^2) + mean((mu_m - mean)^2));
    - spread: the population sd (ddof=0) of the member means.
    NaN in a member propagates to that row. Computation is in float64, the
    result has the dtype of ``means``.
    """
    mu = np.asarray(means)
    sd = np.asarray(sds)
    if mu.ndim != 2 or mu.shape != sd.shape:
        raise ValueError(f"means and sds must both be (m, n), got {mu.shape} and {sd.shape}")
    m64 = mu.astype(np.float64)
    s64 = sd.astype(np.float64)
    mean = m64.mean(axis=0)
    between = ((m64 - mean) ** 2).mean(axis=0)
    mix_sd = np.sqrt((s64**2).mean(axis=0) + between)
    out_dtype = mu.dtype if np.issubdtype(mu.dtype, np.floating) else np.float64
    return mean.astype(out_dtype), mix_sd.astype(out_dtype), np.sqrt(between).astype(out_dtype)
