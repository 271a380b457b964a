"""The ``extended`` feature set's inputs, computed from the products' own readers.

Each is a ``Source`` (``available``/``native``) built by the catalogue from the sources of
the variables it is ``derived_from`` (``models.variables``), so the training table and the
map tiles get it through the same ``native`` -> ``build_feature_block`` path as every
product:

- ``api``: antecedent precipitation index, sum over the day and the ``API_DAYS - 1`` days
  before of CHIRPS precipitation weighted ``API_DECAY ** age`` (a day without a CHIRPS
  file counts 0; noted in the provenance; the day itself must have a file);
- ``smap_prev`` / ``smap_age``: per SMAP cell the latest valid retrieval of the
  ``SMAP_MEMORY_DAYS`` days before the day, and its age in days (NaN where none);
- ``smap_nbr``: per SMAP cell the mean of the valid cells of its 3 x 3 neighbourhood;
- ``slope`` (degrees) and ``tpi`` (m, elevation minus its mean over ``TPI_RADIUS`` cells
  around) on the MERIT 3 arc-second lattice;
- ``doy_sin`` / ``doy_cos``: the season, one value per day.

Neighbourhood values are computed on the product's native lattice from a window read
with a pad of several cells beyond the requested bounds; the outer ring of the window
(where a neighbourhood would be cut) is set to NaN, so a cell's value never depends on
which window was read (a station's pixel gets the same value in the table and in a tile).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from grids import Grid
from pipeline.sources.base import (
    Bounds,
    MissingInputError,
    NativeRaster,
    Provenance,
    Source,
)

API_DAYS = 30
API_DECAY = 0.9
SMAP_MEMORY_DAYS = 5
TPI_RADIUS = 5
SMAP_PAD_DEG = 0.4  # > 3 EASE2 9 km cells at CONUS latitudes
MERIT_PAD_DEG = 0.01  # 12 MERIT 3 arc-second cells (> TPI_RADIUS + 1)
DAYS_PER_YEAR = 365.25
_CACHE = 96


def _pad(bounds: Bounds, deg: float) -> Bounds:
    w, s, e, n = bounds
    return (w - deg, max(s - deg, -90.0), e + deg, min(n + deg, 90.0))


def _blank_ring(data: np.ndarray, r: int) -> np.ndarray:
    """``data`` with its outer ``r`` rows/cols NaN (where a neighbourhood would be cut)."""
    out = data.copy()
    out[:r, :] = np.nan
    out[-r:, :] = np.nan
    out[:, :r] = np.nan
    out[:, -r:] = np.nan
    return out


def _box_mean(data: np.ndarray, r: int) -> np.ndarray:
    """Mean of the finite values in the (2r+1)^2 box around each cell (NaN where none)."""
    from scipy.ndimage import uniform_filter

    finite = np.isfinite(data)
    vals = np.where(finite, data, 0.0).astype(np.float64)
    size = 2 * r + 1
    s = uniform_filter(vals, size=size, mode="constant", cval=0.0)
    k = uniform_filter(finite.astype(np.float64), size=size, mode="constant", cval=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(k > 0.5 / size**2, s / np.where(k > 0, k, 1.0), np.nan)
    return np.asarray(mean, dtype=np.float32)


class _Lru:
    """A small least-recently-used cache of computed natives."""

    def __init__(self, size: int = _CACHE) -> None:
        self.size = size
        self.items: OrderedDict[object, object] = OrderedDict()

    def get(self, key: object) -> object | None:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        return None

    def put(self, key: object, value: object) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


def _native_or_none(src: Source, date: dt.date, bounds: Bounds) -> NativeRaster | None:
    """The native of ``date`` or None when no file serves it or it has no valid value."""
    if src.available(date) is None:
        return None
    try:
        return src.native(date, bounds)
    except MissingInputError:
        return None


def _same_window(a: NativeRaster, b: NativeRaster, what: str) -> None:
    if a.grid != b.grid:
        raise ValueError(f"{what}: windows of one product differ ({a.grid!r} != {b.grid!r})")


def _need_date(date: dt.date | None, variable: str) -> dt.date:
    if date is None:
        raise ValueError(f"{variable}: a daily input needs a date")
    return date


@dataclass
class ApiSource:
    """Antecedent precipitation index from the CHIRPS source (see the module docstring)."""

    precip: Source
    variable: str = "api"
    days: int = API_DAYS
    decay: float = API_DECAY
    _cache: _Lru = field(default_factory=_Lru, repr=False)

    def _history(self, date: dt.date) -> list[tuple[int, Provenance]]:
        out = []
        for age in range(self.days):
            prov = self.precip.available(date - dt.timedelta(days=age))
            if prov is not None:
                out.append((age, prov))
        return out

    def available(self, date: dt.date | None) -> Provenance | None:
        day = _need_date(date, self.variable)
        if self.precip.available(day) is None:
            return None
        hist = self._history(day)
        files = tuple(f for _, p in hist for f in p.files)
        missing = self.days - len(hist)
        note = f"{missing} of {self.days} days without CHIRPS (counted 0)" if missing else ""
        return Provenance(self.variable, files, "API(CHIRPS-2.0)", day, self.days, 0, note)

    def _day(self, date: dt.date, bounds: Bounds) -> NativeRaster | None:
        key = (date, bounds)
        hit = self._cache.get(key)
        if hit is None:
            hit = (_native_or_none(self.precip, date, bounds),)
            self._cache.put(key, hit)
        return hit[0]  # type: ignore[index,no-any-return]

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        day = _need_date(date, self.variable)
        prov = self.available(day)
        if prov is None:
            raise MissingInputError(
                "CHIRPS", "no CHIRPS file for the day", variable=self.variable, date=day
            )
        today = self._day(day, bounds)
        if today is None:
            raise MissingInputError(
                "CHIRPS", "no valid CHIRPS value", variable=self.variable, date=day
            )
        total = np.where(np.isfinite(today.data), today.data, np.nan).astype(np.float64)
        for age in range(1, self.days):
            nat = self._day(day - dt.timedelta(days=age), bounds)
            if nat is None:
                continue
            _same_window(today, nat, self.variable)
            total += np.where(np.isfinite(nat.data), nat.data, 0.0) * self.decay**age
        return NativeRaster(today.grid, total.astype(np.float32), prov, today.lattice, today.offset)


@dataclass
class SmapMemory:
    """Latest valid SMAP retrieval of the days before and its age, per SMAP cell."""

    smap: Source
    days: int = SMAP_MEMORY_DAYS
    _cache: _Lru = field(default_factory=_Lru, repr=False)

    def available(self, date: dt.date, variable: str) -> Provenance:
        """The files of the days looked at (none: every pixel is missing, not an error,
        as for a SMAP swath gap)."""
        files: list[str] = []
        for age in range(1, self.days + 1):
            prov = self.smap.available(date - dt.timedelta(days=age))
            if prov is not None:
                files.extend(prov.files)
        note = "" if files else f"no SPL3SMP_E file in the {self.days} days before"
        return Provenance(variable, tuple(files), "SPL3SMP_E persistence", date, self.days, 0, note)

    def _read(self, date: dt.date, bounds: Bounds) -> NativeRaster | None:
        key = ("day", date, bounds)
        hit = self._cache.get(key)
        if hit is None:
            hit = (_native_or_none(self.smap, date, bounds),)
            self._cache.put(key, hit)
        return hit[0]  # type: ignore[index,no-any-return]

    def compute(self, date: dt.date, bounds: Bounds) -> tuple[NativeRaster, np.ndarray] | None:
        """(native of the latest earlier retrieval, its age in days) or None when none."""
        key = ("memory", date, bounds)
        hit = self._cache.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
        first: NativeRaster | None = None
        prev = None
        age = None
        for d in range(1, self.days + 1):
            nat = self._read(date - dt.timedelta(days=d), bounds)
            if nat is None:
                continue
            if first is None:
                first = nat
                prev = np.full(nat.data.shape, np.nan, dtype=np.float32)
                age = np.full(nat.data.shape, np.nan, dtype=np.float32)
            _same_window(first, nat, "smap_prev")
            assert prev is not None and age is not None
            new = np.isnan(prev) & np.isfinite(nat.data)
            prev[new] = nat.data[new]
            age[new] = float(d)
        if first is None or prev is None or age is None:
            return None
        out = (NativeRaster(first.grid, prev, first.provenance, first.lattice, first.offset), age)
        self._cache.put(key, out)
        return out


@dataclass
class SmapMemorySource:
    """``smap_prev`` (``what="value"``) or ``smap_age`` (``"age"``) of a ``SmapMemory``."""

    memory: SmapMemory
    variable: str
    what: Literal["value", "age"]

    def available(self, date: dt.date | None) -> Provenance:
        return self.memory.available(_need_date(date, self.variable), self.variable)

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        day = _need_date(date, self.variable)
        prov = self.available(day)
        got = self.memory.compute(day, bounds)
        if got is None:
            raise MissingInputError(
                "SPL3SMP_E",
                f"no valid retrieval in the {self.memory.days} days before",
                variable=self.variable,
                date=day,
            )
        nat, age = got
        data = nat.data if self.what == "value" else age
        return NativeRaster(nat.grid, data, prov, nat.lattice, nat.offset)


@dataclass
class SmapNeighbourhoodSource:
    """``smap_nbr``: mean of the valid SMAP cells of the 3 x 3 neighbourhood."""

    smap: Source
    variable: str = "smap_nbr"
    _cache: _Lru = field(default_factory=_Lru, repr=False)

    def available(self, date: dt.date | None) -> Provenance | None:
        prov = self.smap.available(_need_date(date, self.variable))
        if prov is None:
            return None
        return Provenance(self.variable, prov.files, "SPL3SMP_E 3x3 mean", prov.composite_start)

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        day = _need_date(date, self.variable)
        key = (day, bounds)
        hit = self._cache.get(key)
        if isinstance(hit, NativeRaster):
            return hit
        nat = self.smap.native(day, _pad(bounds, SMAP_PAD_DEG))
        prov = self.available(day) or nat.provenance
        data = _blank_ring(_box_mean(nat.data, 1), 1)
        out = NativeRaster(nat.grid, data, prov, nat.lattice, nat.offset)
        self._cache.put(key, out)
        return out


def _slope_tpi(grid: Grid, elev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope (degrees) and TPI (m) of ``elev`` on ``grid`` (geographic or metric)."""
    rx, ry = grid.resolution
    rx, ry = abs(rx), abs(ry)
    if grid.is_geographic:
        lat = grid.y_coords().astype(np.float64)[:, None]
        m = 6371008.8 * math.pi / 180.0
        dx = rx * m * np.cos(np.radians(lat))
        dy = ry * m
    else:
        dx, dy = np.float64(rx), ry
    z = elev.astype(np.float64)
    gy, gx = np.gradient(z)
    slope = np.degrees(np.arctan(np.hypot(gx / dx, gy / dy)))
    slope = _blank_ring(slope.astype(np.float32), 1)
    tpi = _blank_ring((z - _box_mean(elev, TPI_RADIUS)).astype(np.float32), TPI_RADIUS)
    return slope, tpi


@dataclass
class TerrainSource:
    """``slope`` or ``tpi`` of the MERIT DEM source on its own 3 arc-second lattice."""

    elevation: Source
    variable: str
    _cache: _Lru = field(default_factory=lambda: _Lru(8), repr=False)

    def available(self, date: dt.date | None) -> Provenance | None:
        prov = self.elevation.available(None)
        if prov is None:
            return None
        return Provenance(self.variable, prov.files, f"{self.variable}(MERIT-DEM)")

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        hit = self._cache.get(bounds)
        if isinstance(hit, NativeRaster):
            return hit
        nat = self.elevation.native(None, _pad(bounds, MERIT_PAD_DEG))
        slope, tpi = _slope_tpi(nat.grid, nat.data)
        prov = self.available(None) or nat.provenance
        data = slope if self.variable == "slope" else tpi
        out = NativeRaster(nat.grid, data, prov, nat.lattice, nat.offset)
        self._cache.put(bounds, out)
        return out


def season(date: dt.date) -> tuple[float, float]:
    """(sin, cos) of 2 pi day-of-year / 365.25."""
    a = 2.0 * math.pi * date.timetuple().tm_yday / DAYS_PER_YEAR
    return math.sin(a), math.cos(a)


@dataclass
class SeasonSource:
    """``doy_sin`` / ``doy_cos``: one value per day on a one-cell grid over the bounds."""

    variable: str

    def available(self, date: dt.date | None) -> Provenance | None:
        day = _need_date(date, self.variable)
        return Provenance(self.variable, (), "day of year", day, 1)

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        day = _need_date(date, self.variable)
        s, c = season(day)
        w, so, e, n = _pad(bounds, 1.0)
        grid = Grid("EPSG:4326", (e - w, 0.0, w, 0.0, -(n - so), n), (1, 1))
        value = s if self.variable == "doy_sin" else c
        data = np.full((1, 1), value, dtype=np.float32)
        return NativeRaster(grid, data, Provenance(self.variable, (), "day of year", day, 1))
