"""Smooth random fields defined by a key and absolute position (value noise).

A field is a sum of octaves of value noise: random node values on a square
lattice of ``spacing`` cells (hashed from the key and the node's absolute
index, so no state), blended with a smoothstep. Because node values depend
only on (key, absolute index), any window of a field can be generated on its
own and adjacent windows agree exactly: the property the lazy CONUS tiles
need. Everything is whole-array numpy; no Python loop per pixel.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_P1 = np.uint64(0x9E3779B97F4A7C15)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_OFFSET = 1 << 24  # keeps node indices positive before the cast to uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hash_uniform(key: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Uniform numbers in [0, 1) (float64) from (key, i, j); i, j broadcast, integers."""
    iu = (np.asarray(i, dtype=np.int64) + _OFFSET).astype(np.uint64)
    ju = (np.asarray(j, dtype=np.int64) + _OFFSET).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(key & 0xFFFFFFFFFFFFFFFF) ^ _mix(iu * _P1 + ju * _P2))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def hash_normal(key: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Standard normal numbers (float64) from (key, i, j), by Box-Muller on two hashes."""
    u1 = hash_uniform(key, i, j)
    u2 = hash_uniform(key ^ 0x5DEECE66D, i, j)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def _smooth(f: np.ndarray) -> np.ndarray:
    return f * f * (3.0 - 2.0 * f)


def _axis(start: int, n: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Node index below each cell centre and the smoothstep weight towards the next node."""
    u = (start + np.arange(n, dtype=np.float64) + 0.5) / spacing
    i0 = np.floor(u)
    return i0.astype(np.int64), _smooth(u - i0)


def interp_nodes(
    nodes: np.ndarray,
    node_row0: int,
    node_col0: int,
    row0: int,
    col0: int,
    shape: tuple[int, int],
    spacing: float,
    *,
    smooth: bool = True,
) -> np.ndarray:
    """Blend node values onto cells [row0, row0+h) x [col0, col0+w) (float64).

    ``nodes[a, b]`` is the value of node (node_row0 + a, node_col0 + b); node k
    sits at cell coordinate k * spacing (cell centres at index + 0.5). With
    ``smooth`` the weights are smoothstep, else linear.
    """
    h, w = shape
    ur = (row0 + np.arange(h, dtype=np.float64) + 0.5) / spacing
    uc = (col0 + np.arange(w, dtype=np.float64) + 0.5) / spacing
    ir = np.floor(ur)
    ic = np.floor(uc)
    fr = ur - ir
    fc = uc - ic
    if smooth:
        fr = _smooth(fr)
        fc = _smooth(fc)
    ia = ir.astype(np.int64) - node_row0
    ja = ic.astype(np.int64) - node_col0
    top = nodes[ia]
    bottom = nodes[ia + 1]
    rows = top * (1.0 - fr)[:, None] + bottom * fr[:, None]
    left = rows[:, ja]
    right = rows[:, ja + 1]
    return left + (right - left) * fc[None, :]


def _weights(start: int, n: int, spacing: float, n_nodes: int, node0: int) -> np.ndarray:
    """(n_nodes, n) float32 matrix of linear weights: cell k = sum_i W[i, k] * node_i."""
    u = (start + np.arange(n, dtype=np.float64) + 0.5) / spacing
    i = np.floor(u)
    f = (u - i).astype(np.float32)
    ia = i.astype(np.int64) - node0
    w = np.zeros((n_nodes, n), dtype=np.float32)
    k = np.arange(n)
    w[ia, k] = 1.0 - f
    w[ia + 1, k] = f
    return w


def upsample_linear(
    nodes: np.ndarray,
    node_row0: int,
    node_col0: int,
    row0: int,
    col0: int,
    shape: tuple[int, int],
    spacing: float,
) -> np.ndarray:
    """Bilinear blend of coarse node values onto cells, as two small matrix products (float32).

    Same result as ``interp_nodes(..., smooth=False)`` up to float32 rounding
    (about 1e-6 relative); much faster when ``spacing`` is large (tens of cells).
    """
    wr = _weights(row0, shape[0], spacing, nodes.shape[0], node_row0)
    wc = _weights(col0, shape[1], spacing, nodes.shape[1], node_col0)
    return (wr.T @ nodes.astype(np.float32)) @ wc


def node_range(start: int, n: int, spacing: float) -> tuple[int, int]:
    """First node index and node count needed to cover cells [start, start+n)."""
    lo = int(np.floor((start + 0.5) / spacing))
    hi = int(np.floor((start + n - 0.5) / spacing)) + 1
    return lo, hi - lo + 1


def value_noise(
    key: int, row0: int, col0: int, shape: tuple[int, int], spacing: float
) -> np.ndarray:
    """One octave: nodes uniform in [-1, 1), smoothstep-blended; float64, shape ``shape``."""
    r_lo, nr = node_range(row0, shape[0], spacing)
    c_lo, nc = node_range(col0, shape[1], spacing)
    ii = np.arange(r_lo, r_lo + nr)[:, None]
    jj = np.arange(c_lo, c_lo + nc)[None, :]
    nodes = 2.0 * hash_uniform(key, ii, jj) - 1.0
    return interp_nodes(nodes, r_lo, c_lo, row0, col0, shape, spacing)


def linear_noise(
    key: int, row0: int, col0: int, shape: tuple[int, int], spacing: float
) -> np.ndarray:
    """One octave with linear blending by matrix products, unit std (float32); for big windows."""
    r_lo, nr = node_range(row0, shape[0], spacing)
    c_lo, nc = node_range(col0, shape[1], spacing)
    ii = np.arange(r_lo, r_lo + nr)[:, None]
    jj = np.arange(c_lo, c_lo + nc)[None, :]
    nodes = (2.0 * hash_uniform(key, ii, jj) - 1.0) / LINEAR_STD
    return upsample_linear(nodes, r_lo, c_lo, row0, col0, shape, spacing)


LINEAR_STD = float(np.sqrt(1.0 / 3.0) * 2.0 / 3.0)  # std of linearly blended U(-1, 1) nodes


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Limit BLAS to one thread (threadpoolctl when installed).

    The upsampling matrix products are small; a multi-threaded OpenBLAS
    spin-waits and runs 20x slower on a busy 2-core machine.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def _octave_std() -> float:
    """Standard deviation of one octave of value noise (node std 1/sqrt(3))."""
    f = (np.arange(20000) + 0.5) / 20000
    s = _smooth(f)
    k = float(np.mean((1 - s) ** 2 + s**2))  # variance factor of one blended axis
    return float(np.sqrt(k * k / 3.0))


OCTAVE_STD = _octave_std()


def fbm(
    key: int,
    row0: int,
    col0: int,
    shape: tuple[int, int],
    spacings: Sequence[float],
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Sum of value-noise octaves, scaled to unit standard deviation (float32).

    ``spacings`` in cells (largest first); ``weights`` default to the spacing
    (a red spectrum: large scales dominate).
    """
    ws = list(weights) if weights is not None else [float(s) for s in spacings]
    total = np.zeros(shape, dtype=np.float64)
    for k, (sp, wt) in enumerate(zip(spacings, ws, strict=True)):
        total += wt * value_noise(key + 7919 * (k + 1), row0, col0, shape, sp)
    norm = OCTAVE_STD * float(np.sqrt(np.sum(np.square(ws))))
    return (total / norm).astype(np.float32)
