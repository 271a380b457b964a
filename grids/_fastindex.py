"""Compiled (numba) builders of 2-D nearest indices, loaded by grids.resample on demand."""

from __future__ import annotations

import numpy as np
from numba import njit

GDAL_NEAREST_EPS = 1e-10  # grids.resample.GDAL_NEAREST_EPS (not imported: no cycle)


@njit(nogil=True, cache=True, error_model="numpy")
def nearest_2d_kernel(
    xs: np.ndarray,
    ys: np.ndarray,
    ia: float,
    ib: float,
    ic: float,
    id_: float,
    ie: float,
    if_: float,
    src_h: int,
    src_w: int,
    rows: np.ndarray,
    cols: np.ndarray,
    valid: np.ndarray,
    flat: np.ndarray,
) -> int:
    h, w = rows.shape
    n_valid = 0
    for i in range(h):
        for j in range(w):
            x = xs[i, j]
            y = ys[i, j]
            px = ic + x * ia + y * ib
            py = if_ + x * id_ + y * ie
            cx = np.floor(px + GDAL_NEAREST_EPS)
            cy = np.floor(py + GDAL_NEAREST_EPS)
            ok = (
                np.isfinite(px)
                and px >= 0.0
                and cx < src_w
                and np.isfinite(py)
                and py >= 0.0
                and cy < src_h
            )
            r = int(cy) if ok else 0
            c = int(cx) if ok else 0
            rows[i, j] = r
            cols[i, j] = c
            valid[i, j] = ok
            flat[i, j] = r * src_w + c
            n_valid += ok
    return n_valid


@njit(nogil=True, cache=True, error_model="numpy")
def window_2d_kernel(
    src_rows: np.ndarray,
    src_cols: np.ndarray,
    src_valid: np.ndarray,
    r0: int,
    c0: int,
    win_h: int,
    win_w: int,
    rows: np.ndarray,
    cols: np.ndarray,
    valid: np.ndarray,
    flat: np.ndarray,
) -> int:
    """``index_for_window`` of a 2-D index in one pass (the numpy path's arrays)."""
    h, w = rows.shape
    n_valid = 0
    for i in range(h):
        for j in range(w):
            r = src_rows[i, j] - r0
            c = src_cols[i, j] - c0
            ok = src_valid[i, j] and r >= 0 and r < win_h and c >= 0 and c < win_w
            if not ok:
                r = 0
                c = 0
            rows[i, j] = r
            cols[i, j] = c
            valid[i, j] = ok
            flat[i, j] = r * win_w + c
            n_valid += ok
    return n_valid
