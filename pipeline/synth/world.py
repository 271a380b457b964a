"""The synthetic world itself: static 90 m layers and the daily soil-water model.

Everything is a pure function of the ``WorldSpec`` and absolute position on
the conus-90m lattice (``noise.py``), so any window can be generated alone
and adjacent windows agree: ``static_tile`` and ``daily_tile`` are what the
CONUS benchmark calls; the file writers use the very same ``DailyModel``.

The truth (m3 m-3, top ~5 cm) is a per-pixel bucket: a store S (mm) filled by
rain (infiltration falls with clay, urban sealing; valleys receive run-on)
and emptied exponentially with a drydown time tau (days) that grows with clay
and valley wetness and shrinks with green vegetation in the warm season;
theta = theta_res + (theta_sat - theta_res) * (1 - exp(-S / 20 mm)), with
texture-dependent theta_res/theta_sat, plus fine static and daily noise the
covariates cannot see. Wetlands stay near saturation; water has no value.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from grids import Grid
from pipeline.synth import noise
from pipeline.synth.spec import PIXELS_PER_DEGREE, SynthError, WorldSpec, global_pixel_origin

# IGBP codes used by the world (models/features.py IGBP_CLASSES).
LC_DBF, LC_WSAV, LC_SAV, LC_GRASS, LC_WET, LC_CROP, LC_URBAN, LC_MOSAIC, LC_WATER = (
    4,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    17,
)
# Koeppen codes (models/features.py KOPPEN_CLASSES).
KG_BSK, KG_CFA, KG_DFA = 7, 14, 25

CHIRPS_PIX = 60  # 90 m pixels per 0.05 degree CHIRPS cell, on both axes
CHIRPS_ROW0_FROM_90N = 0  # CHIRPS cells are indexed from 90 N / 180 W for hashing

THETA_MIN, THETA_MAX = 0.02, 0.6  # m3 m-3, the truth is clipped to this range
S_HALF_MM = 20.0  # bucket scale (mm): S = S_HALF gives 63 % of the dynamic range
MEAN_RAIN_MM = 3.2  # target mean daily rain (mm/day) of the storm generator
BLOCK_ROWS = 128  # rows per block of element-wise work


def _window(window: Grid) -> tuple[int, int, tuple[int, int]]:
    row0, col0 = global_pixel_origin(window)
    return row0, col0, window.shape


def usda_texture(sand: np.ndarray, clay: np.ndarray) -> np.ndarray:
    """USDA texture class code (models/features.py, 1-12) from sand and clay (%), uint8."""
    silt = 100.0 - sand - clay
    conds = [
        silt + 1.5 * clay < 15,
        silt + 2 * clay < 30,
        (clay >= 40) & (sand <= 45) & (silt < 40),
        (clay >= 40) & (silt >= 40),
        (clay >= 35) & (sand > 45),
        (clay >= 27) & (clay < 40) & (sand <= 20),
        (clay >= 27) & (clay < 40) & (sand > 20),
        (clay >= 20) & (clay < 35) & (silt < 28) & (sand > 45),
        (silt >= 80) & (clay < 12),
        ((silt >= 50) & (clay >= 12) & (clay < 27)) | ((silt >= 50) & (silt < 80) & (clay < 12)),
        (clay >= 7) & (clay < 27) & (silt >= 28) & (silt < 50) & (sand <= 52),
    ]
    codes = [12, 11, 1, 2, 3, 5, 4, 6, 10, 8, 7]
    return np.select(conds, codes, default=9).astype(np.uint8)


# -- static layers ---------------------------------------------------------------------


def static_tile(spec: WorldSpec, window: Grid) -> dict[str, np.ndarray]:
    """The static 90 m layers of ``window`` (a window of the conus-90m lattice).

    Keys: ``elevation`` (m), ``sand``, ``clay`` (%), ``ph`` (pH), ``landcover``
    (IGBP code, uint8), ``koppen`` (Beck code, uint8), ``texture`` (USDA code,
    uint8), ``wetness`` (valley index 0-1, hidden driver), all float32 unless
    noted. Deterministic in (spec.seed, absolute position).
    """
    row0, col0, shape = _window(window)

    def f(name: str, spacings: tuple[float, ...], weights: tuple[float, ...] | None = None):
        return noise.fbm(spec.key("static", name), row0, col0, shape, spacings, weights)

    # Terrain: regional relief plus a sinuous valley network (zero lines of a noise).
    relief = f("relief", (2400, 600, 120, 24), (1.0, 0.5, 0.2, 0.05))
    chan = f("channel", (720, 240, 80), (1.0, 0.5, 0.2))
    wet = np.exp(-np.square(chan / 0.10)).astype(np.float32)
    lat = (90.0 - (row0 + np.arange(shape[0]) + 0.5) / PIXELS_PER_DEGREE).astype(np.float32)
    lon = (-180.0 + (col0 + np.arange(shape[1]) + 0.5) / PIXELS_PER_DEGREE).astype(np.float32)
    trend = 350.0 - 60.0 * (lon[None, :] + 97.5)  # rises to the west, as on the Great Plains
    # East of 93.25 W (95 m) the land rises again towards the Appalachians (500 m at 84 W),
    # so an eastern world keeps MERIT's physical range; west of it (the demo) unchanged.
    trend = np.where(lon[None, :] > -93.25, 95.0 + 45.0 * (lon[None, :] + 93.25), trend)
    elevation = (trend + 90.0 * relief - 25.0 * wet).astype(np.float32)

    # Soil: sand skewed low (most loams), alluvium sandier in valleys; clay shares the rest.
    u_sand = ndtr(f("sand", (960, 240, 60, 12), (1.0, 0.6, 0.3, 0.1)))
    sand = (6.0 + 70.0 * u_sand**1.5 + 12.0 * wet).astype(np.float32)
    u_clay = ndtr(f("clay", (960, 240, 60, 12), (1.0, 0.6, 0.3, 0.1)))
    clay = ((100.0 - sand) * (0.08 + 0.50 * u_clay**1.2)).astype(np.float32)
    ph = np.clip(
        5.4 + 2.4 * ndtr(f("ph", (1200, 300, 60))) + 0.015 * (clay - 20.0) - 0.4 * wet, 4.5, 8.5
    ).astype(np.float32)

    # Land cover: fields of crops and grass, riparian forest, rare urban, water and wetland.
    u_lc = ndtr(f("landcover", (360, 90, 24), (1.0, 0.5, 0.2)))
    u_forest = ndtr(f("forest", (240, 60), (1.0, 0.4)))
    u_urban = ndtr(f("urban", (480, 60), (1.0, 0.3)))
    u_water = ndtr(f("water", (120, 30), (1.0, 0.4)))
    lc = np.full(shape, LC_GRASS, dtype=np.uint8)
    lc[u_lc < 0.40] = LC_CROP
    lc[(u_lc >= 0.40) & (u_lc < 0.46)] = LC_MOSAIC
    lc[(u_lc >= 0.80) & (u_lc < 0.90)] = LC_SAV
    lc[(u_lc >= 0.90) & (u_lc < 0.94)] = LC_WSAV
    lc[(u_lc >= 0.94) | ((wet > 0.35) & (u_forest > 0.45))] = LC_DBF
    lc[u_urban > 0.985] = LC_URBAN
    lc[(wet > 0.6) & (u_water > 0.93)] = LC_WET
    lc[(wet > 0.8) & (u_water < 0.05)] = LC_WATER

    # Koeppen: semi-arid west, humid subtropical centre, continental north (wavy borders).
    border = f("koppen", (1800, 600), (1.0, 0.4))
    kg = np.full(shape, KG_CFA, dtype=np.uint8)
    kg[(lon[None, :] + 0.35 * border) < -98.1] = KG_BSK
    kg[(lat[:, None] + 0.25 * border) > 36.3] = KG_DFA

    return {
        "elevation": elevation,
        "sand": sand,
        "clay": clay,
        "ph": ph,
        "landcover": lc,
        "koppen": kg,
        "texture": usda_texture(sand, clay),
        "wetness": wet,
    }


# -- the daily model -------------------------------------------------------------------

# NDVI phenology per IGBP class: base, amplitude, peak day of year, width (days).
_PHENOLOGY: dict[int, tuple[float, float, float, float]] = {
    LC_DBF: (0.35, 0.50, 180, 60),
    LC_WSAV: (0.45, 0.30, 170, 70),
    LC_SAV: (0.35, 0.30, 165, 70),
    LC_GRASS: (0.30, 0.35, 165, 60),
    LC_WET: (0.40, 0.35, 175, 60),
    LC_CROP: (0.25, 0.50, 115, 35),  # winter wheat: green in April/May, harvested in June
    LC_URBAN: (0.18, 0.10, 170, 70),
    LC_MOSAIC: (0.30, 0.35, 140, 50),
    LC_WATER: (0.02, 0.0, 180, 60),
}


def ndvi_curve(doy: float) -> np.ndarray:
    """NDVI of every IGBP class (index 0-17) on day of year ``doy`` (float32 lookup table)."""
    table = np.full(18, 0.3, dtype=np.float32)
    for code, (base, amp, peak, width) in _PHENOLOGY.items():
        table[code] = base + amp * math.exp(-(((doy - peak) / width) ** 2))
    return table


def air_temperature(doy: float, lat: np.ndarray) -> np.ndarray:
    """Climatological daily mean air temperature (degC) by day of year and latitude."""
    return (15.0 + 13.0 * math.sin(2 * math.pi * (doy - 105) / 365.0) - 0.7 * (lat - 35.0)).astype(
        np.float32
    )


def cold_snap_c(spec: WorldSpec, date: dt.date) -> float:
    """Regional temperature anomaly (degC) of the world's two cold days (start+2, start+3)."""
    k = (date - spec.start).days
    return {2: -15.0, 3: -10.0}.get(k, 0.0)


def _wet_day_probability(doy: float) -> float:
    return 0.26 + 0.08 * math.sin(2 * math.pi * (doy - 75) / 365.0)


def coarse_weather(
    spec: WorldSpec, date: dt.date, row0: int, col0: int, shape: tuple[int, int]
) -> dict[str, np.ndarray]:
    """Daily fields on the 0.05 degree lattice (cells indexed from 90 N, 180 W).

    ``rain`` (mm/day, storms: thresholded noise, seasonal wet-day fraction,
    a day-to-day regional intensity), ``cloud`` (index; > 0 means cloudy),
    ``tanom`` (degC air-temperature anomaly).
    """
    d = date.toordinal()
    doy = date.timetuple().tm_yday
    n = noise.fbm(spec.key("rain", d), row0, col0, shape, (48, 16, 5), (1.0, 0.6, 0.35))
    day_i = np.arange(1)
    g = noise.hash_normal(spec.key("rain-day"), day_i + d, day_i)
    p = _wet_day_probability(doy)
    thr = float(ndtri(1.0 - p)) + 0.6 * float(g[0])
    thr0 = float(ndtri(1.0 - p))
    expected = float(math.exp(-0.5 * thr0 * thr0) / math.sqrt(2 * math.pi) - thr0 * p)
    scale = MEAN_RAIN_MM * spec.rain_factor / max(expected, 1e-3)
    rain = np.maximum(n - thr, 0.0) * scale
    c = noise.fbm(spec.key("cloud", d), row0, col0, shape, (40, 10), (1.0, 0.4))
    cloud = c - 0.75 + 1.5 * np.minimum(rain / 5.0, 1.0)
    tanom = 3.0 * noise.fbm(spec.key("tanom", d), row0, col0, shape, (200, 60), (1.0, 0.3))
    tanom = tanom + cold_snap_c(spec, date)
    return {
        "rain": rain.astype(np.float32),
        "cloud": cloud.astype(np.float32),
        "tanom": tanom.astype(np.float32),
    }


def chirps_cells(spec: WorldSpec, date: dt.date, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(true rain, CHIRPS estimate) in mm/day on a window of the 0.05 degree lattice.

    CHIRPS differs from the rain that drives the truth: multiplicative
    log-normal error (sigma 0.3), half of the light (< 1 mm) rain missed.
    """
    r0 = round((90.0 - grid.transform[5]) / 0.05)
    c0 = round((grid.transform[2] + 180.0) / 0.05)
    true = coarse_weather(spec, date, r0, c0, grid.shape)["rain"]
    d = date.toordinal()
    ii = np.arange(r0, r0 + grid.shape[0])[:, None]
    jj = np.arange(c0, c0 + grid.shape[1])[None, :]
    err = noise.hash_normal(spec.key("chirps-err", d), ii, jj)
    miss = noise.hash_uniform(spec.key("chirps-miss", d), ii, jj) < 0.5
    est = true * np.exp(0.3 * err - 0.045)
    est = np.where((true < 1.0) & miss, 0.0, est)
    return true, np.round(est, 2).astype(np.float32)


@dataclass
class DayFields:
    """One simulated day at 90 m: the truth and the variables the products observe."""

    date: dt.date
    soil_moisture: np.ndarray  # m3 m-3, NaN on water
    precip: np.ndarray  # mm/day, the rain that drove the truth
    lst: np.ndarray  # degC, clear-sky daytime land surface temperature
    cloud: np.ndarray  # bool, cloudy at the MODIS overpass
    ndvi: np.ndarray  # 1
    et: np.ndarray  # mm/day
    tair: np.ndarray  # degC daily mean air temperature

    def as_dict(self) -> dict[str, np.ndarray]:
        return {
            "soil_moisture": self.soil_moisture,
            "precip": self.precip,
            "lst": self.lst,
            "cloud": self.cloud,
            "ndvi": self.ndvi,
            "et": self.et,
            "tair": self.tair,
        }


class DailyModel:
    """The soil-water model over one window, stepped day by day (state: the store S, mm)."""

    def __init__(self, spec: WorldSpec, window: Grid, static: dict[str, np.ndarray] | None = None):
        self.spec = spec
        self.window = window
        self.row0, self.col0, self.shape = _window(window)
        st = static if static is not None else static_tile(spec, window)
        self.static = st
        clay, sand, wet = st["clay"], st["sand"], st["wetness"]
        lc = st["landcover"]
        self.lc = lc
        self.theta_sat = np.minimum(0.36 + 0.0012 * clay + 0.05 * wet - 0.0004 * sand, 0.5).astype(
            np.float32
        )
        self.theta_res = (0.03 + 0.0030 * clay + 0.04 * wet).astype(np.float32)
        tau0 = 1.6 + 0.12 * clay + 4.0 * wet
        self.tau0 = np.where(lc == LC_URBAN, 0.7 * tau0, tau0).astype(np.float32)
        infil = (1.0 - 0.006 * clay) * (1.0 + 0.5 * wet)
        self.infil = np.where(lc == LC_URBAN, 0.4 * infil, infil).astype(np.float32)
        shp = self.shape
        self.sm_static = noise.fbm(spec.key("sm-static"), self.row0, self.col0, shp, (24, 6, 2))
        self.ndvi_noise = noise.fbm(spec.key("ndvi-static"), self.row0, self.col0, shp, (40, 8))
        self.lst_noise = noise.fbm(spec.key("lst-static"), self.row0, self.col0, shp, (30, 6))
        lat = 90.0 - (self.row0 + np.arange(shp[0]) + 0.5) / PIXELS_PER_DEGREE
        self.lat = lat.astype(np.float32)[:, None]
        self.water = lc == LC_WATER
        self.wetland = lc == LC_WET
        self.inv_tau0 = (1.0 / self.tau0).astype(np.float32)
        self.ndvi_static = (0.05 * self.ndvi_noise + 0.08 * st["wetness"]).astype(np.float32)
        self.span = (self.theta_sat - self.theta_res).astype(np.float32)
        self.inv_span = (1.0 / self.span).astype(np.float32)
        self.theta_base = (self.theta_res + 0.018 * self.sm_static).astype(np.float32)
        lst_static = 6.0 - 0.0065 * (st["elevation"] - 300.0) + 0.7 * self.lst_noise
        self.lst_static = np.where(lc == LC_URBAN, lst_static + 3.0, lst_static).astype(np.float32)
        self.S: np.ndarray | None = None
        self.date: dt.date | None = None

    # -- pieces ----------------------------------------------------------------------
    def _blocks(self) -> list[slice]:
        """Row blocks for the element-wise work (temporaries stay in cache; same result)."""
        h = self.shape[0]
        return [slice(r, min(h, r + BLOCK_ROWS)) for r in range(0, h, BLOCK_ROWS)]

    def ndvi(self, date: dt.date) -> np.ndarray:
        """NDVI at 90 m: phenology of the land cover, valley greenness, static noise."""
        table = ndvi_curve(date.timetuple().tm_yday)
        out = np.empty(self.shape, dtype=np.float32)
        for b in self._blocks():
            v = table[self.lc[b]]
            v += self.ndvi_static[b]
            v[self.water[b]] = table[LC_WATER]
            np.clip(v, -0.2, 0.95, out=out[b])
        return out

    def _upsample(self, coarse: np.ndarray, r_lo: int, c_lo: int) -> np.ndarray:
        """Linear interpolation of 0.05 degree cell-centre values onto the 90 m window."""
        half = CHIRPS_PIX // 2
        return noise.upsample_linear(
            coarse, r_lo, c_lo, self.row0 - half, self.col0 - half, self.shape, CHIRPS_PIX
        )

    def weather(self, date: dt.date, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Coarse daily weather (``coarse_weather``) interpolated to 90 m."""
        half = CHIRPS_PIX // 2
        r_lo, nr = noise.node_range(self.row0 - half, self.shape[0], CHIRPS_PIX)
        c_lo, nc = noise.node_range(self.col0 - half, self.shape[1], CHIRPS_PIX)
        coarse = coarse_weather(self.spec, date, r_lo, c_lo, (nr, nc))
        return {k: self._upsample(coarse[k], r_lo, c_lo) for k in names}

    @staticmethod
    def _season(date: dt.date) -> np.float32:
        """Evaporative season 0-1 (peaks in late July): green plants dry the soil faster."""
        doy = date.timetuple().tm_yday
        return np.float32(0.5 + 0.5 * math.sin(2 * math.pi * (doy - 100) / 365.0))

    def reset(self, first_day: dt.date) -> None:
        """Start the store at its climatological level the day before ``first_day``."""
        ndvi = self.ndvi(first_day)
        k = np.float32(1.2) * self._season(first_day)
        tau = self.tau0 / (np.float32(1.0) + k * np.maximum(ndvi, np.float32(0.0)))
        mean_rain = np.float32(MEAN_RAIN_MM * self.spec.rain_factor)
        self.S = (mean_rain * self.infil * tau).astype(np.float32)
        self.date = first_day - dt.timedelta(days=1)

    def _advance(self) -> tuple[dt.date, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """S <- exp(-1 / tau) * S + infiltration * rain, tau = tau0 / (1 + 1.2 NDVI season)."""
        if self.S is None or self.date is None:
            raise SynthError("DailyModel: call reset() before stepping")
        date = self.date + dt.timedelta(days=1)
        ndvi = self.ndvi(date)
        w = self.weather(date, ("rain",))
        k = np.float32(1.2) * self._season(date)
        S = self.S
        for b in self._blocks():
            a = np.maximum(ndvi[b], np.float32(0.0))
            a *= k
            a += np.float32(1.0)
            a *= self.inv_tau0[b]
            np.negative(a, out=a)
            np.exp(a, out=a)
            S[b] *= a
            S[b] += self.infil[b] * w["rain"][b]
        self.date = date
        return date, ndvi, S, w

    def spin(self) -> None:
        """Advance one day, updating only the store (spin-up)."""
        self._advance()

    def step(self) -> DayFields:
        """Advance one day and return every field of that day."""
        date, ndvi, S, w = self._advance()
        w.update(self.weather(date, ("cloud", "tanom")))
        d = date.toordinal()
        dyn = noise.linear_noise(self.spec.key("sm-daily", d), self.row0, self.col0, self.shape, 30)
        doy = date.timetuple().tm_yday
        tair = air_temperature(doy, self.lat) + w["tanom"]
        theta = np.empty(self.shape, dtype=np.float32)
        lst = np.empty(self.shape, dtype=np.float32)
        et = np.empty(self.shape, dtype=np.float32)
        f0, f1, f12, f3 = np.float32(0.0), np.float32(1.0), np.float32(12.0), np.float32(3.0)
        for b in self._blocks():
            water = self.water[b]
            # theta = theta_res + span * (1 - exp(-S / S_half)) + static and daily noise
            th = theta[b]
            np.multiply(S[b], np.float32(-1.0 / S_HALF_MM), out=th)
            np.exp(th, out=th)
            np.subtract(f1, th, out=th)
            th *= self.span[b]
            th += self.theta_base[b]
            th += np.float32(0.010) * dyn[b]
            wet = self.wetland[b]
            th[wet] = np.maximum(th[wet], self.theta_sat[b][wet] - np.float32(0.03))
            np.clip(th, THETA_MIN, THETA_MAX, out=th)
            th[water] = np.nan
            # relative wetness 0-1 (water: 1)
            rel = th - self.theta_res[b]
            rel *= self.inv_span[b]
            np.clip(rel, 0.0, 1.0, out=rel)
            rel[water] = 1.0
            veg = np.maximum(ndvi[b], f0)
            ta = tair[b]
            # LST: air temperature + daytime heating, hotter when dry, cooler when green.
            ls = lst[b]
            np.subtract(f1, rel, out=ls)
            ls *= f1 - np.float32(0.5) * veg
            ls *= f12
            ls -= f3 * veg
            ls += self.lst_static[b]
            ls += ta
            ls[water] = ta[water] + f1
            # ET: Hargreaves-like demand x crop coefficient from NDVI x soil-water stress.
            e = et[b]
            np.multiply(np.float32(0.9), veg, out=e)
            e += np.float32(0.15)
            e *= np.maximum(np.float32(0.5), np.float32(0.15) * (ta + np.float32(10.0)))
            rel *= np.float32(2.0)
            np.minimum(rel, f1, out=rel)
            e *= rel
        return DayFields(
            date=date,
            soil_moisture=theta,
            precip=w["rain"],
            lst=lst,
            cloud=w["cloud"] > 0.0,
            ndvi=ndvi,
            et=et,
            tair=tair.astype(np.float32),
        )


def daily_tile(spec: WorldSpec, date: dt.date, window: Grid) -> dict[str, np.ndarray]:
    """Every daily 90 m field of ``date`` over ``window``, generated on its own.

    Spins the store up over ``spec.spinup_days`` days before ``date``; the
    writers step continuously from before ``spec.start`` instead, so the two
    agree to within the store's memory after the spin-up (pipeline/synth/README.md;
    tested to < 0.005 m3 m-3).
    """
    with noise.single_thread_blas():
        model = DailyModel(spec, window)
        model.reset(date - dt.timedelta(days=spec.spinup_days))
        for _ in range(spec.spinup_days):
            model.spin()
        return model.step().as_dict()
