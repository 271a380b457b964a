"""What every covariate reader returns and promises: ``NativeRaster``, ``Provenance``, ``Source``.

A reader answers "values of variable V on this window for date D" on the
product's own grid, in the units of ``models.features`` (m3 m-3, degC, mm/day,
%, pH, m; NDVI unitless), with NaN for missing. The tile task never learns the
file format. Errors are ``pipeline.errors.SourceError`` subclasses that name
the file (or the directory and pattern looked for) and the problem.

Physical-range rule (every reader): after scaling, values outside the
variable's physical range (``PHYSICAL_RANGE``) are *isolated* when they are at
most ``range_tolerance`` (default 1 %) of the valid pixels of the window read,
or a single pixel; those are set to NaN and counted in ``provenance.note``.
More than that means the file is wrong (bad units, bad scale, garbage) and
``OutOfRangeError`` names the file.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np

from grids import Grid
from grids.errors import GridError
from models.variables import physical_ranges
from pipeline.errors import SourceError

Bounds = tuple[float, float, float, float]
"""(west, south, east, north) in degrees, EPSG:4326."""

# Physical ranges after scaling, in the units of the variable registry (models.variables).
PHYSICAL_RANGE: dict[str, tuple[float, float]] = physical_ranges()

DEFAULT_RANGE_TOLERANCE = 0.01
DEFAULT_MARGIN_PIXELS = 2


# -- errors -------------------------------------------------------------------------------
class MissingInputError(SourceError):
    """No file serves this variable on this date (or the file holds no valid value there).

    ``path`` is what was looked for (a directory and file pattern, or the file).
    """

    def __init__(
        self,
        path: object,
        problem: str,
        *,
        variable: str | None = None,
        date: dt.date | None = None,
    ) -> None:
        self.variable = variable
        self.date = date
        prefix = ""
        if variable is not None:
            prefix = f"{variable}" + (f" on {date.isoformat()}" if date is not None else "") + ": "
        super().__init__(path, prefix + problem)


class CorruptFileError(SourceError):
    """The file exists but cannot be decoded (truncated, not HDF5/GeoTIFF, bad bytes)."""


class SchemaError(SourceError):
    """A group, variable, layer or attribute the product defines is absent or malformed."""


class WrongCRSError(SchemaError):
    """The file's CRS or georeferencing is not the product's."""


class DateMismatchError(SourceError):
    """The date in the file name disagrees with the file's metadata (or with the request)."""


class OutOfRangeError(SourceError):
    """More than isolated values lie outside the variable's physical range."""


# -- value types --------------------------------------------------------------------------
@dataclass(frozen=True)
class Provenance:
    """Which file(s) served a variable for a date, and how stale the composite is.

    ``days_stale`` is 0 when the date lies inside the composite's period and
    the number of days after the period's last day when padded.
    """

    variable: str
    files: tuple[str, ...]
    product: str
    composite_start: dt.date | None = None
    composite_days: int | None = None
    days_stale: int = 0
    note: str = ""

    def with_note(self, extra: str) -> Provenance:
        """A copy with ``extra`` appended to the note (``; ``-separated)."""
        if not extra:
            return self
        note = f"{self.note}; {extra}" if self.note else extra
        return replace(self, note=note)


@dataclass(frozen=True)
class NativeRaster:
    """Values of one variable on (a window of) the product's native grid.

    ``data`` is float32 (rows, cols) matching ``grid.shape``; NaN = missing;
    scale applied; units of models/features.py. Categorical layers keep their
    integer codes (as float32, NaN missing).

    ``lattice`` is the product's whole grid (global lattice, or the file's
    grid) and ``offset`` the (row, col) of ``grid`` in it: ``sample`` computes
    its nearest index against the lattice, so any two windows of one product
    give bit-identical values at a shared target pixel.
    """

    grid: Grid
    data: np.ndarray = field(repr=False)
    provenance: Provenance
    lattice: Grid | None = None
    offset: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or tuple(self.data.shape) != tuple(self.grid.shape):
            raise ValueError(
                f"data shape {self.data.shape} does not match grid shape {self.grid.shape}"
            )
        if self.lattice is not None:
            r0, c0 = self.offset
            h, w = self.grid.shape
            expect = self.lattice.window(r0, r0 + h, c0, c0 + w)
            px = min(abs(self.lattice.transform[0]), abs(self.lattice.transform[4]))
            off = max(
                abs(a - b) for a, b in zip(expect.transform, self.grid.transform, strict=True)
            )
            if expect.crs != self.grid.crs or off > 1e-6 * px:
                raise ValueError(
                    f"grid {self.grid!r} is not the window of lattice at {self.offset}"
                )
        if self.data.dtype != np.float32:
            object.__setattr__(self, "data", self.data.astype(np.float32))


@runtime_checkable
class Source(Protocol):
    """One covariate: where its files are and how to read a window of a date."""

    variable: str

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        """Values on the native grid covering ``bounds`` (with a margin); static sources
        ignore ``date``. Raises ``MissingInputError`` when nothing serves the date."""
        ...

    def available(self, date: dt.date | None) -> Provenance | None:
        """Which file(s) would serve ``date`` (no pixel read), or None."""
        ...


# -- helpers shared by the readers ------------------------------------------------------
@lru_cache(maxsize=64)
def _transformer(crs: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def to_native_bounds(bounds: Bounds, crs: str) -> Bounds:
    """``bounds`` (degrees) as (xmin, ymin, xmax, ymax) in ``crs``, edges densified."""
    west, south, east, north = (float(v) for v in bounds)
    if not (east > west and north > south):
        raise ValueError(f"bounds {bounds!r} are not (west, south, east, north)")
    if crs == "EPSG:4326":
        return west, south, east, north
    xmin, ymin, xmax, ymax = _transformer(crs).transform_bounds(
        west, south, east, north, densify_pts=21
    )
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        raise ValueError(f"bounds {bounds!r} cannot be projected to {crs[:40]}")
    return float(xmin), float(ymin), float(xmax), float(ymax)


def window_rows_cols(
    grid: Grid, bounds: Bounds | None, margin: int = DEFAULT_MARGIN_PIXELS
) -> tuple[int, int, int, int] | None:
    """(row0, row1, col0, col1) of ``grid`` covering ``bounds`` plus ``margin`` pixels.

    ``None`` bounds mean the whole grid; returns None when there is no overlap.
    """
    if bounds is None:
        return 0, grid.height, 0, grid.width
    xmin, ymin, xmax, ymax = to_native_bounds(bounds, grid.crs)
    rx, ry = grid.resolution
    padded = (xmin - margin * rx, ymin - margin * ry, xmax + margin * rx, ymax + margin * ry)
    try:
        return grid.window_of_bounds(padded)
    except GridError:
        return None


def apply_physical_range(
    data: np.ndarray,
    variable: str,
    path: object,
    *,
    tolerance: float = DEFAULT_RANGE_TOLERANCE,
    limits: tuple[float, float] | None = None,
) -> tuple[np.ndarray, int]:
    """Mask isolated out-of-range values in place (returns data, count); raise when many.

    See the module docstring for the rule. ``data`` is float32 with NaN missing.
    """
    lo, hi = limits if limits is not None else PHYSICAL_RANGE[variable]
    finite = np.isfinite(data)
    with np.errstate(invalid="ignore"):
        bad = finite & ((data < lo) | (data > hi))
    n_bad = int(bad.sum())
    if n_bad == 0:
        return data, 0
    n_valid = int(finite.sum())
    if n_bad > max(1, math.floor(tolerance * n_valid)):
        sample = data[bad][:3].tolist()
        raise OutOfRangeError(
            path,
            f"{variable}: {n_bad} of {n_valid} values outside the physical range "
            f"[{lo:g}, {hi:g}] (e.g. {', '.join(f'{v:g}' for v in sample)}); "
            "wrong units, scale or a corrupt file",
        )
    data[bad] = np.nan
    return data, n_bad


def range_note(n_masked: int, variable: str) -> str:
    """The provenance note for ``n_masked`` isolated out-of-range pixels set to NaN."""
    lo, hi = PHYSICAL_RANGE.get(variable, (math.nan, math.nan))
    return f"{n_masked} isolated value(s) outside [{lo:g}, {hi:g}] set to NaN" if n_masked else ""


def categorical_clean(data: np.ndarray, valid_codes: set[int] | range) -> tuple[np.ndarray, int]:
    """Codes not in ``valid_codes`` become NaN (returns data, how many were not NaN before)."""
    finite = np.isfinite(data)
    codes = np.fromiter(valid_codes, dtype=np.float64)
    ok = np.isin(data, codes)
    bad = finite & ~ok
    n = int(bad.sum())
    if n:
        data[bad] = np.nan
    return data, n
