"""Resampling between grids: nearest neighbour identical to GDAL, and bilinear.

Nearest rule (what GDAL's warp kernel does, and what we do): for every target
pixel take its centre (col + 0.5, row + 0.5), map it to continuous source pixel
coordinates (px, py) and pick source pixel ``(floor(py + 1e-10), floor(px + 1e-10))``;
the pixel has no source (nodata, counted out of ``coverage``) when px or py is
negative or the index reaches the source width/height. So a centre lying exactly
on a source pixel edge (a tie) goes to the pixel on the higher-index side (east
for columns, south for north-up rows), and so does a centre within 1e-10 pixel
below an edge, absorbing float noise of the coordinate arithmetic.

How (px, py) are computed:

- Same CRS and both grids axis-aligned (the common case: MERIT, CHIRPS, gridMET
  on the 3" lattice): the index is *separable*, rows from y and columns from x,
  with GDAL's own arithmetic (target pixel -> georeferenced via the target
  transform, then the inverted source geotransform ``inv[0] + x * inv[1]``).
- Otherwise every target centre is transformed exactly with PROJ (pyproj,
  ``always_xy``) into the source CRS. GDAL by default interpolates the
  transformation linearly along scanlines (approximate transformer, error
  threshold 0.125 source pixel), which moves centres by up to 1/8 pixel and so
  changes the chosen pixel for a few percent of target pixels near source edges.
  We follow the *exact* geometry; parity with GDAL is defined and tested against
  ``rasterio.warp.reproject(..., resampling=nearest, tolerance=0)``, i.e. GDAL with
  the approximate transformer disabled.

Indices are computed once per (source grid, target grid) and cached (LRU,
thread-safe); ``gather`` then serves every day and variable with one numpy
``take``. Readers compute the index against the full source grid, read only
``source_window(...)`` of the raster and shift the index with ``index_for_window``.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grids.errors import GridError
from grids.grid import Grid

#: GDAL's nearest-neighbour epsilon, in source pixels (gdalwarpkernel.cpp).
GDAL_NEAREST_EPS = 1e-10

_CACHE_SIZE = 256


# --------------------------------------------------------------------------------------
# Index type
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ResampleIndex:
    """Which source pixel feeds each target pixel (nearest neighbour), computed once.

    Separable (same CRS, axis-aligned): ``rows`` (H,) and ``cols`` (W,) with
    ``valid_rows`` (H,) and ``valid_cols`` (W,). Otherwise ``rows``/``cols`` are
    (H, W) int32 arrays (compact: an index lives in a cache for the whole run) and
    ``valid_rows`` is the (H, W) mask (``valid_cols`` is None); cast to int64
    before computing flat offsets. Entries without a source hold 0 (a safe
    index) and are filled by ``gather``.
    """

    rows: np.ndarray
    cols: np.ndarray
    valid_rows: np.ndarray
    valid_cols: np.ndarray | None
    src_shape: tuple[int, int]
    dst_shape: tuple[int, int]
    coverage: float
    key: str
    _flat: np.ndarray | None = field(default=None, repr=False)

    @property
    def separable(self) -> bool:
        return self.valid_cols is not None

    @property
    def valid(self) -> np.ndarray:
        """(H, W) boolean: target pixels that have a source pixel."""
        if self.valid_cols is None:
            return self.valid_rows
        return np.logical_and.outer(self.valid_rows, self.valid_cols)

    @property
    def all_valid(self) -> bool:
        return self.coverage == 1.0

    @property
    def nbytes(self) -> int:
        """Memory held by this index (bytes), for the cache budget."""
        arrays = (self.rows, self.cols, self.valid_rows, self.valid_cols, self._flat)
        return sum(a.nbytes for a in arrays if a is not None)

    def rows_2d(self) -> np.ndarray:
        """(H, W) source row of every target pixel (0 where no source)."""
        if self.separable:
            return np.broadcast_to(self.rows[:, None], self.dst_shape)
        return self.rows

    def cols_2d(self) -> np.ndarray:
        """(H, W) source column of every target pixel (0 where no source)."""
        if self.separable:
            return np.broadcast_to(self.cols[None, :], self.dst_shape)
        return self.cols

    def __repr__(self) -> str:
        kind = "separable" if self.separable else "2-D"
        return (
            f"ResampleIndex({kind}, src_shape={self.src_shape}, dst_shape={self.dst_shape}, "
            f"coverage={self.coverage:.4f}, key={self.key[:12]})"
        )


def _digest(*parts: object) -> str:
    text = "|".join(str(p) for p in parts)
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _make_index(
    rows: np.ndarray,
    cols: np.ndarray,
    vr: np.ndarray,
    vc: np.ndarray | None,
    src_shape: tuple[int, int],
    dst_shape: tuple[int, int],
    key: str,
) -> ResampleIndex:
    rows = np.where(vr, rows, 0).astype(np.intp)
    cols = np.where(vr if vc is None else vc, cols, 0).astype(np.intp)
    if vc is None:
        n_valid = int(np.count_nonzero(vr))
        flat = rows * src_shape[1] + cols
        # 2-D indices are kept compact (int32); ``flat`` (intp) is what gather uses.
        if max(src_shape) < 2**31:
            rows, cols = rows.astype(np.int32), cols.astype(np.int32)
    else:
        n_valid = int(np.count_nonzero(vr)) * int(np.count_nonzero(vc))
        flat = None
    coverage = n_valid / (dst_shape[0] * dst_shape[1])
    for a in (rows, cols, vr, *(() if vc is None else (vc,))):
        a.setflags(write=False)
    if flat is not None:
        flat.setflags(write=False)
    return ResampleIndex(rows, cols, vr, vc, src_shape, dst_shape, coverage, key, flat)


def _to_index(p: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """GDAL's rule: index floor(p + 1e-10), valid when p >= 0 and index < n."""
    with np.errstate(invalid="ignore"):
        idx = np.floor(p + GDAL_NEAREST_EPS)
        valid = np.isfinite(p) & (p >= 0.0) & (idx < n)
    return np.where(valid, idx, 0).astype(np.intp), valid


def _inv_gt(gt: tuple[float, ...]) -> tuple[float, ...]:
    """Inverse geotransform with GDAL's arithmetic (GDALInvGeoTransform)."""
    a, b, c, d, e, f = gt  # x = c + a*col + b*row ; y = f + d*col + e*row
    if b == 0.0 and d == 0.0:
        return (1.0 / a, 0.0, -c / a, 0.0, 1.0 / e, -f / e)
    det = a * e - b * d
    inv_det = 1.0 / det
    return (
        e * inv_det,
        -b * inv_det,
        (b * f - c * e) * inv_det,
        -d * inv_det,
        a * inv_det,
        (-a * f + c * d) * inv_det,
    )


# --------------------------------------------------------------------------------------
# Transformations
# --------------------------------------------------------------------------------------
_local = threading.local()


def _transformer(src_crs: str, dst_crs: str) -> Any:
    """A pyproj Transformer from ``src_crs`` to ``dst_crs`` (x/y = lon/lat order), per thread."""
    from pyproj import Transformer

    cache: dict[tuple[str, str], Any] | None = getattr(_local, "transformers", None)
    if cache is None:
        cache = {}
        _local.transformers = cache
    t = cache.get((src_crs, dst_crs))
    if t is None:
        t = Transformer.from_crs(src_crs, dst_crs, always_xy=True)
        cache[(src_crs, dst_crs)] = t
    return t


def transform_xy(
    x: np.ndarray, y: np.ndarray, src_crs: str, dst_crs: str
) -> tuple[np.ndarray, np.ndarray]:
    """Exact coordinates of points (x, y) of ``src_crs`` in ``dst_crs`` (inf/nan on failure)."""
    from grids.grid import crs_equal

    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if crs_equal(src_crs, dst_crs):
        return xa, ya
    xa, ya = np.broadcast_arrays(xa, ya)
    shape, n = xa.shape, xa.size
    # pyproj takes its scalar path for one-element arrays, which numpy deprecates
    # for ndim > 0: pad a single point to two so it stays on the array path.
    reps = 2 if n == 1 else 1
    xo, yo = _transformer(src_crs, dst_crs).transform(
        np.repeat(xa.ravel(), reps), np.repeat(ya.ravel(), reps), errcheck=False
    )
    return (
        np.asarray(xo, dtype=np.float64)[:n].reshape(shape),
        np.asarray(yo, dtype=np.float64)[:n].reshape(shape),
    )


@dataclass(frozen=True, eq=False)
class _Centres:
    """Target pixel centres expressed in a source CRS (float64, dst.shape; may be views)."""

    xs: np.ndarray
    ys: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.xs.nbytes + self.ys.nbytes)


#: Projections where x depends on longitude only and y on latitude only.
_CYLINDRICAL = frozenset({"cea", "eqc", "merc"})


def _projection_name(crs: str) -> str:
    """The PROJ projection name of ``crs`` (``cea``, ``sinu``...; "" when unknown)."""
    cached = _proj_names.get(crs)
    if cached is None:
        import warnings

        from pyproj import CRS

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cached = str(CRS.from_user_input(crs).to_dict().get("proj", ""))
            except Exception:  # pragma: no cover - unparsable: never take the fast path
                cached = ""
        _proj_names[crs] = cached
    return cached


_proj_names: dict[str, str] = {}


def _separable_centres(dst: Grid, crs: str) -> _Centres | None:
    """Centres of a geographic ``dst`` in a cylindrical ``crs`` from two 1-D transforms.

    x depends on longitude only and y on latitude only, so transforming one row
    and one column gives the very numbers the full 2-D transform gives; this is
    checked on a 17 x 17 sample of centres (bit for bit) and None is returned
    (use the full transform) on any difference, e.g. a datum shift.
    """
    if not (dst.is_geographic and dst.is_axis_aligned):
        return None
    if _projection_name(crs) not in _CYLINDRICAL:
        return None
    a, b, c, d, e, f = dst.transform
    h, w = dst.shape
    cols = np.arange(w, dtype=np.float64) + 0.5
    rows = np.arange(h, dtype=np.float64) + 0.5
    x1 = a * cols + b * 0.5 + c  # b == d == 0: the arithmetic of Grid.pixel_centres
    y1 = d * 0.5 + e * rows + f
    lon_mid, lat_mid = x1[w // 2], y1[h // 2]
    xs1, _ = transform_xy(x1, np.full(w, lat_mid), dst.crs, crs)
    _, ys1 = transform_xy(np.full(h, lon_mid), y1, dst.crs, crs)
    xs = np.broadcast_to(xs1[None, :], (h, w))
    ys = np.broadcast_to(ys1[:, None], (h, w))
    ri = np.unique(np.linspace(0, h - 1, min(h, 17)).astype(np.intp))
    ci = np.unique(np.linspace(0, w - 1, min(w, 17)).astype(np.intp))
    xx, yy = np.meshgrid(x1[ci], y1[ri])
    fx, fy = transform_xy(xx, yy, dst.crs, crs)
    same_x = np.array_equal(fx, xs[np.ix_(ri, ci)], equal_nan=True)
    same_y = np.array_equal(fy, ys[np.ix_(ri, ci)], equal_nan=True)
    return _Centres(xs, ys) if same_x and same_y else None


def _sphere_sinusoidal(crs: str) -> tuple[float, float, float, float] | None:
    """(R, lon_0, x_0, y_0) of a spherical sinusoidal ``crs`` (metres), else None."""
    cached = _sinu_params.get(crs, False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    import warnings

    from pyproj import CRS

    got: tuple[float, float, float, float] | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            d = CRS.from_user_input(crs).to_dict()
        except Exception:  # pragma: no cover - unparsable: never take the fast path
            d = {}
    known = {"proj", "R", "lon_0", "x_0", "y_0", "units", "no_defs", "type"}
    if d.get("proj") == "sinu" and "R" in d and set(d) <= known and d.get("units", "m") == "m":
        radius, lon_0 = float(d["R"]), float(d.get("lon_0", 0.0))
        got = (radius, lon_0, float(d.get("x_0", 0.0)), float(d.get("y_0", 0.0)))
    _sinu_params[crs] = got
    return got


_sinu_params: dict[str, tuple[float, float, float, float] | None] = {}
_DEG_TO_RAD = 0.017453292519943296  # PROJ's DEG_TO_RAD (unitconvert deg -> rad)


def _sinusoidal_centres(dst: Grid, crs: str) -> _Centres | None:
    """Centres of a geographic ``dst`` in a spherical sinusoidal ``crs`` in closed form.

    PROJ's spherical sinusoidal forward is x = x_0 + R * (lam * cos(phi)), y = y_0 + R * phi
    with lam = (lon - lon_0) and phi = lat in radians (degrees times PROJ's DEG_TO_RAD). On
    an axis-aligned geographic grid phi depends on the row only, so cos(phi) is taken once
    per row (the C library's cos, as PROJ) and every centre costs two multiplies. The
    result is compared bit for bit with PROJ on a 17 x 17 sample of centres including the
    grid's edges; on any difference None is returned (use the full transform).
    """
    if not (dst.is_geographic and dst.is_axis_aligned):
        return None
    params = _sphere_sinusoidal(crs)
    if params is None or _projection_name(dst.crs) != "longlat":
        return None
    radius, lon_0, x_0, y_0 = params
    a, b, c, d, e, f = dst.transform
    h, w = dst.shape
    x1 = a * (np.arange(w, dtype=np.float64) + 0.5) + b * 0.5 + c  # Grid.pixel_centres
    y1 = d * 0.5 + e * (np.arange(h, dtype=np.float64) + 0.5) + f
    lam = x1 * _DEG_TO_RAD - lon_0 * _DEG_TO_RAD if lon_0 else x1 * _DEG_TO_RAD
    phi = y1 * _DEG_TO_RAD
    if np.any(np.abs(lam) > math.pi) or np.any(np.abs(phi) > math.pi / 2):
        return None  # PROJ wraps longitudes / refuses latitudes there: leave it to PROJ
    cos_phi = np.array([math.cos(v) for v in phi.tolist()], dtype=np.float64)
    xs = radius * (lam[None, :] * cos_phi[:, None])
    if x_0:
        xs = xs + x_0
    ys1 = radius * phi
    if y_0:
        ys1 = ys1 + y_0
    ys = np.broadcast_to(ys1[:, None], (h, w))
    ri = np.unique(np.linspace(0, h - 1, min(h, 17)).astype(np.intp))
    ci = np.unique(np.linspace(0, w - 1, min(w, 17)).astype(np.intp))
    xx, yy = np.meshgrid(x1[ci], y1[ri])
    fx, fy = transform_xy(xx, yy, dst.crs, crs)
    same_x = np.array_equal(fx, xs[np.ix_(ri, ci)], equal_nan=True)
    same_y = np.array_equal(fy, ys[np.ix_(ri, ci)], equal_nan=True)
    return _Centres(xs, ys) if same_x and same_y else None


def _centres_in(dst: Grid, crs: str) -> _Centres:
    """Every centre of ``dst`` in ``crs`` (exact PROJ), cached: the MODIS 250/500/1000 m
    lattices share one sinusoidal transform of a tile instead of three."""
    ck = ("centres", dst.key(), crs)
    hit = _centres_cache.get(ck)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    got = _separable_centres(dst, crs)
    if got is None:
        got = _sinusoidal_centres(dst, crs)
    if got is None:
        x, y = dst.pixel_centres()
        xs, ys = transform_xy(x, y, dst.crs, crs)
        got = _Centres(xs, ys)
    got.xs.setflags(write=False)
    got.ys.setflags(write=False)
    _centres_cache.put(ck, got)
    return got


def _src_pixel_coords(src: Grid, dst: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Continuous source (px, py) of every target pixel centre, shape dst.shape."""
    centres = _centres_in(dst, src.crs)
    xs, ys = centres.xs, centres.ys
    ia, ib, ic, id_, ie, if_ = _inv_gt(src.transform)
    with np.errstate(invalid="ignore"):
        px = ic + xs * ia + ys * ib
        py = if_ + xs * id_ + ys * ie
    return px, py


def _separable_coords(src: Grid, dst: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Source px for each target column and py for each target row (same CRS, axis-aligned)."""
    ia, _, ic, _, ie, if_ = _inv_gt(src.transform)
    da, _, dc, _, de, df = dst.transform
    xg = dc + (np.arange(dst.width, dtype=np.float64) + 0.5) * da
    yg = df + (np.arange(dst.height, dtype=np.float64) + 0.5) * de
    return ic + xg * ia, if_ + yg * ie


# --------------------------------------------------------------------------------------
# Nearest index (cached)
# --------------------------------------------------------------------------------------
class _LRU:
    """A thread-safe LRU cache bounded by entries and by the bytes its values hold."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self.data: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> Any:
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
            return v

    def put(self, key: tuple[str, ...], value: Any) -> None:
        with self.lock:
            old = self.data.pop(key, None)
            if old is not None:
                self.bytes -= old.nbytes
            self.data[key] = value
            self.bytes += value.nbytes
            while len(self.data) > 1 and (
                len(self.data) > self.size or self.bytes > self.max_bytes
            ):
                _, evicted = self.data.popitem(last=False)
                self.bytes -= evicted.nbytes

    def clear(self) -> None:
        with self.lock:
            self.data.clear()
            self.bytes = 0


#: Cache budget per kind of index, MB (environment ``SMDOWN_GRIDS_CACHE_MB``, default 1024).
CACHE_MB = int(os.environ.get("SMDOWN_GRIDS_CACHE_MB", "1024"))
_nearest_cache = _LRU(_CACHE_SIZE, CACHE_MB * 2**20)
_bilinear_cache = _LRU(_CACHE_SIZE, CACHE_MB * 2**20)
#: Target centres in a source CRS: a few tiles' worth (a 1200 x 1200 tile is 23 MB).
_centres_cache = _LRU(4, 128 * 2**20)


def clear_caches() -> None:
    """Forget cached indices (tests, or after memory pressure)."""
    _nearest_cache.clear()
    _bilinear_cache.clear()
    _centres_cache.clear()


def is_separable(src: Grid, dst: Grid) -> bool:
    """True when rows depend only on y and columns only on x (same CRS, both axis-aligned)."""
    return src.is_axis_aligned and dst.is_axis_aligned and src.same_crs(dst)


def nearest_index(src: Grid, dst: Grid) -> ResampleIndex:
    """The GDAL-identical nearest-neighbour index from ``src`` to ``dst`` (cached)."""
    ck = ("nearest", src.key(), dst.key())
    hit = _nearest_cache.get(ck)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    key = _digest(*ck)
    if is_separable(src, dst):
        px, py = _separable_coords(src, dst)
        cols, vc = _to_index(px, src.width)
        rows, vr = _to_index(py, src.height)
        idx = _make_index(rows, cols, vr, vc, src.shape, dst.shape, key)
    elif _compiled() is not None and max(src.shape) < 2**31:
        idx = _index_2d_fused(src, dst, key)
    else:
        px, py = _src_pixel_coords(src, dst)
        cols, vc = _to_index(px, src.width)
        rows, vr = _to_index(py, src.height)
        idx = _make_index(rows, cols, vr & vc, None, src.shape, dst.shape, key)
    _nearest_cache.put(ck, idx)
    return idx


def _index_2d_fused(src: Grid, dst: Grid, key: str) -> ResampleIndex:
    """``nearest_index`` of a 2-D case in one compiled pass over the target pixels.

    The same float64 arithmetic as ``_src_pixel_coords``, ``_to_index`` and
    ``_make_index`` (inverse geotransform, floor(p + 1e-10), validity), without their
    dozen temporaries of the tile's size: the indices are identical
    (tests/test_grids_resample.py compares both paths).
    """
    centres = _centres_in(dst, src.crs)
    ia, ib, ic, id_, ie, if_ = _inv_gt(src.transform)
    h, w = dst.shape
    rows = np.empty((h, w), np.int32)
    cols = np.empty((h, w), np.int32)
    valid = np.empty((h, w), np.bool_)
    flat = np.empty((h, w), np.intp)
    n_valid = _compiled().nearest_2d_kernel(
        centres.xs, centres.ys, ia, ib, ic, id_, ie, if_, src.height, src.width,
        rows, cols, valid, flat,
    )  # fmt: skip
    for a in (rows, cols, valid, flat):
        a.setflags(write=False)
    coverage = int(n_valid) / (h * w)
    return ResampleIndex(rows, cols, valid, None, src.shape, dst.shape, coverage, key, flat)


_COMPILED_ALLOWED = True
"""Use the compiled index builders (grids._fastindex) when numba is already loaded."""


def _compiled() -> Any:
    """grids._fastindex when numba is already imported in this process (by the Dense
    kernel of models/), else None: importing numba costs ~84 MB of resident memory per
    process, which a worker that needs none of it should not pay. The indices are the
    same either way (tests/test_grids_resample.py); only the speed differs."""
    if not _COMPILED_ALLOWED or "numba" not in sys.modules:
        return None
    from grids import _fastindex

    return _fastindex


def nearest_points(
    src: Grid, x: np.ndarray, y: np.ndarray, crs: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, valid) of the source pixels holding points (x, y) given in ``crs``.

    Same floor rule as ``nearest_index``; rows/cols are 0 where ``valid`` is False.
    """
    from grids.grid import normalize_crs

    xs, ys = transform_xy(np.asarray(x), np.asarray(y), normalize_crs(crs), src.crs)
    ia, ib, ic, id_, ie, if_ = _inv_gt(src.transform)
    with np.errstate(invalid="ignore"):
        px = ic + xs * ia + ys * ib
        py = if_ + xs * id_ + ys * ie
    cols, vc = _to_index(px, src.width)
    rows, vr = _to_index(py, src.height)
    valid = vr & vc
    return np.where(valid, rows, 0), np.where(valid, cols, 0), valid


# --------------------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------------------
def source_window(src: Grid, dst: Grid, pad: int = 1) -> tuple[int, int, int, int] | None:
    """(row0, row1, col0, col1) of the part of ``src`` that feeds ``dst``, or None.

    The bounding box of the nearest-index source pixels, grown by ``pad`` pixels
    (1 is enough for bilinear) and clipped to the source grid.
    """
    idx = nearest_index(src, dst)
    if idx.coverage == 0.0:
        return None
    if idx.separable:
        assert idx.valid_cols is not None
        r = idx.rows[idx.valid_rows]
        c = idx.cols[idx.valid_cols]
    else:
        r = idx.rows[idx.valid_rows]
        c = idx.cols[idx.valid_rows]
    h, w = src.shape
    return (
        max(0, int(r.min()) - pad),
        min(h, int(r.max()) + 1 + pad),
        max(0, int(c.min()) - pad),
        min(w, int(c.max()) + 1 + pad),
    )


def index_for_window(index: ResampleIndex, window: tuple[int, int, int, int]) -> ResampleIndex:
    """The same index against the sub-array ``src[row0:row1, col0:col1]`` of the source.

    Target pixels whose source pixel lies outside the window lose their source.
    """
    r0, r1, c0, c1 = (int(v) for v in window)
    if r1 <= r0 or c1 <= c0:
        raise GridError(f"empty source window {window!r}")
    ck = ("window", index.key, str((r0, r1, c0, c1)))
    hit = _nearest_cache.get(ck)  # a tile's sources read the same windows every day
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    key = _digest(index.key, "window", r0, r1, c0, c1)
    shape = (r1 - r0, c1 - c0)
    if index.separable:
        assert index.valid_cols is not None
        rows = index.rows - r0
        cols = index.cols - c0
        vr = index.valid_rows & (rows >= 0) & (rows < shape[0])
        vc = index.valid_cols & (cols >= 0) & (cols < shape[1])
        out = _make_index(rows, cols, vr, vc, shape, index.dst_shape, key)
    elif _compiled() is not None and max(shape) < 2**31 and index.rows.dtype == np.int32:
        h, w = index.dst_shape
        rows = np.empty((h, w), np.int32)
        cols = np.empty((h, w), np.int32)
        valid = np.empty((h, w), np.bool_)
        flat = np.empty((h, w), np.intp)
        n_valid = _compiled().window_2d_kernel(
            index.rows, index.cols, index.valid_rows, r0, c0, shape[0], shape[1],
            rows, cols, valid, flat,
        )  # fmt: skip
        for a in (rows, cols, valid, flat):
            a.setflags(write=False)
        cov = int(n_valid) / (h * w)
        out = ResampleIndex(rows, cols, valid, None, shape, index.dst_shape, cov, key, flat)
    else:
        rows = index.rows - r0
        cols = index.cols - c0
        v = index.valid_rows & (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
        out = _make_index(rows, cols, v, None, shape, index.dst_shape, key)
    _nearest_cache.put(ck, out)
    return out


# --------------------------------------------------------------------------------------
# Gather
# --------------------------------------------------------------------------------------
def _check_fill(dtype: np.dtype[Any], fill: float | int) -> None:
    if dtype.kind in "fc":
        return
    if dtype.kind == "b":
        if fill not in (0, 1, False, True):
            raise GridError(f"fill {fill!r} is not representable in boolean data")
        return
    if dtype.kind in "iu":
        if isinstance(fill, float) and not (math.isfinite(fill) and fill == int(fill)):
            raise GridError(
                f"integer data ({dtype}) needs an integer fill value (e.g. its nodata), "
                f"got {fill!r}"
            )
        info = np.iinfo(dtype)
        if not (info.min <= int(fill) <= info.max):
            raise GridError(f"fill {fill!r} does not fit in {dtype}")
        return
    raise GridError(f"cannot resample data of dtype {dtype}")


def gather(data: np.ndarray, index: ResampleIndex, fill: float = np.nan) -> np.ndarray:
    """Resample ``data`` (..., src_H, src_W) to (..., dst_H, dst_W) through ``index``.

    Target pixels without a source get ``fill``; integer data needs an integer
    ``fill`` that its dtype can hold (the default NaN raises ``GridError``).
    """
    arr = np.asarray(data)
    if arr.ndim < 2 or tuple(arr.shape[-2:]) != index.src_shape:
        raise GridError(
            f"data shape {arr.shape} does not end with the index source shape {index.src_shape}"
        )
    _check_fill(arr.dtype, fill)
    lead = arr.shape[:-2]
    if index.separable:
        assert index.valid_cols is not None
        # Two 1-D takes: rows first (contiguous row copies), then columns.
        out = arr.take(index.rows, axis=-2).take(index.cols, axis=-1)
        if not index.all_valid:
            out[..., ~index.valid_rows, :] = fill
            out[..., :, ~index.valid_cols] = fill
        return out
    flat_src = arr.reshape(*lead, index.src_shape[0] * index.src_shape[1])
    assert index._flat is not None
    out = flat_src.take(index._flat, axis=-1)
    if not index.all_valid:
        out[..., ~index.valid_rows] = fill
    return out


def reproject_nearest(
    data: np.ndarray, src: Grid, dst: Grid, fill: float = np.nan
) -> tuple[np.ndarray, float]:
    """Nearest-neighbour resampling of a whole array: (result, coverage fraction 0..1)."""
    idx = nearest_index(src, dst)
    return gather(data, idx, fill), idx.coverage


# --------------------------------------------------------------------------------------
# Bilinear
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BilinearIndex:
    """The four source neighbours and weights of each target pixel (bilinear).

    ``rows``/``cols`` (H, W) are the upper-left neighbours (clamped to the grid),
    ``wy``/``wx`` the weights of the lower/right neighbour; ``inside`` marks
    target centres that fall inside the source grid.
    """

    rows: np.ndarray
    cols: np.ndarray
    wy: np.ndarray
    wx: np.ndarray
    inside: np.ndarray
    src_shape: tuple[int, int]
    dst_shape: tuple[int, int]
    coverage: float

    @property
    def nbytes(self) -> int:
        """Memory held by this index (bytes), for the cache budget."""
        return sum(a.nbytes for a in (self.rows, self.cols, self.wy, self.wx, self.inside))


def bilinear_index(src: Grid, dst: Grid) -> BilinearIndex:
    """Neighbours and weights for bilinear resampling from ``src`` to ``dst`` (cached)."""
    ck = ("bilinear", src.key(), dst.key())
    hit = _bilinear_cache.get(ck)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    if is_separable(src, dst):
        px1, py1 = _separable_coords(src, dst)
        px, py = np.meshgrid(px1, py1)
    else:
        px, py = _src_pixel_coords(src, dst)
    h, w = src.shape
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(px) & np.isfinite(py) & (px >= 0) & (px < w) & (py >= 0) & (py < h)
        u = np.where(inside, px, 0.5) - 0.5  # pixel-centre based coordinates
        v = np.where(inside, py, 0.5) - 0.5
    # Clamp to the outermost centres: within half a pixel of the edge, use the edge pixel.
    u = np.clip(u, 0.0, max(w - 1, 0))
    v = np.clip(v, 0.0, max(h - 1, 0))
    c0 = np.minimum(np.floor(u).astype(np.intp), max(w - 2, 0))
    r0 = np.minimum(np.floor(v).astype(np.intp), max(h - 2, 0))
    wx = (u - c0) if w > 1 else np.zeros_like(u)
    wy = (v - r0) if h > 1 else np.zeros_like(v)
    cov = float(np.count_nonzero(inside)) / inside.size
    bidx = BilinearIndex(r0, c0, wy, wx, inside, src.shape, dst.shape, cov)
    _bilinear_cache.put(ck, bidx)
    return bidx


def bilinear(
    data: np.ndarray,
    src: Grid,
    dst: Grid,
    *,
    fill: float = np.nan,
    nodata: float | None = None,
) -> np.ndarray:
    """Bilinear resampling of float data (..., src_H, src_W) -> (..., dst_H, dst_W), float64.

    Source pixels that are NaN (or equal ``nodata``) drop out and the remaining
    weights are renormalised (as GDAL does); targets with no valid neighbour or
    outside the source get ``fill``.
    """
    arr = np.asarray(data)
    if arr.ndim < 2 or tuple(arr.shape[-2:]) != src.shape:
        raise GridError(f"data shape {arr.shape} does not end with the source shape {src.shape}")
    b = bilinear_index(src, dst)
    a = arr.astype(np.float64, copy=False)
    if nodata is not None:
        a = np.where(a == nodata, np.nan, a)
    h, w = src.shape
    r1 = np.minimum(b.rows + 1, h - 1)
    c1 = np.minimum(b.cols + 1, w - 1)
    acc = np.zeros(arr.shape[:-2] + dst.shape, dtype=np.float64)
    wsum = np.zeros_like(acc)
    for rr, cc, wgt in (
        (b.rows, b.cols, (1 - b.wy) * (1 - b.wx)),
        (b.rows, c1, (1 - b.wy) * b.wx),
        (r1, b.cols, b.wy * (1 - b.wx)),
        (r1, c1, b.wy * b.wx),
    ):
        vals = a[..., rr, cc]
        ok = np.isfinite(vals) & (wgt > 0)
        acc += np.where(ok, vals, 0.0) * wgt
        wsum += np.where(ok, wgt, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = acc / wsum
    bad = (wsum <= 0) | ~b.inside
    out[..., bad] = fill
    return out
