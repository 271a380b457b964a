"""The one function that puts native values on a target window: nearest neighbour.

Both the training table (a station's 1-pixel window) and the map inference (a
tile) call ``sample``; the index is computed by ``grids.resample`` against the
product's whole lattice and shifted to the window read, so a station's pixel
gets bit-identical values whichever window was read around it. Index caching
lives in ``grids.resample``.
"""

from __future__ import annotations

import numpy as np

from grids import Grid
from grids.resample import gather, index_for_window, nearest_index
from pipeline.sources.base import NativeRaster

METHODS = ("nearest",)


def sample(native: NativeRaster, target: Grid, method: str = "nearest") -> np.ndarray:
    """``native`` values on ``target`` (float32 (H, W), NaN where no source pixel)."""
    if method not in METHODS:
        raise ValueError(f"unknown sampling method {method!r}; one of {METHODS}")
    if native.lattice is not None:
        r0, c0 = native.offset
        h, w = native.grid.shape
        index = index_for_window(nearest_index(native.lattice, target), (r0, r0 + h, c0, c0 + w))
    else:
        index = nearest_index(native.grid, target)
    return np.asarray(gather(native.data, index, fill=np.nan), dtype=np.float32)
