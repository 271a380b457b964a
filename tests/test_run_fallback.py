"""Per-pixel fallback chains: kernels, and a day made from a fake world with gaps.

The fake world (analytic fields on coarse lattices, through the real ``NativeRaster`` /
``sample`` / ``run_day`` path, in this process) has a SMAP swath gap over a band of the
region on the day and the day before, and a full retrieval two days before; the daily
LST has a cloud band that the 8-day composite (the training-mode LST) fills.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grids import Grid
from models.features import FEATURE_NAMES
from pipeline.config import Settings
from pipeline.cube import FALLBACK_BITS, FLAG_BITS, open_cube, pack_u16
from pipeline.cube.encoding import (
    DATA_VARS,
    FILL_AGE,
    decode_fallback,
    dtype_of,
    fill_of,
    variable_attrs,
)
from pipeline.run import build_plan, run_day, tile_features
from pipeline.run.fallback import AGE_NONE, first_valid, level_bits, newest_valid
from pipeline.run.static import read_static
from pipeline.sources.base import MissingInputError, NativeRaster, Provenance, window_rows_cols

ARCSEC3 = 1.0 / 1200.0
GRID = Grid("EPSG:4326", (ARCSEC3, 0.0, -97.6, 0.0, -ARCSEC3, 36.0), (128, 128))
DAY = dt.date(2020, 6, 10)
TODAY = dt.date(2020, 7, 10)
SMAP_LATTICE = Grid("EPSG:4326", (0.01, 0.0, -98.0, 0.0, -0.01, 37.0), (200, 200))
KM_LATTICE = Grid("EPSG:4326", (0.01, 0.0, -98.0, 0.0, -0.01, 37.0), (200, 200))
SOIL_LATTICE = Grid("EPSG:4326", (1 / 240, 0.0, -98.0, 0.0, -1 / 240, 37.0), (960, 960))
# SMAP per age (days before DAY): spatially constant, so the serving day is plain.
SMAP_BY_AGE = {0: 0.30, 1: 0.25, 2: 0.20, 3: 0.15}
GAP_WEST, GAP_EAST = -97.58, -97.56  # SMAP gap on DAY and DAY-1 (both); DAY-2 is whole
CLOUD_WEST, CLOUD_EAST = -97.54, -97.52  # daily LST cloud band on DAY


def _in(x: np.ndarray, w: float, e: float) -> np.ndarray:
    return (x >= w) & (x < e)


def _field(var: str, x: np.ndarray, y: np.ndarray, date: dt.date | None) -> np.ndarray:
    u, v = x + 97.5, y - 35.9
    if var == "smap":
        assert date is not None
        age = (DAY - date).days
        out = np.full(x.shape, SMAP_BY_AGE.get(age, 0.1))
        if age in (0, 1):
            out[_in(x, GAP_WEST, GAP_EAST)] = np.nan
        return out
    if var == "lst":
        out = 25.0 + 5.0 * u
        out[_in(x, CLOUD_WEST, CLOUD_EAST)] = np.nan
        return out
    if var == "lst8":
        return 20.0 + 5.0 * u
    if var == "ndvi":
        return 0.3 + 0.2 * np.cos(20 * v)
    if var == "precip":
        return np.maximum(0.0, 3.0 * np.sin(30 * u * v))
    if var == "et":
        return 1.0 + 0.5 * np.cos(10 * u)
    if var == "sand":
        return 40.0 + 20.0 * np.sin(15 * u)
    if var == "clay":
        return 20.0 + 10.0 * np.cos(12 * v)
    if var == "ph":
        return 6.5 + 0.5 * u
    if var == "elevation":
        return 300.0 + 100.0 * v
    if var == "landcover":
        lc = np.full(x.shape, 12.0)
        lc[(u + 0.04) ** 2 + (v - 0.02) ** 2 < 0.01**2] = 17.0  # a pond
        return lc
    if var == "koppen":
        return np.full(x.shape, 14.0)
    raise KeyError(var)


@dataclass(frozen=True)
class _Product:
    period_days: int


@dataclass(frozen=True)
class FakeSource:
    variable: str
    lattice: Grid
    field: str = ""
    static: bool = False
    period: int = 1
    first: dt.date = DAY - dt.timedelta(days=20)

    @property
    def product(self) -> _Product:
        return _Product(self.period)

    def _start(self, date: dt.date) -> dt.date:
        if self.variable == "landcover":
            return dt.date(date.year, 1, 1)
        return date - dt.timedelta(days=(date - self.first).days % self.period)

    def available(self, date: dt.date | None) -> Provenance | None:
        if self.static:
            return Provenance(self.variable, (f"fake/{self.variable}.tif",), "FAKE")
        assert date is not None
        if date > DAY or date < self.first:
            return None
        start = self._start(date)
        name = self.field or self.variable
        return Provenance(
            self.variable, (f"fake/{name}/{start}.tif",), "FAKE", start, self.period, 0
        )

    def native(self, date: dt.date | None, bounds: tuple[float, float, float, float]) -> Any:
        prov = self.available(None if self.static else date)
        if prov is None:
            raise MissingInputError(f"fake/{self.variable}", "absent", variable=self.variable)
        rc = window_rows_cols(self.lattice, bounds, 2)
        assert rc is not None
        win = self.lattice.window(*rc)
        x, y = win.pixel_centres()
        data = _field(self.field or self.variable, x, y, prov.composite_start).astype(np.float32)
        return NativeRaster(win, data, prov, lattice=self.lattice, offset=(rc[0], rc[2]))


class FakeCatalog:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def sources(self, mode: str = "maps") -> dict[str, FakeSource]:
        lst = (
            FakeSource("lst", KM_LATTICE)
            if mode == "maps"
            else FakeSource("lst", KM_LATTICE, field="lst8", period=8)
        )
        out = {
            "smap": FakeSource("smap", SMAP_LATTICE),
            "ndvi": FakeSource("ndvi", KM_LATTICE, period=16),
            "lst": lst,
            "precip": FakeSource("precip", KM_LATTICE),
            "et": FakeSource("et", KM_LATTICE, period=8),
            "landcover": FakeSource("landcover", SOIL_LATTICE),
        }
        for var in ("sand", "clay", "ph", "elevation", "koppen"):
            out[var] = FakeSource(var, SOIL_LATTICE, static=True)
        return out


@dataclass(frozen=True)
class _Pred:
    mean: np.ndarray
    sd: np.ndarray
    spread: np.ndarray


class FakeEnsemble:
    """A fixed float32 formula: the mean follows SMAP closely, and LST and precip a little."""

    manifest_hash = "fa" * 32
    needs_categoricals = False

    def predict(self, x: np.ndarray, cats: np.ndarray | None = None) -> _Pred:
        x = np.asarray(x, dtype=np.float32)
        mean = np.float32(0.02) + np.float32(0.8) * x[:, 0] + np.float32(0.001) * x[:, 2]
        sd = np.full(len(x), 0.02, dtype=np.float32)
        return _Pred(mean.astype(np.float32), sd, (sd / 2).astype(np.float32))


def fake_loader(model_dir: str) -> FakeEnsemble:
    return FakeEnsemble()


def _settings(root: Path, **sources: Any) -> Settings:
    return Settings(
        grid={"name": "conus-90m", "tile_size": 64},
        output={"store": str(root), "chunk_size": 64, "first_year": 2020},
        models={"dir": str(root / "models"), "arch": "dense"},
        sources=sources,
    )


def _make(root: Path, **sources: Any) -> tuple[Any, Any]:
    settings = _settings(root, **sources)
    plan = build_plan(
        settings,
        model_dir=str(root / "models" / "dense"),
        catalog_factory=FakeCatalog,
        model_loader=fake_loader,
        grid=GRID,
    )
    res = run_day(settings, DAY, client=None, plan=plan, today=TODAY)
    return plan, res


def _col(lon: float) -> int:
    return int((lon - GRID.transform[2]) / ARCSEC3)


# -- kernels ----------------------------------------------------------------------------------
def test_first_valid_takes_the_first_finite_level_per_pixel() -> None:
    nan = np.nan
    a = np.array([[1.0, nan], [nan, nan]], dtype=np.float32)
    b = np.array([[9.0, 2.0], [nan, nan]], dtype=np.float32)
    c = np.array([[9.0, 9.0], [3.0, nan]], dtype=np.float32)
    values, level = first_valid([a, None, b, c], (2, 2))
    np.testing.assert_array_equal(values, [[1.0, 2.0], [3.0, nan]])
    np.testing.assert_array_equal(level, [[0, 2], [3, -1]])
    only = np.array([[True, False], [True, True]])
    values, level = first_valid([a, b, c], (2, 2), need=only)
    np.testing.assert_array_equal(level, [[0, -1], [2, -1]])
    assert np.isnan(values[0, 1])
    np.testing.assert_array_equal(level_bits(level, [0, 4, 8]), [[0, 0], [8, 0]])
    with pytest.raises(ValueError, match="level 0"):
        first_valid([np.zeros((3, 2))], (2, 2))


def test_newest_valid_keeps_the_age_and_respects_the_maximum() -> None:
    nan = np.nan
    by_age = {
        0: np.array([[0.3, nan, nan]], dtype=np.float32),
        2: np.array([[0.1, 0.2, nan]], dtype=np.float32),
        3: np.array([[0.1, 0.1, 0.15]], dtype=np.float32),
    }
    values, age = newest_valid(by_age, (1, 3), max_age=3)
    np.testing.assert_array_equal(values, np.array([[0.3, 0.2, 0.15]], dtype=np.float32))
    np.testing.assert_array_equal(age, [[0, 2, 3]])
    values, age = newest_valid(by_age, (1, 3), max_age=2)
    np.testing.assert_array_equal(age, [[0, 2, AGE_NONE]])
    assert np.isnan(values[0, 2]) and age.dtype == np.uint8


def test_cube_layers_are_cf_flag_and_age_variables() -> None:
    assert {"smap_age_days", "input_fallback"} <= set(DATA_VARS)
    assert dtype_of("smap_age_days") == np.uint8 and fill_of("smap_age_days") == FILL_AGE == 255
    fb = variable_attrs("input_fallback")
    assert fb["flag_masks"] == list(FALLBACK_BITS.values())
    assert fb["flag_meanings"].split() == list(FALLBACK_BITS)
    assert variable_attrs("smap_age_days")["units"] == "day"
    decoded = decode_fallback(np.array([0, 3, 255], dtype=np.uint8))
    assert decoded["smap_earlier"].tolist() == [False, True, False]
    assert decoded["lst_composite"].tolist() == [False, True, False]


# -- a day with gaps ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    plan, res = _make(tmp_path_factory.mktemp("fallback"))
    return {"plan": plan, "res": res, "ds": open_cube(plan.cube.url).sel(time=str(DAY))}


def test_pixel_with_two_day_old_smap_carries_age_2_and_its_prediction(
    made: dict[str, Any],
) -> None:
    plan, ds = made["plan"], made["ds"]
    row, col = 40, _col((GAP_WEST + GAP_EAST) / 2)  # in the gap of DAY and DAY-1
    age = ds.smap_age_days.values
    assert age[row, col] == 2
    fb = int(ds.input_fallback.values[row, col])  # (decoded as float: 255 is the fill)
    assert fb & FALLBACK_BITS["smap_earlier"]
    flags = int(ds.quality_flag.values[row, col])
    assert not flags & (FLAG_BITS["smap_missing"] | FLAG_BITS["input_missing"])
    # The value is the model's prediction from the inputs with the 2-day-old SMAP.
    tile = plan.tile(row // 64, col // 64)
    splan = plan.static_for(2020, DAY)
    feat = tile_features(splan, tile, DAY)
    r, c = row - tile.row0, col - tile.col0
    assert read_static(splan, tile)["surface"][r, c] == 0  # land
    x = feat.x[:, r, c].copy()
    assert x[FEATURE_NAMES.index("smap")] == pytest.approx(SMAP_BY_AGE[2])
    want = pack_u16(FakeEnsemble().predict(x[None, :]).mean)[0] * 1e-4
    assert ds.soil_moisture.values[row, col] == pytest.approx(want, abs=1e-9)
    # and differs from what today's SMAP elsewhere gives: the SMAP age is what changed.
    x[FEATURE_NAMES.index("smap")] = SMAP_BY_AGE[0]
    assert abs(FakeEnsemble().predict(x[None, :]).mean[0] - want) > 0.03
    # A pixel outside the gap has today's SMAP, age 0, no SMAP fallback bit.
    col0 = _col(-97.50)
    assert age[row, col0] == 0
    assert not int(ds.input_fallback.values[row, col0]) & FALLBACK_BITS["smap_earlier"]


def test_day_is_gap_free_and_provenance_counts_levels(made: dict[str, Any]) -> None:
    res, ds, plan = made["res"], made["ds"], made["plan"]
    assert res.coverage == 1.0 and res.n_predicted == res.n_land
    flags = ds.quality_flag.values.astype(np.int64)
    water = (flags & FLAG_BITS["water"]) != 0
    sm = ds.soil_moisture.values
    assert water.any() and np.isfinite(sm[~water]).all() and np.isnan(sm[water]).all()
    # LST: the cloud band of the daily LST is served by the 8-day composite.
    fb = ds.input_fallback.fillna(255).values.astype(np.uint8)
    cloud = _col((CLOUD_WEST + CLOUD_EAST) / 2)
    assert (fb[~water[:, cloud], cloud] & FALLBACK_BITS["lst_composite"]).all()
    assert not (fb[:, _col(-97.50)] & FALLBACK_BITS["lst_composite"]).any()
    from pipeline.cube import Cube

    prov = Cube(plan.cube, plan.layout).read_provenance(DAY)
    assert prov is not None and prov["missing_pixels"] == {}
    ages = prov["smap_age_pixels"]
    assert set(ages) == {"0", "2"} and ages["2"] == int((ds.smap_age_days.values == 2).sum())
    assert prov["fallback_pixels"]["lst"]["composite"] > 0
    assert f"fake/smap/{DAY - dt.timedelta(days=2)}.tif" in prov["inputs"]["smap"]
    # The day before was read (its gap is the same band) but served no pixel: not listed.
    assert f"fake/smap/{DAY - dt.timedelta(days=1)}.tif" not in prov["inputs"]["smap"]
    assert prov["fallback_pixels"]["smap"]["age 1"] == 0
    assert prov["status"] == 2


def test_without_fallback_the_gap_is_missing_and_named_with_pixel_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.run.day"):
        plan, res = _make(tmp_path, smap_max_age_days=1, lst_composite_fallback=False)
    ds = open_cube(plan.cube.url).sel(time=str(DAY))
    col = _col((GAP_WEST + GAP_EAST) / 2)
    flags = ds.quality_flag.values.astype(np.int64)
    assert (flags[:, col] & FLAG_BITS["smap_missing"]).all()
    assert np.isnan(ds.smap_age_days.values[:, col]).all()  # 255: the fill
    assert np.isnan(ds.soil_moisture.values[:, col]).all()
    assert res.coverage < 1.0
    from pipeline.cube import Cube

    prov = Cube(plan.cube, plan.layout).read_provenance(DAY)
    assert prov is not None
    n_smap, n_lst = prov["missing_pixels"]["smap"], prov["missing_pixels"]["lst"]
    assert n_smap > 0 and n_lst > 0
    assert res.n_land - res.n_predicted <= n_smap + n_lst
    warned = [r.getMessage() for r in caplog.records if "missing an input" in r.getMessage()]
    assert warned and f"smap {n_smap}" in warned[0] and f"lst {n_lst}" in warned[0]
