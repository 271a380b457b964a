"""``write_world``: stream the synthetic world day by day into the real products' files.

Order: static layers and their products (MERIT, SoilGrids, Koeppen,
MCD12Q1), 16-day NDVI, then one pass over the days (spin-up first) that
writes the truth, SMAP, CHIRPS and the daily LST and the 8-day LST and ET
composites when they close, then the stations. The NDVI, LST and ET products
are the world's family's (``WorldSpec.family``, ``models.variables``): MODIS
Terra/Aqua as GeoTIFF tiles (``synth.modis``), VIIRS as HDF-EOS5 tiles
(``synth.viirs``); every family sees the same simulated values. Only one day of
90 m fields is held at a time (plus composite accumulators on MODIS cells).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.variables import products as family_products
from pipeline.synth import insitu, lattices, modis, noise, products, smap, viirs
from pipeline.synth.modis import composites
from pipeline.synth.spec import PIXELS_PER_DEGREE, WorldSpec
from pipeline.synth.truth import TruthWriter, truth_path
from pipeline.synth.world import DailyModel, static_tile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorldManifest:
    """What ``write_world`` wrote: files per product, the world's figures and wall time (s)."""

    spec: WorldSpec
    root: Path
    files: dict[str, tuple[Path, ...]]
    stats: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def all_files(self) -> list[Path]:
        """Every file written, sorted."""
        return sorted(p for paths in self.files.values() for p in paths)


def old_release_days(spec: WorldSpec) -> list[dt.date]:
    """Days that also get an older SMAP release (about one in ten, at least one)."""
    days = [d for d in spec.days if spec.key("old-release", d.toordinal()) % 10 == 0]
    if not days and len(spec.days) >= 2:
        days = [spec.days[1]]
    return days


def simulated_days(spec: WorldSpec) -> tuple[dt.date, dt.date]:
    """First and last day stepped: the period widened to whole 8-day MODIS composites."""
    eights = composites(spec.start, spec.end, 8)
    return min(spec.start, eights[0][0]), max(spec.end, eights[-1][1])


def start_model(model: DailyModel, spec: WorldSpec) -> None:
    """Reset and spin ``model`` up so that its next ``step`` is the first simulated day."""
    first, _ = simulated_days(spec)
    model.reset(first - dt.timedelta(days=spec.spinup_days))
    for _ in range(spec.spinup_days):
        model.spin()


class _Writer:
    """Runs file writes on one background thread (GDAL/blosc release the GIL)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.pending.append(self.pool.submit(fn, *args))
        if len(self.pending) > 16:
            self.pending.pop(0).result()

    def close(self) -> None:
        for f in self.pending:
            f.result()
        self.pool.shutdown()


def _family_writer(short: str) -> Callable[..., list[Path]]:
    """The tile writer of a product: HDF-EOS5 for VIIRS, GeoTIFF layers for MODIS."""
    from pipeline.sources.viirs import PRODUCTS as VIIRS_PRODUCTS

    return viirs.write_tiles if short in VIIRS_PRODUCTS else modis.write_tiles


def _tile_paths(out: Path, short: str, day: dt.date, stamp: str, cells: Any, names: Any) -> list:
    """The files ``_family_writer(short)`` will write for ``day`` (known before writing)."""
    from pipeline.sources.viirs import PRODUCTS as VIIRS_PRODUCTS

    if short in VIIRS_PRODUCTS:
        return [viirs.tile_path(out, short, day, h, v, stamp) for h, v in cells.tiles]
    return [
        modis.layer_path(out, short, day, h, v, stamp, layer)
        for h, v in cells.tiles
        for layer in names
    ]


def write_world(spec: WorldSpec, out: Path) -> WorldManifest:
    """Write the whole world under ``out`` in the layout of docs/data-layout.md."""
    with noise.single_thread_blas():
        return _write_world(spec, Path(out))


def _write_world(spec: WorldSpec, out: Path) -> WorldManifest:
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}

    def add(product: str, paths: list[Path] | Path) -> None:
        files.setdefault(product, []).extend([paths] if isinstance(paths, Path) else paths)

    domain = spec.domain_grid()
    region = spec.region_grid()
    static = static_tile(spec, domain)
    model = DailyModel(spec, domain, static)
    lc = static["landcover"]
    land = lc != 17
    log.info(
        "synth: domain %s x %s pixels, static layers in %.1f s",
        *domain.shape,
        time.perf_counter() - t0,
    )

    add("merit", products.write_merit(out, domain, static["elevation"]))
    add("soilgrids", products.write_soilgrids(out, domain, static))
    add("koppen", products.write_koppen(out, domain, static["koppen"]))

    cells9 = smap.smap_cells(domain, lc)
    lon2, lat2 = domain.x_coords()[None, :], domain.y_coords()[:, None]
    xy = lattices.sinusoidal_xy(lon2, lat2)
    mc = {res: modis.modis_cells(domain, land, res, xy) for res in (1000, 500, 250)}
    del xy

    training = family_products("training", spec.family)
    maps = family_products("maps", spec.family)
    from pipeline.sources.modis import PRODUCTS as MODIS_PRODUCTS
    from pipeline.sources.viirs import PRODUCTS as VIIRS_PRODUCTS

    shorts = {**MODIS_PRODUCTS, **VIIRS_PRODUCTS}
    res_of = {1200: 1000, 2400: 500, 4800: 250}
    ndvi_products = sorted({training["ndvi"], maps["ndvi"]})
    lst_daily = maps["lst"]
    lst_8day = training["lst"] if shorts[training["lst"]].period_days == 8 else None
    et_short = training["et"]

    lc500 = modis.mcd12_landcover(mc[500], domain, lc)
    for year in sorted({d.year for d in spec.days}):
        jan1 = dt.date(year, 1, 1)
        stamp = modis.production_stamp(spec, "MCD12Q1", jan1, 365)
        add(
            "MCD12Q1",
            modis.write_tiles(
                out, "MCD12Q1", jan1, stamp, mc[500], {"LC_Type1": (lc500, 255, None)}
            ),
        )

    for c_start, c_end in composites(spec.start, spec.end, 16):
        mid = c_start + dt.timedelta(days=(c_end - c_start).days // 2)
        ndvi90 = model.ndvi(mid)
        for short in ndvi_products:
            res = res_of[shorts[short].tile_px]
            layers = modis.mod13_composite(spec, c_start, mc[res], mc[res].index.mean(ndvi90), res)
            stamp = modis.production_stamp(spec, short, c_start, 16)
            add(short, _family_writer(short)(out, short, c_start, stamp, mc[res], layers))
    log.info("synth: static products written at %.1f s", time.perf_counter() - t0)

    stations = insitu.place_stations(spec, domain, static, model.theta_sat)
    stations += insitu.place_ameriflux(spec, domain, static, model.theta_sat)
    st_r = np.array([s.row for s in stations], dtype=np.int64)
    st_c = np.array([s.col for s in stations], dtype=np.int64)
    nd = len(spec.days)
    pts = insitu.PointSeries(
        spec.days,
        np.zeros((nd, len(stations)), np.float32),
        np.zeros((nd, len(stations)), np.float32),
        np.zeros((nd, len(stations)), np.float32),
    )

    eights = composites(spec.start, spec.end, 8)
    sim_first, sim_last = simulated_days(spec)
    start_model(model, spec)
    log.info("synth: spin-up done at %.1f s", time.perf_counter() - t0)

    ro = round((domain.transform[5] - region.transform[5]) * PIXELS_PER_DEGREE)
    co = round((region.transform[2] - domain.transform[2]) * PIXELS_PER_DEGREE)
    rh, rw = region.shape
    writer = _Writer()
    truth = TruthWriter(truth_path(out), region, spec.days)
    add("truth", truth.path)
    old_days = set(old_release_days(spec))
    c1k, c500 = mc[1000], mc[500]
    lst_sum = np.zeros((c1k.index.height, c1k.index.width), np.float64)
    n_clear = np.zeros_like(lst_sum, dtype=np.int32)
    et_sum = np.zeros((c500.index.height, c500.index.width), np.float64)
    in_region9 = _cells_in_region(cells9, spec.region)
    sub_std: list[float] = []
    pairs_truth: list[np.ndarray] = []
    pairs_smap: list[np.ndarray] = []
    comp_i = 0
    day = sim_first
    while day <= sim_last:
        f = model.step()
        assert f.date == day
        lst1 = c1k.index.mean(f.lst, land_only=False)
        lst1 = lst1 + 0.5 * noise.hash_normal(
            spec.key("lst-obs", day.toordinal()),
            np.arange(c1k.index.r0, c1k.index.r0 + c1k.index.height)[:, None],
            np.arange(c1k.index.c0, c1k.index.c0 + c1k.index.width)[None, :],
        ).astype(np.float32)
        cloud1 = c1k.index.fraction(f.cloud)
        clear = (cloud1 <= 0.5) & np.isfinite(lst1)
        lst_sum += np.where(clear, lst1, 0.0)
        n_clear += clear
        et_sum += c500.index.mean(f.et)
        if spec.start <= day <= spec.end:
            k = (day - spec.start).days
            writer.submit(truth.write, day, f.soil_moisture[ro : ro + rh, co : co + rw].copy())
            cell_truth = cells9.index.mean(f.soil_moisture)
            sq = cells9.index.mean(np.square(f.soil_moisture))
            std = np.sqrt(np.maximum(sq - np.square(cell_truth), 0.0))
            sub_std.append(float(np.nanmean(std[in_region9])))
            ndvi9 = cells9.index.mean(f.ndvi)
            rain9 = cells9.index.mean(f.precip, land_only=False)
            tair9 = cells9.index.mean(f.tair, land_only=False)
            for crid in [spec.smap_crid] + ([spec.smap_old_crid] if day in old_days else []):
                passes = smap.retrievals(spec, day, cells9, cell_truth, ndvi9, rain9, tair9, crid)
                path = smap.granule_path(out, day, crid)
                writer.submit(smap.write_granule, path, day, crid, cells9, passes)
                add("smap", path)
                if crid == spec.smap_crid:
                    for p in passes.values():
                        ok = p.covered & (p.soil_moisture > 0) & ((p.retrieval_qual_flag & 1) == 0)
                        ok &= in_region9
                        pairs_truth.append(cell_truth[ok])
                        pairs_smap.append(p.soil_moisture[ok])
            add("chirps", products.chirps_path(out, day))
            writer.submit(products.write_chirps, out, spec, day)
            layers = modis.mod21_daily(spec, day, c1k, lst1, cloud1)
            stamp = modis.production_stamp(spec, lst_daily, day, 1)
            add(lst_daily, _tile_paths(out, lst_daily, day, stamp, c1k, layers))
            writer.submit(_family_writer(lst_daily), out, lst_daily, day, stamp, c1k, layers)
            pts.theta[k] = f.soil_moisture[st_r, st_c]
            pts.tair[k] = f.tair[st_r, st_c]
            pts.rain[k] = f.precip[st_r, st_c]
        if comp_i < len(eights) and day == eights[comp_i][1]:
            c_start, c_end = eights[comp_i]
            n_days = (c_end - c_start).days + 1
            if lst_8day is not None:
                lay11 = modis.mod11_composite(c1k, lst_sum, n_clear)
                stamp = modis.production_stamp(spec, lst_8day, c_start, 8)
                add(
                    lst_8day,
                    _family_writer(lst_8day)(out, lst_8day, c_start, stamp, c1k, lay11),
                )
            cloudy = np.zeros_like(et_sum, dtype=np.int32)
            lay16 = modis.mod16_composite(c500, et_sum, cloudy, n_days, lc500)
            stamp = modis.production_stamp(spec, et_short, c_start, 8)
            add(et_short, _family_writer(et_short)(out, et_short, c_start, stamp, c500, lay16))
            lst_sum[:] = 0.0
            n_clear[:] = 0
            et_sum[:] = 0.0
            comp_i += 1
        day += dt.timedelta(days=1)
    writer.close()
    truth.close()
    log.info("synth: daily products written at %.1f s", time.perf_counter() - t0)

    add("ismn", insitu.write_ismn(out, spec, stations, pts))
    add("ameriflux", insitu.write_ameriflux(out, spec, stations, pts))

    t_all = np.concatenate(pairs_truth) if pairs_truth else np.zeros(0)
    s_all = np.concatenate(pairs_smap) if pairs_smap else np.zeros(0)
    stats = {
        "subcell_std_mean": float(np.mean(sub_std)) if sub_std else float("nan"),
        "smap_truth_r": float(np.corrcoef(t_all, s_all)[0, 1]) if t_all.size > 2 else float("nan"),
        "smap_truth_bias": float(np.mean(s_all - t_all)) if t_all.size else float("nan"),
        "smap_truth_rmse": float(np.sqrt(np.mean((s_all - t_all) ** 2)))
        if t_all.size
        else float("nan"),
        "smap_n_retrievals": float(t_all.size),
        "station_rain_mean_mm": float(np.mean(pts.rain)) if pts.rain.size else float("nan"),
    }
    world = _world_json(spec, domain, region, stations, stats)
    (out / "world.json").write_text(json.dumps(world, indent=1) + "\n", encoding="utf-8")
    add("world", out / "world.json")
    seconds = time.perf_counter() - t0
    log.info("synth: world written in %.1f s under %s", seconds, out)
    return WorldManifest(
        spec=spec,
        root=out,
        files={k: tuple(v) for k, v in files.items()},
        stats=stats,
        seconds=seconds,
    )


def _cells_in_region(
    cells: smap.SmapCells, region: tuple[float, float, float, float]
) -> np.ndarray:
    """EASE cells whose centre lies in the region and that are wholly simulated."""
    w, s, e, n = region
    return cells.complete & (cells.lon > w) & (cells.lon < e) & (cells.lat > s) & (cells.lat < n)


def _world_json(
    spec: WorldSpec,
    domain: Any,
    region: Any,
    stations: list[insitu.Station],
    stats: dict[str, float],
) -> dict[str, Any]:
    from grids import Grid

    assert isinstance(domain, Grid) and isinstance(region, Grid)
    r0 = round((90.0 - domain.transform[5]) * PIXELS_PER_DEGREE)
    c0 = round((domain.transform[2] + 180.0) * PIXELS_PER_DEGREE)
    return {
        "generator": "pipeline.synth",
        "seed": spec.seed,
        "rain_factor": spec.rain_factor,
        "family": spec.family,
        "region": list(spec.region),
        "start": spec.start.isoformat(),
        "end": spec.end.isoformat(),
        "domain": list(domain.bounds),
        "truth": {
            "path": "truth/soil_moisture_90m.zarr",
            "grid": list(region.transform),
            "shape": list(region.shape),
        },
        "smap_old_release_days": [d.isoformat() for d in old_release_days(spec)],
        # for [insitu] wetland_sites: the reader knows ISMN wetlands only from that list
        "ismn_wetland_sites": [
            f"ISMN:{s.network}:{s.name}" for s in stations if s.kind == "ismn" and s.landcover == 11
        ],
        "stats": stats,
        "stations": [
            {
                "kind": s.kind,
                "network": s.network,
                "station": s.name,
                "lat": s.lat,
                "lon": s.lon,
                "pixel_row": r0 + s.row,  # global 1/1200-degree row from 90 N
                "pixel_col": c0 + s.col,  # global column from 180 W
                "pixel_lat": float(domain.transform[5] + (s.row + 0.5) * domain.transform[4]),
                "pixel_lon": float(domain.transform[2] + (s.col + 0.5) * domain.transform[0]),
                "depths": [[x.depth_from, x.depth_to, x.name] for x in s.sensors],
                "landcover": s.landcover,
                "koppen": s.koppen,
                "igbp": s.igbp,
                "saturation": round(s.saturation, 4),
            }
            for s in stations
        ],
    }
