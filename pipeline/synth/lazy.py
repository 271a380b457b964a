"""Lazy synthetic covariate sources at CONUS scale, for benchmarks (no file is written).

``lazy_catalog(sources_config)`` returns a catalog whose ``sources(mode)`` are
``pipeline.sources.base.Source`` objects that generate a ``NativeRaster``
window on demand, *on the products' native lattices* (SMAP EASE-Grid 2.0 9 km,
MODIS sinusoidal 250 m / 500 m / 1 km, CHIRPS 0.05 degree, SoilGrids
Homolosine 250 m, MERIT 3", Koeppen 1/120 degree), with the global lattice and
the window's offset set as the real readers set them. So the real tile task,
static stack, nearest-index gather, feature block, inference, encoding, cube
writes and day publication run unchanged on any region up to all of CONUS; only
the file reading is replaced by generation.

Why not ``daily_tile``/``static_tile`` of ``pipeline.synth.world``: they make the
90 m truth and its physics (~1 s per 1200 x 1200 tile), which would then have
to be aggregated to each native lattice: the benchmark would mostly measure the
world generator. Here each value is a cheap deterministic field of the native
lattice's absolute (row, col) and the date: a sum of separable sines (outer
products of 1-D arrays) plus a hashed per-pixel texture, so adjacent windows
agree exactly and nothing is stored. Time spent generating is counted per
process (``generation_seconds``) so benchmarks can report it apart.

Land and sea: land cover (MCD12Q1 codes) is water (17) outside an approximate
CONUS outline (a hand-drawn ~90-vertex polygon, +-20 km; Great Lakes counted as
land), with ~2 % inland water and ~2 % urban hashed per 500 m cell inside; SMAP
is NaN over that sea. The other products have values everywhere (the tile task
never predicts water pixels anyway).

The configuration travels in ``[sources] root`` as ``lazy:seed=<int>``, so the
catalog factory is a plain module function (picklable, cached per worker).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from grids import Grid
from grids.named import named_grid
from pipeline.sources.base import (
    Bounds,
    MissingInputError,
    NativeRaster,
    Provenance,
    window_rows_cols,
)

ROOT_PREFIX = "lazy:"

# Approximate CONUS outline (lon, lat), clockwise from the Pacific north-west.
CONUS_OUTLINE: tuple[tuple[float, float], ...] = (
    (-124.7, 48.4), (-123.2, 48.2), (-122.8, 49.0), (-95.2, 49.0), (-95.2, 49.4),
    (-94.8, 48.7), (-93.0, 48.6), (-91.5, 48.1), (-89.6, 48.0), (-88.0, 48.0),
    (-86.0, 47.0), (-84.6, 46.5), (-83.6, 46.1), (-82.4, 45.3), (-82.4, 43.0),
    (-83.1, 42.0), (-81.0, 42.3), (-79.0, 42.9), (-79.0, 43.4), (-76.3, 43.6),
    (-76.3, 44.2), (-75.0, 45.0), (-71.5, 45.0), (-70.8, 45.4), (-70.0, 46.7),
    (-69.2, 47.4), (-67.8, 47.1), (-67.8, 45.7), (-67.0, 44.8), (-68.5, 44.2),
    (-70.2, 43.6), (-70.8, 42.6), (-70.0, 41.7), (-71.9, 41.3), (-73.7, 40.9),
    (-74.0, 40.6), (-74.1, 39.7), (-75.0, 38.8), (-75.5, 38.0), (-75.9, 37.0),
    (-75.6, 35.7), (-75.5, 35.2), (-76.6, 34.7), (-77.9, 33.8), (-79.2, 33.2),
    (-80.4, 32.5), (-81.0, 31.8), (-81.4, 30.7), (-81.3, 30.0), (-80.6, 28.4),
    (-80.1, 26.9), (-80.1, 25.8), (-80.4, 25.2), (-81.1, 25.1), (-81.8, 26.1),
    (-82.7, 27.9), (-82.7, 28.8), (-83.7, 29.9), (-84.4, 30.0), (-85.4, 29.7),
    (-86.5, 30.4), (-88.1, 30.4), (-89.6, 30.2), (-89.4, 29.0), (-90.2, 29.1),
    (-91.3, 29.3), (-92.3, 29.6), (-93.8, 29.7), (-94.7, 29.3), (-95.4, 28.8),
    (-96.8, 28.0), (-97.4, 27.3), (-97.2, 26.0), (-97.4, 25.9), (-99.1, 26.4),
    (-99.5, 27.5), (-100.3, 28.3), (-101.4, 29.8), (-102.7, 29.7), (-103.2, 29.0),
    (-104.4, 29.6), (-105.0, 30.7), (-106.5, 31.8), (-108.2, 31.8), (-108.2, 31.3),
    (-111.1, 31.3), (-114.8, 32.5), (-117.1, 32.5), (-117.3, 33.2), (-118.5, 34.0),
    (-119.6, 34.4), (-120.6, 34.6), (-120.6, 35.2), (-121.9, 36.6), (-122.5, 37.8),
    (-123.0, 38.3), (-123.7, 39.0), (-123.8, 39.8), (-124.4, 40.4), (-124.2, 41.9),
    (-124.5, 42.8), (-124.1, 44.0), (-124.0, 46.2), (-124.1, 47.0), (-124.7, 48.4),
)  # fmt: skip

MASK_RES_DEG = 0.05  # cell of the rasterised outline (degrees)
MASK_BOUNDS = (-126.0, 23.0, -65.0, 51.0)  # west, south, east, north (degrees)

# IGBP codes (models/features.py): a few land classes, urban and water.
_LAND_CLASSES = np.array([4, 8, 9, 10, 10, 12, 12, 12, 14, 10], dtype=np.float32)
LC_URBAN, LC_WATER = 13.0, 17.0

_GEN_LOCK = threading.Lock()
_GEN_SECONDS = [0.0]


def generation_seconds() -> float:
    """Seconds this process has spent generating lazy windows (all sources, all threads)."""
    with _GEN_LOCK:
        return _GEN_SECONDS[0]


def reset_generation_seconds() -> None:
    """Zero the per-process generation clock."""
    with _GEN_LOCK:
        _GEN_SECONDS[0] = 0.0


def _count(seconds: float) -> None:
    with _GEN_LOCK:
        _GEN_SECONDS[0] += seconds


@functools.cache
def conus_mask() -> tuple[Grid, np.ndarray]:
    """The outline rasterised at 0.05 degree: (grid, bool (rows, cols) True on land)."""
    from matplotlib.path import Path as MplPath

    grid = Grid.from_bounds(MASK_BOUNDS, MASK_RES_DEG, "EPSG:4326")
    x, y = grid.pixel_centres()
    inside = MplPath(np.asarray(CONUS_OUTLINE)).contains_points(
        np.column_stack([x.ravel(), y.ravel()])
    )
    return grid, inside.reshape(grid.shape)


def on_land(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where (lon, lat) degrees fall inside the CONUS outline (0.05 degree raster)."""
    grid, mask = conus_mask()
    west, _, _, north = grid.bounds
    col = np.floor((np.asarray(lon, dtype=np.float64) - west) / MASK_RES_DEG).astype(np.int64)
    row = np.floor((north - np.asarray(lat, dtype=np.float64)) / MASK_RES_DEG).astype(np.int64)
    row, col = np.broadcast_arrays(row, col)
    ok = (row >= 0) & (row < grid.height) & (col >= 0) & (col < grid.width)
    out = np.zeros(row.shape, dtype=bool)
    out[ok] = mask[row[ok], col[ok]]
    return out


def _hash01(key: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) float32 per (row, col), a cheap integer hash (broadcasting 1-D axes)."""
    r = (rows.astype(np.uint32) * np.uint32(0x9E3779B1))[:, None]
    c = (cols.astype(np.uint32) * np.uint32(0x85EBCA77))[None, :]
    with np.errstate(over="ignore"):
        h = (r ^ c) + np.uint32(key * 0x27D4EB2F & 0xFFFFFFFF)
        h ^= h >> np.uint32(15)
        h *= np.uint32(0x2C1B3C6D)
        h ^= h >> np.uint32(12)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def smooth_field(
    key: int, rows: np.ndarray, cols: np.ndarray, cell_m: float, phase: float = 0.0
) -> np.ndarray:
    """A smooth field in [-1, 1] (float32 (len(rows), len(cols))) of absolute lattice indices.

    Sum of three separable sine products with wavelengths ~400, 120 and 30 km
    (converted to cells with ``cell_m``, metres or equivalent), plus 10 % hashed
    per-pixel texture; ``phase`` (radians) moves it in time.
    """
    rng = np.random.default_rng(key)
    out = np.zeros((rows.size, cols.size), dtype=np.float32)
    r = rows.astype(np.float64)
    c = cols.astype(np.float64)
    for weight, wavelength_m in ((0.5, 400e3), (0.25, 120e3), (0.15, 30e3)):
        k = 2.0 * math.pi * cell_m / wavelength_m
        p1, p2, k1, k2 = rng.uniform(0, 2 * math.pi, 2).tolist() + rng.uniform(0.7, 1.3, 2).tolist()
        fr = np.sin(r * k * k1 + p1 + phase).astype(np.float32)
        fc = np.cos(c * k * k2 + p2 - 0.5 * phase).astype(np.float32)
        out += np.float32(weight) * np.multiply.outer(fr, fc)
    out += np.float32(0.2) * (_hash01(key, rows, cols) - np.float32(0.5))
    return out


def _day_phase(date: dt.date | None) -> float:
    return 0.0 if date is None else 2.0 * math.pi * date.toordinal() / 23.0


def _lonlat(lattice: Grid, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of the cell centres of rows x cols (2-D), for the lattices we generate."""
    a, _, c, _, e, f = lattice.transform
    x = c + (cols.astype(np.float64) + 0.5) * a
    y = f + (rows.astype(np.float64) + 0.5) * e
    if lattice.crs == "EPSG:4326":
        return np.broadcast_to(x[None, :], (rows.size, cols.size)), np.broadcast_to(
            y[:, None], (rows.size, cols.size)
        )
    from pyproj import Transformer

    tr = Transformer.from_crs(lattice.crs, "EPSG:4326", always_xy=True)
    xx, yy = np.meshgrid(x, y)
    lon, lat = tr.transform(xx, yy)
    return np.asarray(lon), np.asarray(lat)


@dataclass(frozen=True)
class Field:
    """How one variable is generated: lattice, value range, time behaviour, product name."""

    variable: str
    product: str
    lattice_name: str
    cell_m: float
    lo: float
    hi: float
    period_days: int | None  # None: static; 1 daily; 8/16 composites; 366 yearly
    key: int


def _modis_lattice(short: str) -> Grid:
    from pipeline.sources.modis import PRODUCTS

    return PRODUCTS[short].global_grid()


@functools.cache
def _lattice(name: str) -> Grid:
    if name.startswith("modis:"):
        return _modis_lattice(name.split(":", 1)[1])
    return named_grid(name)


FIELDS: dict[str, Field] = {
    f.variable + ("@" + f.product if f.variable in ("ndvi", "lst") else ""): f
    for f in (
        Field("smap", "SPL3SMP_E", "ease2-m09", 9008.0, 0.05, 0.45, 1, 11),
        Field("ndvi", "MOD13Q1", "modis:MOD13Q1", 231.7, 0.1, 0.85, 16, 12),
        Field("ndvi", "MOD13A1", "modis:MOD13A1", 463.3, 0.1, 0.85, 16, 12),
        Field("lst", "MOD21A1D", "modis:MOD21A1D", 926.6, 5.0, 40.0, 1, 13),
        Field("lst", "MOD11A2", "modis:MOD11A2", 926.6, 5.0, 40.0, 8, 13),
        Field("precip", "CHIRPS-2.0", "chirps-p05", 5000.0, 0.0, 12.0, 1, 14),
        Field("et", "MOD16A2", "modis:MOD16A2", 463.3, 0.2, 5.0, 8, 15),
        Field("sand", "SoilGrids-2.0", "soilgrids-250m", 250.0, 5.0, 80.0, None, 16),
        Field("clay", "SoilGrids-2.0", "soilgrids-250m", 250.0, 5.0, 50.0, None, 17),
        Field("ph", "SoilGrids-2.0", "soilgrids-250m", 250.0, 5.0, 8.5, None, 18),
        Field("elevation", "MERIT-DEM", "merit-3s", 92.6, 0.0, 3000.0, None, 19),
        Field("koppen", "Beck-KG-V1", "koppen-1km", 926.0, 0.0, 1.0, None, 20),
        Field("landcover", "MCD12Q1", "modis:MCD12Q1", 463.3, 0.0, 1.0, 366, 21),
    )
}

_KOPPEN = np.array([4, 5, 6, 7, 8, 14, 15, 16, 25, 26], dtype=np.float32)


def composite_start(date: dt.date, period_days: int) -> dt.date:
    """First day of the MODIS composite holding ``date`` (periods restart on 1 January)."""
    if period_days <= 1:
        return date
    jan1 = dt.date(date.year, 1, 1)
    if period_days >= 366:
        return jan1
    return jan1 + dt.timedelta(days=((date - jan1).days // period_days) * period_days)


class LazySource:
    """One variable generated on demand on its native lattice (``Source`` protocol)."""

    def __init__(self, spec: Field, seed: int, margin: int = 2) -> None:
        self.variable = spec.variable
        self.spec = spec
        self.seed = int(seed)
        self.margin = margin

    def __repr__(self) -> str:
        return f"LazySource({self.variable!r}, {self.spec.product}, seed={self.seed})"

    def _prov(self, date: dt.date | None) -> Provenance:
        s = self.spec
        uri = f"lazy://{s.product}/{s.variable}"
        if s.period_days is None:
            return Provenance(s.variable, (uri,), s.product)
        assert date is not None
        start = composite_start(date, s.period_days)
        days = min(s.period_days, 365)
        return Provenance(
            s.variable, (f"{uri}/{start.isoformat()}",), s.product, start, days, 0, "synthetic"
        )

    def available(self, date: dt.date | None) -> Provenance | None:
        if self.spec.period_days is not None and date is None:
            return None
        return self._prov(date)

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        t0 = time.perf_counter()
        s = self.spec
        lattice = _lattice(s.lattice_name)
        rc = window_rows_cols(lattice, bounds, self.margin)
        if rc is None:
            raise MissingInputError(f"lazy://{s.product}", f"bounds {bounds} off the lattice")
        if s.period_days is not None and date is None:
            raise ValueError(f"{s.product} is temporal: a date is required")
        r0, r1, c0, c1 = rc
        rows = np.arange(r0, r1)
        cols = np.arange(c0, c1)
        start = composite_start(date, s.period_days) if date and s.period_days else None
        key = (self.seed * 1000003 + s.key) & 0x7FFFFFFF
        phase = _day_phase(start)
        if s.variable in ("landcover", "koppen", "smap"):
            data = self._coded(s, key, lattice, rows, cols, phase)
        else:
            u = smooth_field(key, rows, cols, s.cell_m, phase)
            data = np.float32(s.lo) + np.float32(0.5 * (s.hi - s.lo)) * (u + np.float32(1.0))
            np.clip(data, s.lo, s.hi, out=data)
        raster = NativeRaster(
            lattice.window(r0, r1, c0, c1), data, self._prov(date), lattice, (r0, c0)
        )
        _count(time.perf_counter() - t0)
        return raster

    def _coded(
        self, s: Field, key: int, lattice: Grid, rows: np.ndarray, cols: np.ndarray, phase: float
    ) -> np.ndarray:
        if s.variable == "koppen":
            u = smooth_field(key, rows, cols, s.cell_m)
            idx = np.clip(((u + 1.0) * 5.0).astype(np.int64), 0, _KOPPEN.size - 1)
            return _KOPPEN[idx]
        lon, lat = _lonlat(lattice, rows, cols)
        land = on_land(lon, lat)
        if s.variable == "smap":
            u = smooth_field(key, rows, cols, s.cell_m, phase)
            data = np.float32(s.lo) + np.float32(0.5 * (s.hi - s.lo)) * (u + np.float32(1.0))
            data[~land] = np.nan
            return data.astype(np.float32)
        u = smooth_field(key, rows, cols, s.cell_m)
        idx = np.clip(((u + 1.0) * 5.0).astype(np.int64), 0, _LAND_CLASSES.size - 1)
        data = _LAND_CLASSES[idx]
        h = _hash01(key + 7, rows, cols)
        data[h < 0.02] = LC_URBAN
        data[h > 0.98] = LC_WATER
        data[~land] = LC_WATER
        return data


class LazyCatalog:
    """Every covariate of both modes as lazy sources (``Catalog``-like: ``sources(mode)``)."""

    def __init__(self, seed: int = 0, margin: int = 2) -> None:
        self.seed = int(seed)
        self.margin = margin
        self._sources: dict[str, dict[str, Any]] = {}

    def sources(self, mode: str = "maps") -> dict[str, Any]:
        """{variable: Source} of ``mode`` (maps: MOD13Q1, MOD21A1D; training: MOD13A1, MOD11A2)."""
        if mode in self._sources:
            return self._sources[mode]
        from pipeline.sources.texture import TextureSource

        ndvi, lst = ("MOD13Q1", "MOD21A1D") if mode == "maps" else ("MOD13A1", "MOD11A2")
        out: dict[str, Any] = {}
        for name in ("smap", "precip", "et", "sand", "clay", "ph", "elevation", "koppen"):
            out[name] = LazySource(FIELDS[name], self.seed, self.margin)
        out["landcover"] = LazySource(FIELDS["landcover"], self.seed, self.margin)
        out["ndvi"] = LazySource(FIELDS[f"ndvi@{ndvi}"], self.seed, self.margin)
        out["lst"] = LazySource(FIELDS[f"lst@{lst}"], self.seed, self.margin)
        out["texture"] = TextureSource(out["sand"], out["clay"])
        self._sources[mode] = out
        return out


def lazy_root(seed: int = 0) -> str:
    """The ``[sources] root`` value that selects the lazy world of ``seed``."""
    return f"{ROOT_PREFIX}seed={int(seed)}"


def lazy_catalog(sources: Any) -> LazyCatalog:
    """Catalog factory for ``pipeline.run.build_plan(catalog_factory=...)``.

    Reads the seed from ``sources.root`` (``lazy:seed=<int>``; anything else: seed 0).
    """
    root = str(getattr(sources, "root", "") or "")
    seed = 0
    if root.startswith(ROOT_PREFIX):
        for part in root[len(ROOT_PREFIX) :].split(","):
            k, _, v = part.partition("=")
            if k.strip() == "seed" and v.strip():
                seed = int(v)
    margin = int(getattr(sources, "margin_pixels", 2))
    return LazyCatalog(seed, margin)
