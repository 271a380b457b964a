"""The extended feature set's inputs (pipeline.sources.derived) on small in-memory lattices.

Values are checked against hand computations, and every neighbourhood input against a
read over other bounds (a station's pixel gets the same value in the table and a tile).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import numpy as np
import pytest

from grids import Grid
from pipeline.sources import Catalog, sample
from pipeline.sources.base import MissingInputError, NativeRaster, Provenance, window_rows_cols
from pipeline.sources.derived import (
    API_DECAY,
    ApiSource,
    SeasonSource,
    SmapMemory,
    SmapMemorySource,
    SmapNeighbourhoodSource,
    TerrainSource,
    season,
)

DAY = dt.date(2020, 6, 10)
BOUNDS = (-97.5, 35.5, -97.3, 35.7)


class FakeSource:
    """A source over a geographic lattice with per-date arrays (None date: static)."""

    def __init__(
        self,
        variable: str,
        lattice: Grid,
        values: Callable[[dt.date | None], np.ndarray | None],
    ) -> None:
        self.variable = variable
        self.lattice = lattice
        self.values = values

    def available(self, date: dt.date | None) -> Provenance | None:
        if self.values(date) is None:
            return None
        name = f"{self.variable}_{date}.tif" if date else f"{self.variable}.tif"
        return Provenance(self.variable, (name,), "fake", date, 1 if date else None)

    def native(self, date: dt.date | None, bounds: tuple[float, float, float, float]):  # type: ignore[no-untyped-def]
        full = self.values(date)
        prov = self.available(date)
        if full is None or prov is None:
            raise MissingInputError("fake", "no file", variable=self.variable, date=date)
        win = window_rows_cols(self.lattice, bounds, margin=1)
        assert win is not None
        r0, r1, c0, c1 = win
        data = np.asarray(full[r0:r1, c0:c1], dtype=np.float32)
        if not np.isfinite(data).any():
            raise MissingInputError("fake", "no valid value", variable=self.variable, date=date)
        return NativeRaster(self.lattice.window(r0, r1, c0, c1), data, prov, self.lattice, (r0, c0))


def _lattice(res: float) -> Grid:
    return Grid.from_bounds((-99.0, 34.0, -96.0, 37.0), res, "EPSG:4326")


def _target(bounds: tuple[float, float, float, float] = BOUNDS) -> Grid:
    return Grid.from_bounds(bounds, 1 / 1200, "EPSG:4326")


def test_api_weights_each_day_and_counts_a_missing_day_zero() -> None:
    lat = _lattice(0.05)
    rain = {DAY - dt.timedelta(days=a): 1.0 + a for a in range(40)}
    del rain[DAY - dt.timedelta(days=3)]  # no CHIRPS file that day

    def values(d: dt.date | None) -> np.ndarray | None:
        return None if d not in rain else np.full(lat.shape, rain[d], np.float32)

    src = ApiSource(FakeSource("precip", lat, values))
    nat = src.native(DAY, BOUNDS)
    want = sum((1.0 + a) * API_DECAY**a for a in range(30) if DAY - dt.timedelta(days=a) in rain)
    assert np.allclose(nat.data, want, rtol=1e-6)
    prov = src.available(DAY)
    assert prov is not None and len(prov.files) == 29 and "1 of 30 days" in prov.note
    # The day itself needs its file.
    assert src.available(DAY - dt.timedelta(days=3)) is None
    with pytest.raises(MissingInputError, match="api"):
        src.native(DAY - dt.timedelta(days=3), BOUNDS)


def test_smap_persistence_takes_the_latest_valid_retrieval_and_its_age() -> None:
    lat = _lattice(0.1)
    h, w = lat.shape

    def values(d: dt.date | None) -> np.ndarray | None:
        assert d is not None
        age = (DAY - d).days
        if age == 1:  # yesterday: only the western half retrieved
            a = np.full((h, w), np.nan, np.float32)
            a[:, : w // 2] = 0.11
            return a
        if age == 2:
            return None  # no file
        if age == 3:
            return np.full((h, w), 0.33, np.float32)
        return np.full((h, w), 0.5, np.float32) if age == 0 else None

    memory = SmapMemory(FakeSource("smap", lat, values))
    prev = SmapMemorySource(memory, "smap_prev", "value")
    age = SmapMemorySource(memory, "smap_age", "age")
    target = Grid.from_bounds((-97.8, 35.0, -97.2, 35.4), 0.01, "EPSG:4326")
    p = sample(prev.native(DAY, target.bounds), target)
    a = sample(age.native(DAY, target.bounds), target)
    west = target.x_coords() < -97.5
    assert np.allclose(p[:, west], 0.11) and np.all(a[:, west] == 1.0)
    assert np.allclose(p[:, ~west], 0.33) and np.all(a[:, ~west] == 3.0)
    # Never today's value; with nothing in the 5 days before every pixel is missing.
    later = DAY + dt.timedelta(days=9)
    assert age.available(later).files == ()  # type: ignore[union-attr]
    with pytest.raises(MissingInputError, match="no valid retrieval in the 5 days"):
        prev.native(later, target.bounds)


def test_smap_neighbourhood_is_the_3x3_mean_whatever_window_was_read() -> None:
    lat = _lattice(0.1)
    rng = np.random.default_rng(4)
    field = rng.uniform(0.1, 0.4, lat.shape).astype(np.float32)
    field[12, 17] = np.nan
    src = SmapNeighbourhoodSource(FakeSource("smap", lat, lambda d: field))
    big = _target((-97.8, 35.2, -97.0, 35.9))
    one = big.window(300, 301, 400, 401)
    v_big = sample(src.native(DAY, big.bounds), big)[300, 400]
    v_one = sample(src.native(DAY, one.bounds), one)[0, 0]
    assert v_big.tobytes() == v_one.tobytes()
    # By hand: the cell under that pixel and its 8 neighbours (NaN skipped).
    x, y = one.x_coords()[0], one.y_coords()[0]
    rr, cc = lat.xy_to_rowcol(np.array([x]), np.array([y]))
    r, c = int(rr[0]), int(cc[0])
    box = field[r - 1 : r + 2, c - 1 : c + 2]
    assert v_one == pytest.approx(float(np.nanmean(box)), rel=1e-5)


def test_terrain_slope_and_tpi_of_a_plane_and_a_bump() -> None:
    lat = _lattice(1 / 1200)
    lon = lat.x_coords()[None, :]
    latc = lat.y_coords()[:, None]
    m = 6371008.8 * math.pi / 180.0
    # A plane rising 1 m per 100 m eastwards (slope atan(0.01)).
    plane = ((lon + 99.0) * m * np.cos(np.radians(latc)) * 0.01).astype(np.float32)
    bump = plane.copy()
    bump[1680:1683, 1920:1923] += 50.0  # a small hill at 35.6 N, 97.4 W
    t = _target()
    for field, check in ((plane, "plane"), (bump, "bump")):
        dem = FakeSource("elevation", lat, lambda d, f=field: f)
        slope = sample(TerrainSource(dem, "slope").native(None, t.bounds), t)
        tpi = sample(TerrainSource(dem, "tpi").native(None, t.bounds), t)
        assert np.isfinite(slope).all() and np.isfinite(tpi).all()
        if check == "plane":
            assert np.allclose(slope, math.degrees(math.atan(0.01)), atol=2e-3)
            assert np.allclose(tpi, 0.0, atol=0.05)
    x, y = lat.x_coords()[1921], lat.y_coords()[1681]
    rr, cc = t.xy_to_rowcol(np.array([x]), np.array([y]))
    r, c = int(rr[0]), int(cc[0])
    assert tpi[r, c] > 40.0  # the hill stands above its ~1 km surroundings
    # Same value from a 1-pixel read (the table) as from the tile read.
    one = t.window(r, r + 1, c, c + 1)
    dem = FakeSource("elevation", lat, lambda d: bump)
    assert sample(TerrainSource(dem, "tpi").native(None, one.bounds), one)[0, 0] == tpi[r, c]


def test_season_is_one_value_per_day() -> None:
    t = _target()
    s = sample(SeasonSource("doy_sin").native(DAY, t.bounds), t)
    c = sample(SeasonSource("doy_cos").native(DAY, t.bounds), t)
    want = season(DAY)
    assert np.allclose(s, want[0]) and np.allclose(c, want[1])
    assert season(dt.date(2021, 1, 1))[1] == pytest.approx(1.0, abs=1e-3)
    prov = SeasonSource("doy_sin").available(DAY)
    assert prov is not None and prov.composite_start == DAY  # a new value each day


def test_the_catalogue_builds_the_extended_inputs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    srcs = Catalog.from_root(tmp_path).sources("maps")
    assert isinstance(srcs["api"], ApiSource) and srcs["api"].precip is srcs["precip"]
    prev, age = srcs["smap_prev"], srcs["smap_age"]
    assert isinstance(prev, SmapMemorySource) and isinstance(age, SmapMemorySource)
    assert prev.memory is age.memory and prev.memory.smap is srcs["smap"]
    assert isinstance(srcs["slope"], TerrainSource) and srcs["slope"].elevation is srcs["elevation"]
    assert isinstance(srcs["doy_cos"], SeasonSource)
