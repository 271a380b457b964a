"""The ``Grid`` value type: a CRS, an affine transform and a shape.

A grid is immutable, compares by value and hashes stably (the same key in
every process and run), so Dask task keys built from grids do not change
between runs. Everything else asks a ``Grid`` for pixel centres and windows.

Conventions: ``transform`` is the GDAL/rasterio affine (a, b, c, d, e, f)
mapping (col, row) of a pixel *corner* to (x, y); ``shape`` is (height,
width) = (rows, cols); pixel (row, col) covers [col, col+1) x [row, row+1)
in pixel space and its centre is at (col + 0.5, row + 0.5).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from affine import Affine

from grids.errors import CRSError, GridError


def normalize_crs(crs: Any) -> str:
    """A canonical text form of a CRS: ``AUTH:CODE`` when it has one, else WKT2.

    Accepts anything pyproj understands (``"EPSG:4326"``, an int, WKT, PROJ
    strings, a pyproj or rasterio CRS). Raises ``CRSError`` when it cannot be
    parsed or is missing.
    """
    if crs is None or (isinstance(crs, str) and not crs.strip()):
        raise CRSError("no CRS given")
    if isinstance(crs, str):
        return _normalize_crs_text(crs)  # every Grid (window, tile) normalises its CRS text
    return _normalize_crs(crs)


@lru_cache(maxsize=512)
def _normalize_crs_text(crs: str) -> str:
    """``normalize_crs`` of a CRS text, cached (parsing costs milliseconds; errors not cached)."""
    return _normalize_crs(crs)


def _normalize_crs(crs: Any) -> str:
    from pyproj import CRS
    from pyproj.exceptions import CRSError as ProjCRSError

    if isinstance(crs, str) and crs.upper().startswith(("EPSG:", "ESRI:")) and ":" in crs:
        auth, code = crs.split(":", 1)
        if code.strip().isdigit():
            return f"{auth.upper()}:{code.strip()}"
    try:
        if hasattr(crs, "to_wkt") and not isinstance(crs, CRS):
            crs = crs.to_wkt()
        parsed = CRS.from_user_input(crs)
    except (ProjCRSError, TypeError, ValueError) as exc:
        raise CRSError(f"cannot parse CRS {str(crs)[:80]!r}: {exc}") from exc
    auth = parsed.to_authority(min_confidence=100)
    if auth is not None:
        return f"{auth[0]}:{auth[1]}"
    return str(parsed.to_wkt())


@dataclass(frozen=True, slots=True)
class Grid:
    """A raster grid: CRS, affine transform (pixel corner), shape (rows, cols)."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        t = tuple(float(v) for v in tuple(self.transform)[:6])
        if len(t) != 6 or not all(math.isfinite(v) for v in t):
            raise GridError(f"transform must be 6 finite numbers, got {self.transform!r}")
        if t[0] * t[4] - t[1] * t[3] == 0:
            raise GridError(f"transform {t!r} is singular")
        shape = (int(self.shape[0]), int(self.shape[1]))
        if shape[0] <= 0 or shape[1] <= 0:
            raise GridError(f"shape must be positive, got {self.shape!r}")
        object.__setattr__(self, "transform", t)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "crs", normalize_crs(self.crs))

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def from_bounds(
        cls,
        bounds: tuple[float, float, float, float],
        resolution: float | tuple[float, float],
        crs: Any,
        *,
        snap: bool = True,
    ) -> Grid:
        """A north-up grid covering (west, south, east, north) at ``resolution`` (x, y).

        With ``snap`` the edges are snapped outwards to multiples of the
        resolution, so grids built from different bounds share one lattice.
        """
        if isinstance(resolution, tuple):
            rx, ry = float(resolution[0]), abs(float(resolution[1]))
        else:
            rx = ry = abs(float(resolution))
        west, south, east, north = (float(v) for v in bounds)
        if not (east > west and north > south):
            raise GridError(f"bounds {bounds!r} are empty or not (west, south, east, north)")
        if snap:
            west = math.floor(west / rx + 1e-9) * rx
            north = math.ceil(north / ry - 1e-9) * ry
            east = math.ceil(east / rx - 1e-9) * rx
            south = math.floor(south / ry + 1e-9) * ry
        width = max(1, round((east - west) / rx))
        height = max(1, round((north - south) / ry))
        return cls(crs, (rx, 0.0, west, 0.0, -ry, north), (height, width))

    @classmethod
    def from_affine(cls, crs: Any, transform: Affine, shape: tuple[int, int]) -> Grid:
        """A grid from a rasterio/affine ``Affine``."""
        return cls(crs, tuple(transform)[:6], shape)  # type: ignore[arg-type]

    @classmethod
    def from_coords(cls, x: np.ndarray, y: np.ndarray, crs: Any, *, rtol: float = 1e-6) -> Grid:
        """A grid from 1-D pixel-*centre* coordinates (netCDF/CF ``lon``/``lat`` or ``x``/``y``).

        The spacing is taken from the first and last centres, so the grid spans
        exactly half a cell beyond them; raises ``GridError`` when the spacing is
        not regular within ``rtol`` of a cell (irregular axes cannot be a Grid).
        Either axis may run in either direction (``lat`` descending is north-up).
        """
        xa = np.asarray(x, dtype=np.float64).ravel()
        ya = np.asarray(y, dtype=np.float64).ravel()
        if xa.size < 2 or ya.size < 2:
            raise GridError("coordinate axes need at least 2 values each to define a grid")
        steps = []
        for name, v in (("x", xa), ("y", ya)):
            step = (v[-1] - v[0]) / (v.size - 1)
            if step == 0 or not math.isfinite(step):
                raise GridError(f"{name} coordinates are constant or not finite")
            dev = np.abs(np.diff(v) - step).max()
            if dev > abs(step) * rtol:
                raise GridError(
                    f"{name} coordinates are not regularly spaced "
                    f"(step {step!r}, worst deviation {dev!r})"
                )
            steps.append(step)
        dx, dy = steps
        return cls(crs, (dx, 0.0, xa[0] - dx / 2, 0.0, dy, ya[0] - dy / 2), (ya.size, xa.size))

    # -- basic properties -------------------------------------------------------------
    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def size(self) -> int:
        """Number of pixels."""
        return self.shape[0] * self.shape[1]

    @property
    def is_axis_aligned(self) -> bool:
        """True when there is no rotation or shear (b == d == 0)."""
        return self.transform[1] == 0.0 and self.transform[3] == 0.0

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units, both positive (axis-aligned grids)."""
        self._require_axis_aligned()
        return abs(self.transform[0]), abs(self.transform[4])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the outer pixel edges, CRS units."""
        a = self.affine
        corners = ((0, 0), (self.width, 0), (0, self.height), (self.width, self.height))
        xs, ys = zip(*(_apply(a, c, r) for c, r in corners), strict=True)
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def is_geographic(self) -> bool:
        return bool(self._pyproj_crs.is_geographic)

    @property
    def _pyproj_crs(self) -> Any:
        # A slotted dataclass has no __dict__ for cached_property: cache by CRS text.
        return _parse_crs(self.crs)

    def to_pyproj(self) -> Any:
        """This grid's CRS as a ``pyproj.CRS``."""
        return self._pyproj_crs

    def to_wkt(self) -> str:
        """WKT2 of the CRS (for CF ``crs_wkt`` / ``spatial_ref``)."""
        return str(self._pyproj_crs.to_wkt())

    # -- coordinates ------------------------------------------------------------------
    def x_coords(self) -> np.ndarray:
        """x of the pixel-centre columns (axis-aligned grids), float64."""
        self._require_axis_aligned()
        a, _, c = self.transform[:3]
        return c + (np.arange(self.width, dtype=np.float64) + 0.5) * a

    def y_coords(self) -> np.ndarray:
        """y of the pixel-centre rows (axis-aligned grids), float64."""
        self._require_axis_aligned()
        _, _, _, _, e, f = self.transform
        return f + (np.arange(self.height, dtype=np.float64) + 0.5) * e

    def pixel_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """2-D arrays (x, y) of every pixel centre, shape ``self.shape``."""
        rows, cols = np.meshgrid(
            np.arange(self.height, dtype=np.float64) + 0.5,
            np.arange(self.width, dtype=np.float64) + 0.5,
            indexing="ij",
        )
        a, b, c, d, e, f = self.transform
        return a * cols + b * rows + c, d * cols + e * rows + f

    def xy_to_rowcol(
        self, x: np.ndarray | float, y: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Integer (row, col) of the pixels containing points (x, y), floor rule.

        Points outside the grid give indices outside [0, shape); use
        ``contains_rowcol`` to test.
        """
        inv = ~self.affine
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        col = inv.a * xa + inv.b * ya + inv.c
        row = inv.d * xa + inv.e * ya + inv.f
        return np.floor(row).astype(np.int64), np.floor(col).astype(np.int64)

    def contains_rowcol(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Boolean mask: which (row, col) fall inside the grid."""
        return (row >= 0) & (row < self.height) & (col >= 0) & (col < self.width)

    # -- windows ----------------------------------------------------------------------
    def window(self, row0: int, row1: int, col0: int, col1: int) -> Grid:
        """The sub-grid of rows [row0, row1) and columns [col0, col1).

        The window may extend beyond this grid (same lattice, outside pixels).
        """
        if row1 <= row0 or col1 <= col0:
            raise GridError(f"empty window rows {row0}:{row1}, cols {col0}:{col1}")
        a, b, c, d, e, f = self.transform
        return Grid(
            self.crs,
            (a, b, c + a * col0 + b * row0, d, e, f + d * col0 + e * row0),
            (row1 - row0, col1 - col0),
        )

    def window_of_bounds(
        self, bounds: tuple[float, float, float, float]
    ) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1) of the pixels of this grid that intersect ``bounds``.

        Clipped to the grid; bounds are in this grid's CRS (axis-aligned grids).
        """
        self._require_axis_aligned()
        west, south, east, north = bounds
        inv = ~self.affine
        c0, r0 = _apply(inv, west, north)
        c1, r1 = _apply(inv, east, south)
        cmin, cmax = sorted((c0, c1))
        rmin, rmax = sorted((r0, r1))
        col0 = max(0, math.floor(cmin + 1e-9))
        col1 = min(self.width, math.ceil(cmax - 1e-9))
        row0 = max(0, math.floor(rmin + 1e-9))
        row1 = min(self.height, math.ceil(rmax - 1e-9))
        if row1 <= row0 or col1 <= col0:
            raise GridError(f"bounds {bounds!r} do not intersect grid {self.bounds!r}")
        return row0, row1, col0, col1

    def crop(self, bounds: tuple[float, float, float, float]) -> Grid:
        """The sub-grid of the pixels that intersect ``bounds`` (this grid's CRS)."""
        return self.window(*self.window_of_bounds(bounds))

    # -- identity ---------------------------------------------------------------------
    def key(self) -> str:
        """A stable hex digest of this grid: the same in every process and run."""
        text = f"{self.crs}|{','.join(repr(v) for v in self.transform)}|{self.shape}"
        return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()

    def __hash__(self) -> int:
        return int(self.key()[:15], 16)

    def __dask_tokenize__(self) -> tuple[str, str]:
        return ("grids.Grid", self.key())

    def __repr__(self) -> str:
        return f"Grid(crs={self.crs[:40]!r}, transform={self.transform!r}, shape={self.shape!r})"

    def same_crs(self, other: Grid) -> bool:
        """True when both grids use the same CRS (by meaning, not by spelling)."""
        return crs_equal(self.crs, other.crs)

    def _require_axis_aligned(self) -> None:
        if not self.is_axis_aligned:
            raise GridError(f"grid with rotated transform {self.transform!r} is not supported here")


@lru_cache(maxsize=256)
def crs_equal(a: str, b: str) -> bool:
    """True when two CRS texts denote the same CRS (axis order ignored), e.g. WKT vs EPSG."""
    if a == b:
        return True
    try:
        return bool(_parse_crs(a).equals(_parse_crs(b), ignore_axis_order=True))
    except Exception:  # pragma: no cover - both were parsed when the grids were built
        return False


@lru_cache(maxsize=256)
def _parse_crs(crs: str) -> Any:
    from pyproj import CRS

    return CRS.from_user_input(crs)


def _apply(t: Affine, x: float, y: float) -> tuple[float, float]:
    """Affine ``t`` applied to one point (no operator: ``*`` is deprecated, ``@`` is new)."""
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f
