"""MODIS products of the synthetic world as whole sinusoidal tiles (one GeoTIFF per layer).

Values are the products' raw stored integers with their fill as nodata and
their scale as GDAL band metadata (docs/data-layout.md). Continuous layers
are the mean of the 90 m pixels whose centres fall in the MODIS cell; land
cover is sampled at the cell centre. Cells outside the simulated domain are
fill. Clouds (from the world's cloud field) remove daily LST and degrade
composites through the QC layers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grids import Grid
from pipeline.synth import lattices, noise
from pipeline.synth.rasters import CellIndex, sample_at, write_geotiff
from pipeline.synth.spec import WorldSpec

LST_SCALE = 0.02  # K per count (MOD11A2, MOD21A1D)
NDVI_SCALE = 0.0001
ET_SCALE = 0.1  # kg m-2 (mm) per count, per composite
ET_FILL = 32767
# MOD16A2 special values (not land / no ET): IGBP code -> stored value.
ET_SPECIAL = {17: 32766, 13: 32762, 11: 32763}


@dataclass
class ModisCells:
    """One MODIS resolution over the domain: pixel index, valid cells, cell-centre lon/lat."""

    res: int  # nominal metres: 1000, 500 or 250
    n: int  # cells per tile side
    index: CellIndex
    valid: np.ndarray  # (H, W) cell centre inside the domain (shrunk by one 1 km cell)
    lon: np.ndarray  # (H, W) cell centres
    lat: np.ndarray

    @property
    def tiles(self) -> list[tuple[int, int]]:
        """(h, v) of the tiles the block touches."""
        i = self.index
        hs = range(i.c0 // self.n, (i.c0 + i.width - 1) // self.n + 1)
        vs = range(i.r0 // self.n, (i.r0 + i.height - 1) // self.n + 1)
        return [(h, v) for v in vs for h in hs]


def modis_cells(
    domain: Grid, land: np.ndarray, res: int, xy: tuple[np.ndarray, np.ndarray]
) -> ModisCells:
    """Map the domain's pixels (sinusoidal ``xy`` of their centres) to MODIS cells at ``res``."""
    n = lattices.MODIS_PIXELS[res]
    cell = lattices.MODIS_TILE / n
    x, y = xy
    gcol = np.floor((x - lattices.MODIS_X0) / cell).astype(np.int32)
    grow = np.floor((lattices.MODIS_Y0 - y) / cell).astype(np.int32)
    index = CellIndex(grow, gcol, land)
    del gcol, grow
    cx = lattices.MODIS_X0 + (np.arange(index.c0, index.c0 + index.width) + 0.5) * cell
    cy = lattices.MODIS_Y0 - (np.arange(index.r0, index.r0 + index.height) + 0.5) * cell
    lon, lat = lattices.sinusoidal_lonlat(cx[None, :], cy[:, None])
    w, s, e, nn = domain.bounds
    m = 0.012  # degrees: half a 1 km cell's diagonal, so edge cells are whole
    valid = (lon > w + m) & (lon < e - m) & (lat > s + m) & (lat < nn - m)
    return ModisCells(res, n, index, valid, lon.astype(np.float64), lat.astype(np.float64))


def eight_day_start(date: dt.date) -> dt.date:
    """First day of the 8-day composite (DOY 1, 9, 17, ...) that contains ``date``."""
    doy = date.timetuple().tm_yday
    return dt.date(date.year, 1, 1) + dt.timedelta(days=((doy - 1) // 8) * 8)


def sixteen_day_start(date: dt.date) -> dt.date:
    """First day of the 16-day composite (DOY 1, 17, 33, ...) that contains ``date``."""
    doy = date.timetuple().tm_yday
    return dt.date(date.year, 1, 1) + dt.timedelta(days=((doy - 1) // 16) * 16)


def composite_end(start: dt.date, period: int) -> dt.date:
    """Last day of a composite; the year's last composite is cut at 31 December."""
    return min(start + dt.timedelta(days=period - 1), dt.date(start.year, 12, 31))


def composites(first: dt.date, last: dt.date, period: int) -> list[tuple[dt.date, dt.date]]:
    """(start, end) of every composite of ``period`` days overlapping [first, last]."""
    begin = eight_day_start if period == 8 else sixteen_day_start
    out: list[tuple[dt.date, dt.date]] = []
    s = begin(first)
    while s <= last:
        e = composite_end(s, period)
        out.append((s, e))
        s = e + dt.timedelta(days=1)
        s = begin(s)
    return out


def production_stamp(spec: WorldSpec, short: str, start: dt.date, period: int) -> str:
    """``YYYYDDDHHMMSS`` production time: a few days after the composite, fixed by the seed."""
    k = spec.key("modis-production", short, start.toordinal())
    day = start + dt.timedelta(days=period + 2 + k % 6)
    secs = (k >> 8) % 86400
    hms = f"{secs // 3600:02d}{secs // 60 % 60:02d}{secs % 60:02d}"
    return f"{day.year}{day.timetuple().tm_yday:03d}{hms}"


def layer_path(
    root: Path, short: str, start: dt.date, h: int, v: int, stamp: str, layer: str
) -> Path:
    """``<root>/MODIS/<SHORT>.061/YYYY.MM.DD/<SHORT>.AYYYYDDD.hHHvVV.061.<stamp>_<LAYER>.tif``."""
    doy = start.timetuple().tm_yday
    name = f"{short}.A{start.year}{doy:03d}.h{h:02d}v{v:02d}.061.{stamp}_{layer}.tif"
    return root / "MODIS" / f"{short}.061" / f"{start:%Y.%m.%d}" / name


def write_tiles(
    root: Path,
    short: str,
    start: dt.date,
    stamp: str,
    cells: ModisCells,
    layers: dict[str, tuple[np.ndarray, int | float, float | None]],
) -> list[Path]:
    """Write every tile of ``cells`` for each layer: name -> (block raw values, fill, scale)."""
    written: list[Path] = []
    i = cells.index
    for h, v in cells.tiles:
        tile = lattices.modis_tile_grid(h, v, cells.res)
        tr0, tc0 = v * cells.n, h * cells.n
        br0 = max(i.r0, tr0)
        br1 = min(i.r0 + i.height, tr0 + cells.n)
        bc0 = max(i.c0, tc0)
        bc1 = min(i.c0 + i.width, tc0 + cells.n)
        for layer, (block, fill, scale) in layers.items():
            part = np.ascontiguousarray(block[br0 - i.r0 : br1 - i.r0, bc0 - i.c0 : bc1 - i.c0])
            path = layer_path(root, short, start, h, v, stamp, layer)
            write_geotiff(
                path,
                part,
                tile,
                nodata=fill,
                scale=scale,
                offset=0.0 if scale is not None else None,
                description=layer,
                offset_rc=(br0 - tr0, bc0 - tc0),
            )
            written.append(path)
    return written


def cell_uniform(spec: WorldSpec, name: str, day: int, cells: ModisCells) -> np.ndarray:
    """Per-cell uniform numbers for QC draws, fixed by seed, product, day and cell."""
    i = cells.index
    rr = np.arange(i.r0, i.r0 + i.height)[:, None]
    cc = np.arange(i.c0, i.c0 + i.width)[None, :]
    return noise.hash_uniform(spec.key("modis-qc", name, day), rr, cc)


def lst_raw(lst_c: np.ndarray) -> np.ndarray:
    """degC -> stored uint16 counts of 0.02 K (0 is fill)."""
    return np.clip(np.round((lst_c + 273.15) / LST_SCALE), 7500, 65535).astype(np.uint16)


def mod21_daily(
    spec: WorldSpec, date: dt.date, cells: ModisCells, lst: np.ndarray, cloud_frac: np.ndarray
) -> dict[str, tuple[np.ndarray, int | float, float | None]]:
    """MOD21A1D ``LST_1KM`` and ``QC``: clear cells good (some 'other'), cloudy not produced."""
    u = cell_uniform(spec, "MOD21A1D", date.toordinal(), cells)
    ok = cells.valid & np.isfinite(lst)
    cloudy = cloud_frac > 0.5
    raw = np.where(ok & ~cloudy, lst_raw(np.nan_to_num(lst)), 0).astype(np.uint16)
    qc = np.where(u < 0.12, 1, 0).astype(np.uint16)
    qc = np.where(cloudy, 2, qc).astype(np.uint16)
    qc = np.where(ok, qc, 3).astype(np.uint16)
    return {"LST_1KM": (raw, 0, LST_SCALE), "QC": (qc, 3, None)}


def mod11_composite(
    cells: ModisCells, lst_sum: np.ndarray, n_clear: np.ndarray
) -> dict[str, tuple[np.ndarray, int | float, float | None]]:
    """MOD11A2 ``LST_Day_1km`` (mean of clear days) and ``QC_Day`` (00 good: >= 3 clear days)."""
    ok = cells.valid & (n_clear > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = lst_sum / np.maximum(n_clear, 1)
    raw = np.where(ok, lst_raw(mean), 0).astype(np.uint16)
    qc = np.where(n_clear >= 3, 0, 1).astype(np.uint8)
    qc = np.where(n_clear == 0, 2, qc).astype(np.uint8)
    qc = np.where(cells.valid, qc, 3).astype(np.uint8)
    return {"LST_Day_1km": (raw, 0, LST_SCALE), "QC_Day": (qc, 3, None)}


def mod13_composite(
    spec: WorldSpec, start: dt.date, cells: ModisCells, ndvi: np.ndarray, res: int
) -> dict[str, tuple[np.ndarray, int | float, float | None]]:
    """MOD13A1/Q1 NDVI (int16, 1e-4) and pixel reliability (0 good, 1 marginal, 3 cloudy)."""
    u = cell_uniform(spec, f"MOD13-{res}", start.toordinal(), cells)
    rel = np.where(u < 0.08, 1, 0).astype(np.int8)
    rel = np.where(u > 0.97, 3, rel).astype(np.int8)
    v = np.where(rel == 3, ndvi - 0.15, ndvi)  # residual cloud lowers NDVI
    ok = cells.valid & np.isfinite(v)
    raw = np.where(ok, np.clip(np.round(np.nan_to_num(v) / NDVI_SCALE), -2000, 10000), -3000)
    rel = np.where(ok, rel, -1).astype(np.int8)
    layer = f"{res}m_16_days"
    return {
        f"{layer}_NDVI": (raw.astype(np.int16), -3000, NDVI_SCALE),
        f"{layer}_pixel_reliability": (rel, -1, None),
    }


def mod16_composite(
    cells: ModisCells, et_sum: np.ndarray, cloudy_days: np.ndarray, n_days: int, lc: np.ndarray
) -> dict[str, tuple[np.ndarray, int | float, float | None]]:
    """MOD16A2 ``ET_500m`` (int16 0.1 mm per composite; special codes on water/urban/wetland)."""
    ok = cells.valid & np.isfinite(et_sum)
    raw = np.where(ok, np.clip(np.round(np.nan_to_num(et_sum) / ET_SCALE), 0, 32700), ET_FILL)
    for code, special in ET_SPECIAL.items():
        raw = np.where(ok & (lc == code), special, raw)
    qc = np.where(cloudy_days > n_days // 2, 1, 0)
    qc = np.where(ok, qc, 255)
    return {
        "ET_500m": (raw.astype(np.int16), ET_FILL, ET_SCALE),
        "ET_QC_500m": (qc.astype(np.uint8), 255, None),
    }


def mcd12_landcover(cells: ModisCells, domain: Grid, landcover: np.ndarray) -> np.ndarray:
    """MCD12Q1 LC_Type1 block: the 90 m land cover at each 500 m cell centre (255 outside)."""
    lc = sample_at(landcover, domain, cells.lon, cells.lat, 255)
    return np.where(cells.valid, lc, 255).astype(np.uint8)
