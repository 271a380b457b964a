"""Synthetic ground truth: ISMN "Header+values" stations and AmeriFlux BASE-BADM sites.

Stations sample the 90 m truth at their pixel with a per-sensor calibration
bias/gain and hourly noise; deeper sensors see a lagged (exponentially
smoothed) truth. Every quality rule of the in-situ readers has something to
remove: non-``G`` ISMN flags (``D03`` frozen soil on the world's cold days,
``D03,D05``, ``D05``, ``D06`` spikes, ``C03`` above saturation after heavy
rain), ``-9999``/``M`` gaps, sensors deeper than 5 cm, wetland stations;
AmeriFlux soil temperature below 3 degC, SWC above 70 %, an IGBP ``WET`` site.
Formats follow ../shared/realdata byte for byte (header widths, value line,
mixed line endings; two ``#`` lines, -9999, local standard time; BIF sheet).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grids import Grid
from pipeline.synth.spec import WorldSpec
from pipeline.synth.world import KG_BSK, KG_CFA, KG_DFA, LC_WATER, LC_WET

UTC_OFFSET_H = -6  # Central Standard Time, the local standard time of AmeriFlux files

# ISMN static_variables land cover (ESA CCI) for the world's IGBP classes.
CCI_OF_IGBP: dict[int, tuple[int, str]] = {
    4: (60, "Tree cover, broadleaved, deciduous, closed to open (>15%)"),
    8: (100, "Mosaic tree and shrub (>50%) / herbaceous cover (<50%)"),
    9: (120, "Shrubland"),
    10: (130, "Grassland"),
    11: (180, "Shrub or herbaceous cover, flooded, fresh/saline/brakish water"),
    12: (10, "Cropland, rainfed"),
    13: (190, "Urban areas"),
    14: (30, "Mosaic cropland (>50%) / natural vegetation (tree, shrub, herbaceous cover) (<50%)"),
    17: (210, "Water bodies"),
}
KOPPEN_TEXT: dict[int, tuple[str, str]] = {
    KG_CFA: ("Cfa", "Temperate - Without dry season - Hot Summer"),
    KG_BSK: ("BSk", "Arid - Steppe - Cold"),
    KG_DFA: ("Dfa", "Cold - Without dry season - Hot Summer"),
}
IGBP_ABBR: dict[int, str] = {
    1: "ENF", 2: "EBF", 3: "DNF", 4: "DBF", 5: "MF", 6: "CSH", 7: "OSH", 8: "WSA", 9: "SAV",
    10: "GRA", 11: "WET", 12: "CRO", 13: "URB", 14: "CVM", 15: "SNO", 16: "BSV", 17: "WAT",
}  # fmt: skip

# (network, share of the ordinary stations, sensors: (depth_from, depth_to, sensor name)).
_HP12 = "Stevens-Hydraprobe-II-Sdi-12"
_HPA = "Hydraprobe-Analog-(2.5-Volt)"
NETWORKS: tuple[tuple[str, float, tuple[tuple[float, float, str], ...]], ...] = (
    ("USCRN", 0.2, ((0.05, 0.05, _HP12), (0.10, 0.10, _HP12))),
    ("SCAN", 0.35, ((0.05, 0.05, _HPA), (0.10, 0.10, _HPA), (0.20, 0.20, _HPA))),
    ("ARM", 0.3, ((0.00, 0.05, "ThetaProbe-ML2X"),)),
    ("COSMOS", 0.15, ((0.00, 0.19, "Cosmic-ray-Probe"),)),
)
# Dense groups (like the paper's Fort Cobb and Little Washita): name, share, centre (x, y) as
# fractions of the region, box size (degrees).
DENSE_GROUPS: tuple[tuple[str, float, tuple[float, float], float], ...] = (
    ("FortCobb", 0.15, (0.22, 0.68), 0.25),
    ("LittleWashita", 0.18, (0.34, 0.24), 0.3),
)
DENSE_SENSORS = ((0.05, 0.05, "Stevens-Hydraprobe-II"),)


@dataclass(frozen=True)
class Sensor:
    depth_from: float
    depth_to: float
    name: str


@dataclass(frozen=True)
class Station:
    """One station and the 90 m pixel it samples (row, col in the domain)."""

    network: str
    name: str
    lat: float
    lon: float
    row: int
    col: int
    elevation: float
    sensors: tuple[Sensor, ...]
    landcover: int
    koppen: int
    sand: float
    clay: float
    saturation: float
    kind: str = "ismn"  # or "ameriflux"
    igbp: str = ""
    swc_columns: tuple[str, ...] = field(default=("SWC",))


def _rng(spec: WorldSpec, tag: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([spec.seed, spec.key(tag) % (2**32)]))


def _pick_pixel(
    rng: np.random.Generator,
    domain: Grid,
    region: tuple[float, float, float, float],
    box: tuple[float, float, float, float],
    lc: np.ndarray,
) -> tuple[float, float, int, int]:
    """A random land point in ``box`` (clipped to the region): lat, lon, domain row, col."""
    w = max(box[0], region[0])
    s = max(box[1], region[1])
    e = min(box[2], region[2])
    n = min(box[3], region[3])
    a = domain.transform
    for _ in range(200):
        lon = float(rng.uniform(w, e))
        lat = float(rng.uniform(s, n))
        col = math.floor((lon - a[2]) / a[0])
        row = math.floor((lat - a[5]) / a[4])
        if lc[row, col] != LC_WATER:
            return round(lat, 5), round(lon, 5), row, col
    return round(lat, 5), round(lon, 5), row, col


def _station(
    network: str,
    name: str,
    lat: float,
    lon: float,
    row: int,
    col: int,
    sensors: tuple[tuple[float, float, str], ...],
    static: dict[str, np.ndarray],
    saturation: np.ndarray,
    **kw: object,
) -> Station:
    return Station(
        network=network,
        name=name,
        lat=lat,
        lon=lon,
        row=row,
        col=col,
        elevation=round(float(static["elevation"][row, col]), 2),
        sensors=tuple(Sensor(*s) for s in sensors),
        landcover=int(static["landcover"][row, col]),
        koppen=int(static["koppen"][row, col]),
        sand=float(static["sand"][row, col]),
        clay=float(static["clay"][row, col]),
        saturation=float(saturation[row, col]),
        **kw,  # type: ignore[arg-type]
    )


def place_stations(
    spec: WorldSpec, domain: Grid, static: dict[str, np.ndarray], saturation: np.ndarray
) -> list[Station]:
    """ISMN stations: dense groups plus ordinary networks; two on wetland pixels when any exist."""
    rng = _rng(spec, "stations")
    w, s, e, n = spec.region
    lc = static["landcover"]
    total = spec.n_stations
    out: list[Station] = []
    counts = [round(share * total) for _, share, _, _ in DENSE_GROUPS]
    for (name, _, (fx, fy), size), k in zip(DENSE_GROUPS, counts, strict=True):
        size = min(size, 0.4 * (e - w), 0.4 * (n - s))
        cx, cy = w + fx * (e - w), s + fy * (n - s)
        box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
        for i in range(k):
            lat, lon, row, col = _pick_pixel(rng, domain, spec.region, box, lc)
            dsens = DENSE_SENSORS if i % 4 else ((0.00, 0.05, "Stevens-Hydraprobe-II"),)
            out.append(
                _station(
                    name,
                    f"{name[:2].upper()}{i + 1:02d}",
                    lat,
                    lon,
                    row,
                    col,
                    dsens,
                    static,
                    saturation,
                )
            )
    rest = max(0, total - len(out))
    shares = np.array([share for _, share, _ in NETWORKS])
    per = np.floor(shares * rest).astype(int)
    per[np.argsort(-shares)[: rest - per.sum()]] += 1
    wet_pixels = [(int(r), int(c)) for r, c in np.argwhere(lc == LC_WET)]
    a = domain.transform
    inside = [
        (r, c)
        for r, c in wet_pixels
        if w < a[2] + (c + 0.5) * a[0] < e and s < a[5] + (r + 0.5) * a[4] < n
    ]
    n_wet = min(2, len(inside)) if rest >= 4 else 0
    wet_choice = (
        [inside[i] for i in rng.choice(len(inside), size=n_wet, replace=False)] if n_wet else []
    )
    for (net, _, sensors), k in zip(NETWORKS, per, strict=True):
        for i in range(int(k)):
            if wet_choice and net == "SCAN":
                row, col = wet_choice.pop()
                lat = round(a[5] + (row + 0.5) * a[4], 5)
                lon = round(a[2] + (col + 0.5) * a[0], 5)
            else:
                lat, lon, row, col = _pick_pixel(rng, domain, spec.region, spec.region, lc)
            out.append(
                _station(net, f"{net}-{i + 1:03d}", lat, lon, row, col, sensors, static, saturation)
            )
    return out


def place_ameriflux(
    spec: WorldSpec, domain: Grid, static: dict[str, np.ndarray], saturation: np.ndarray
) -> list[Station]:
    """AmeriFlux towers; the first is the wetland site (IGBP WET), on a wetland pixel if any."""
    rng = _rng(spec, "ameriflux")
    lc = static["landcover"]
    a = domain.transform
    w, s, e, n = spec.region
    out: list[Station] = []
    wet = [
        (int(r), int(c))
        for r, c in np.argwhere(lc == LC_WET)
        if w < a[2] + (c + 0.5) * a[0] < e and s < a[5] + (r + 0.5) * a[4] < n
    ]
    for i in range(spec.n_ameriflux):
        if i == 0 and wet:
            row, col = wet[int(rng.integers(len(wet)))]
            lat = round(a[5] + (row + 0.5) * a[4], 5)
            lon = round(a[2] + (col + 0.5) * a[0], 5)
        else:
            lat, lon, row, col = _pick_pixel(rng, domain, spec.region, spec.region, lc)
        igbp = "WET" if i == 0 else IGBP_ABBR.get(int(lc[row, col]), "GRA")
        cols = ("SWC_1_1_1", "SWC_2_1_1") if i % 4 == 3 else ("SWC",)
        out.append(
            _station(
                "AmeriFlux", f"US-X{i + 1:02d}", lat, lon, row, col, ((0.05, 0.05, "SWC"),),
                static, saturation, kind="ameriflux", igbp=igbp, swc_columns=cols,
            )
        )  # fmt: skip
    return out


# -- series ----------------------------------------------------------------------------


@dataclass
class PointSeries:
    """Daily values at every station pixel over the period (days x stations)."""

    days: tuple[dt.date, ...]
    theta: np.ndarray  # m3 m-3
    tair: np.ndarray  # degC
    rain: np.ndarray  # mm/day


def _lagged(theta: np.ndarray, depth: float) -> np.ndarray:
    """The truth seen at ``depth`` (m): exponentially smoothed over 1 + 20 * depth days."""
    if depth <= 0.05:
        return theta
    alpha = 1.0 / (1.0 + 20.0 * depth)
    out = np.empty_like(theta)
    acc = theta[0]
    for k in range(theta.shape[0]):
        acc = alpha * theta[k] + (1 - alpha) * acc
        out[k] = acc
    return out


def soil_temperature(tair_daily: np.ndarray, hours_utc: np.ndarray, depth: float) -> np.ndarray:
    """Hourly soil temperature (degC): daily air temperature + damped diurnal wave (peak 15 LST)."""
    local = hours_utc + UTC_OFFSET_H
    amp = 7.0 * math.exp(-depth / 0.1)
    return tair_daily + 1.0 + amp * np.sin(2 * np.pi * (local - 9.0) / 24.0)


def ismn_hourly(
    spec: WorldSpec, st: Station, sensor: Sensor, series: PointSeries, k: int
) -> tuple[np.ndarray, list[str]]:
    """Hourly values and ISMN flags of one sensor (station ``k`` of the series)."""
    rng = np.random.default_rng(
        np.random.SeedSequence(
            [spec.seed, spec.key("ismn", st.network, st.name, sensor.depth_to) % 2**32]
        )
    )
    nd = len(series.days)
    mid = 0.5 * (sensor.depth_from + sensor.depth_to)
    daily = _lagged(series.theta[:, k], mid if sensor.depth_to > 0.05 else 0.0)
    hours = np.tile(np.arange(24), nd)
    day_i = np.repeat(np.arange(nd), 24)
    bias = rng.normal(0.0, 0.02)
    gain = 1.0 + rng.normal(0.0, 0.05)
    v = gain * daily[day_i] + bias
    v = v + 0.004 * np.sin(2 * np.pi * (hours + UTC_OFFSET_H - 6) / 24.0)
    v = v + rng.normal(0.0, 0.003, v.shape)
    ts = soil_temperature(series.tair[day_i, k], hours, mid)
    frozen = ts < 0.0
    v = np.where(frozen, 0.6 * v, v)
    # heavy rain: saturated samples in the first hours of the next day
    heavy = np.concatenate([[False], series.rain[:-1, k] > 20.0])[day_i] & (hours < 6)
    v = np.where(heavy, st.saturation + rng.uniform(0.01, 0.05, v.shape), v)
    v = np.clip(v, 0.0, 0.75)
    flags = np.full(v.shape, "G", dtype=object)
    u = rng.uniform(size=v.shape)
    flags[u < 0.006] = "D05"
    spike = u > 0.998
    v = np.where(spike, v + 0.1, v)
    flags[spike] = "D06"
    flags[v > st.saturation] = "C03"
    flags[frozen] = np.where(u[frozen] < 0.3, "D03,D05", "D03")
    # gaps: one run of 12-60 hours missing in half of the sensors
    if rng.uniform() < 0.5 and v.size > 80:
        start = int(rng.integers(0, v.size - 61))
        stop = start + int(rng.integers(12, 61))
        v[start:stop] = -9999.0
        flags[start:stop] = "M"
    return np.round(v, 4), [str(f) for f in flags]


def ismn_header(st: Station, sensor: Sensor) -> str:
    """The header line, with the field widths of the real ARM-1 file."""
    return (
        f"{st.network:<10s} {st.network:<15s} {st.name:<15s} {st.lat:10.5f} {st.lon:11.5f} "
        f"{st.elevation:7.2f} {sensor.depth_from:7.2f} {sensor.depth_to:7.2f} {sensor.name}"
    )


def ismn_file_name(st: Station, sensor: Sensor, first: dt.date, last: dt.date) -> str:
    """``<NET>_<NET>_<STATION>_sm_<from>_<to>_<SENSOR>_<YYYYMMDD>_<YYYYMMDD>.stm``."""
    return (
        f"{st.network}_{st.network}_{st.name}_sm_{sensor.depth_from:.6f}_{sensor.depth_to:.6f}_"
        f"{sensor.name}_{first:%Y%m%d}_{last:%Y%m%d}.stm"
    )


def static_variables_csv(st: Station) -> str:
    """The ``*_static_variables.csv`` of a station (``;``-separated, CRLF), as ISMN writes it."""
    hwsd = (
        'HWSD;Harmonized World Soil Database v1.1  by IIASA;IIASA;v1.1;30";;'
        "http://webarchive.iiasa.ac.at/Research/LUC/External-World-soil-database/HTML/;"
    )
    rows = [
        "quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
        "quantity_source_description;quantity_source_provider;quantity_source_version;"
        "quantity_source_resolution;quantity_source_timerange;quantity_source_url;"
    ]
    silt = 100.0 - st.sand - st.clay
    for d0, d1, dc in ((0.0, 0.3, 0.0), (0.3, 1.0, 3.0)):
        rows.append(
            f"saturation;m^3*m^-3;{d0:.2f};{d1:.2f};{st.saturation - 0.01 * dc:.2f};;{hwsd}"
        )
        rows.append(f"clay fraction;% weight;{d0:.2f};{d1:.2f};{st.clay + dc:.2f};;{hwsd}")
        rows.append(f"organic carbon;% weight;{d0:.2f};{d1:.2f};{1.2 - 0.2 * dc:.2f};;{hwsd}")
        rows.append(f"sand fraction;% weight;{d0:.2f};{d1:.2f};{st.sand - dc:.2f};;{hwsd}")
        rows.append(f"silt fraction;% weight;{d0:.2f};{d1:.2f};{silt:.2f};;{hwsd}")
    code, text = CCI_OF_IGBP.get(st.landcover, (130, "Grassland"))
    for year, span in ((2000, "1998-2002"), (2005, "2003-2007"), (2010, "2008-2012")):
        rows.append(
            f"land cover classification;;;;{code};{text};CCI_landcover_{year};ESA CCI Land Cover;"
            f"ESA;{year}-v1.6.1;300m;{span};http://www.esa-landcover-cci.org/;"
        )
    sym, desc = KOPPEN_TEXT.get(st.koppen, ("Cfa", "Temperate - Without dry season - Hot Summer"))
    rows.append(
        f"climate classification;;;;{sym};{desc};koeppen_geiger_2007;Koeppen-Geiger Climate "
        "Classification;;Peel2007;0.1\u00b0;;http://www.hydrol-earth-syst-sci.net/11/1633/2007/;"
    )
    return "\r\n".join(rows) + "\r\n"


def write_ismn(
    root: Path, spec: WorldSpec, stations: list[Station], series: PointSeries
) -> list[Path]:
    """Write ``<root>/ISMN/<NET>/<STATION>/`` .stm files and static variables of every station."""
    first, last = series.days[0], series.days[-1]
    stamps = [f"{d:%Y/%m/%d} {h:02d}:00" for d in series.days for h in range(24)]
    written: list[Path] = []
    for k, st in enumerate(stations):
        if st.kind != "ismn":
            continue
        folder = root / "ISMN" / st.network / st.name
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"{st.network}_{st.network}_{st.name}_static_variables.csv"
        p.write_bytes(static_variables_csv(st).encode("utf-8"))
        written.append(p)
        for sensor in st.sensors:
            v, flags = ismn_hourly(spec, st, sensor, series, k)
            lines = [
                f"{t} {x:8.4f} {f} M" for t, x, f in zip(stamps, v.tolist(), flags, strict=True)
            ]
            text = ismn_header(st, sensor) + "\n\r" + "\r\n".join(lines) + "\r\n"
            p = folder / ismn_file_name(st, sensor, first, last)
            p.write_bytes(text.encode("ascii"))
            written.append(p)
    return written


# -- AmeriFlux -------------------------------------------------------------------------

AMF_VERSION = "1-5"


def ameriflux_table(
    spec: WorldSpec, st: Station, series: PointSeries, k: int
) -> tuple[list[str], np.ndarray]:
    """Column names and half-hourly values (-9999 missing) of one site, local standard time."""
    rng = np.random.default_rng(
        np.random.SeedSequence([spec.seed, spec.key("amf", st.name) % 2**32])
    )
    nd = len(series.days)
    n = nd * 48
    t_local = np.arange(n) * 0.5  # hours since start 00:00 local standard time
    t_utc = t_local - UTC_OFFSET_H
    day_i = np.clip((t_utc // 24).astype(int), 0, nd - 1)
    hour_utc = t_utc % 24
    local_h = t_local % 24
    theta = series.theta[day_i, k]
    wet = st.igbp == "WET"
    base = np.where(wet, np.maximum(theta, 0.45) + 0.1, theta)
    swc = 100.0 * (base + rng.normal(0, 0.01) + rng.normal(0.0, 0.002, n))
    swc2 = 100.0 * (_lagged(series.theta[:, k], 0.3)[day_i] + rng.normal(0.0, 0.002, n))
    tair = series.tair[day_i, k] + 6.0 * np.sin(2 * np.pi * (local_h - 9.0) / 24.0)
    ts1 = soil_temperature(series.tair[day_i, k], hour_utc, 0.05)
    ts2 = soil_temperature(series.tair[day_i, k], hour_utc, 0.2)
    sw = np.maximum(0.0, 900.0 * np.sin(np.pi * (local_h - 6.0) / 13.0))
    p = np.zeros(n)
    rainy = series.rain[:, k] > 0.2
    for d in np.nonzero(rainy)[0]:
        slots = d * 48 + rng.choice(48, size=4, replace=False)
        p[slots[slots < n]] = series.rain[d, k] / 4.0
    h = 0.3 * sw * (1.0 - np.clip(theta, 0, 0.5)) + rng.normal(0, 10, n)
    le = 0.4 * sw * np.clip(theta * 2.5, 0, 1) + rng.normal(0, 10, n)
    rh = np.clip(60.0 - 1.5 * (tair - 15.0) + rng.normal(0, 5, n), 5, 100)
    co2 = 410.0 + rng.normal(0, 3, n)
    fc = np.full(n, -9999.0)
    # gaps and glitches: a missing run in SWC, a few readings above 70 %
    g0 = int(rng.integers(0, max(1, n - 97)))
    swc[g0 : g0 + int(rng.integers(24, 97))] = -9999.0
    if not wet:
        hi = rng.choice(n, size=4, replace=False)
        swc[hi] = rng.uniform(72.0, 80.0, 4)
    cols: dict[str, np.ndarray] = {"CO2": co2, "FC": fc, "H": h, "LE": le, "TA": tair, "RH": rh,
                                   "P": p, "SW_IN": sw, "TS_1_1_1": ts1}  # fmt: skip
    if "SWC_1_1_1" in st.swc_columns:
        cols["TS_2_1_1"] = ts2
        cols["SWC_1_1_1"] = swc
        cols["SWC_2_1_1"] = swc2
    else:
        cols["SWC"] = swc
    names = list(cols)
    return names, np.stack([cols[c] for c in names], axis=1)


def _fmt(x: float) -> str:
    if x == -9999.0:
        return "-9999"
    return f"{x:.4f}".rstrip("0").rstrip(".")


def ameriflux_csv(spec: WorldSpec, st: Station, series: PointSeries, k: int) -> str:
    """The BASE half-hourly CSV text: two ``#`` lines, header, rows (LF line endings)."""
    names, values = ameriflux_table(spec, st, series, k)
    ncol = 2 + len(names)
    start = dt.datetime.combine(series.days[0], dt.time())
    lines = [
        f"# Site: {st.name}" + "," * (ncol - 1),
        f"# Version: {AMF_VERSION}" + "," * (ncol - 1),
        ",".join(["TIMESTAMP_START", "TIMESTAMP_END", *names]),
    ]
    half = dt.timedelta(minutes=30)
    for i, row in enumerate(values.tolist()):
        t0 = start + i * half
        t1 = t0 + half
        lines.append(f"{t0:%Y%m%d%H%M},{t1:%Y%m%d%H%M}," + ",".join(_fmt(x) for x in row))
    return "\n".join(lines) + "\n"


def bif_rows(st: Station, first: dt.date) -> list[tuple[str, int, str, str, str]]:
    """BADM Information File rows (SITE_ID, GROUP_ID, VARIABLE_GROUP, VARIABLE, DATAVALUE)."""
    gid = 30000 + 100 * int(st.name[-2:])
    sym = KOPPEN_TEXT.get(st.koppen, ("Cfa", ""))[0]
    return [
        (st.name, gid + 1, "GRP_CLIM_AVG", "MAT", "15.8"),
        (st.name, gid + 1, "GRP_CLIM_AVG", "MAP", "890"),
        (st.name, gid + 1, "GRP_CLIM_AVG", "CLIMATE_KOEPPEN", sym),
        (st.name, gid + 2, "GRP_COUNTRY", "COUNTRY", "USA"),
        (st.name, gid + 3, "GRP_HEADER", "SITE_NAME", f"Synthetic site {st.name} (smdown synth)"),
        (st.name, gid + 4, "GRP_IGBP", "IGBP", st.igbp),
        (st.name, gid + 5, "GRP_LOCATION", "LOCATION_LAT", f"{st.lat:.6f}"),
        (st.name, gid + 5, "GRP_LOCATION", "LOCATION_LONG", f"{st.lon:.6f}"),
        (st.name, gid + 5, "GRP_LOCATION", "LOCATION_ELEV", f"{st.elevation:.0f}"),
        (st.name, gid + 5, "GRP_LOCATION", "LOCATION_DATE_START", f"{first:%Y%m%d}"),
        (st.name, gid + 6, "GRP_NETWORK", "NETWORK", "AmeriFlux"),
        (
            st.name,
            gid + 7,
            "GRP_SITE_DESC",
            "SITE_DESC",
            "Synthetic tower of the smdown demo world.",
        ),
        (st.name, gid + 8, "GRP_STATE", "STATE", "OK"),
        (st.name, gid + 9, "GRP_UTC_OFFSET", "UTC_OFFSET", str(UTC_OFFSET_H)),
    ]


def bif_xlsx(st: Station, first: dt.date) -> bytes:
    """The BIF spreadsheet (sheet ``AMF-BIF``) as bytes, laid out like the real one."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "AMF-BIF"
    ws.append(["SITE_ID", "GROUP_ID", "VARIABLE_GROUP", "VARIABLE", "DATAVALUE"])
    for row in bif_rows(st, first):
        ws.append(list(row))
    ws.column_dimensions["A"].width = 20.0
    fixed = dt.datetime(first.year, first.month, first.day)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_ameriflux(
    root: Path, spec: WorldSpec, stations: list[Station], series: PointSeries
) -> list[Path]:
    """Write ``<root>/AmeriFlux/AMF_<SITE>_BASE-BADM_<VER>.zip`` (BASE_HH CSV + BIF xlsx)."""
    folder = root / "AmeriFlux"
    folder.mkdir(parents=True, exist_ok=True)
    first, last = series.days[0], series.days[-1]
    stamp = (last.year, last.month, last.day, 0, 0, 0)
    written: list[Path] = []
    for k, st in enumerate(stations):
        if st.kind != "ameriflux":
            continue
        path = folder / f"AMF_{st.name}_BASE-BADM_{AMF_VERSION}.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr(
                zipfile.ZipInfo(f"AMF_{st.name}_BASE_HH_{AMF_VERSION}.csv", stamp),
                ameriflux_csv(spec, st, series, k),
                compress_type=zipfile.ZIP_DEFLATED,
            )
            z.writestr(
                zipfile.ZipInfo(f"AMF_{st.name}_BIF_{last:%Y%m%d}.xlsx", stamp),
                bif_xlsx(st, first),
                compress_type=zipfile.ZIP_DEFLATED,
            )
        written.append(path)
    return written
