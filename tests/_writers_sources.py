"""Tiny product files for the source-reader tests, written the way the providers write them
(docs/data-layout.md): SPL3SMP_E HDF5, MODIS layer GeoTIFFs, CHIRPS, SoilGrids, MERIT, Koeppen.

Rasters are small crops on each product's own lattice, so tests stay fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from grids import Grid
from pipeline.sources import merit, modis
from pipeline.sources.base import to_native_bounds
from pipeline.sources.smap import EASE2_M09, GROUP_AM, GROUP_PM

REGION = (-98.0, 36.0, -97.0, 37.0)  # degrees (W, S, E, N), around ARM-1 (36.6054, -97.4878)
STATION = (-97.4878, 36.6054)  # lon, lat of ISMN COSMOS ARM-1 (realdata README)
TERRA = "modis-terra"  # the product family of the MODIS files written here


def write_geotiff(
    path: Path,
    data: np.ndarray,
    grid: Grid,
    *,
    nodata: float | None = None,
    scale: float | None = None,
    offset: float | None = None,
    tags: dict[str, str] | None = None,
    crs: Any = None,
) -> Path:
    """A single-band tiled, DEFLATE-compressed GeoTIFF (COG-like) of ``data`` on ``grid``."""
    import rasterio

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = data.shape
    profile = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": 1,
        "dtype": data.dtype.name,
        "crs": crs if crs is not None else grid.to_wkt(),
        "transform": grid.affine,
        "compress": "deflate",
    }
    if h >= 16 and w >= 16:
        profile.update(tiled=True, blockxsize=16, blockysize=16)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        if scale is not None or offset is not None:
            dst.scales = (scale if scale is not None else 1.0,)
            dst.offsets = (offset if offset is not None else 0.0,)
        if tags:
            dst.update_tags(**tags)
    return path


# -- SMAP ---------------------------------------------------------------------------------
def smap_window(bounds: tuple[float, float, float, float] = REGION) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the EASE2 9 km cells covering ``bounds``."""
    return EASE2_M09.window_of_bounds(to_native_bounds(bounds, "EPSG:6933"))


def write_smap(
    root: Path,
    date: dt.date,
    am: np.ndarray | float,
    pm: np.ndarray | float | None = None,
    *,
    qual_am: np.ndarray | int = 0,
    qual_pm: np.ndarray | int = 0,
    crid: int = 19240,
    number: int = 1,
    bounds: tuple[float, float, float, float] = REGION,
    meta_date: dt.date | None = None,
    omit: tuple[str, ...] = (),
    name: str | None = None,
) -> Path:
    """A global SPL3SMP_E granule (chunked, fill elsewhere) with values in ``bounds``' cells.

    ``am``/``pm`` are scalars or arrays of the window's shape (-9999 = fill);
    ``omit`` lists groups or ``group/variable`` paths to leave out.
    """
    import h5py

    r0, r1, c0, c1 = smap_window(bounds)
    shape = (r1 - r0, c1 - c0)
    fname = name or f"SMAP_L3_SM_P_E_{date:%Y%m%d}_R{crid}_{number:03d}.h5"
    path = root / "SMAP" / "SPL3SMP_E.006" / f"{date:%Y.%m.%d}" / fname
    path.parent.mkdir(parents=True, exist_ok=True)
    day = meta_date or date
    with h5py.File(path, "w") as f:
        md = f.create_group("Metadata")
        ext = md.create_group("Extent")
        ext.attrs["rangeBeginningDateTime"] = f"{day:%Y-%m-%d}T00:00:00.000Z"
        ext.attrs["rangeEndingDateTime"] = f"{day:%Y-%m-%d}T23:59:59.999Z"
        md.create_group("DatasetIdentification").attrs["shortName"] = "SPL3SMP_E"
        for group, sfx, sm, q in ((GROUP_AM, "", am, qual_am), (GROUP_PM, "_pm", pm, qual_pm)):
            if group in omit:
                continue
            g = f.create_group(group)
            if sm is None:
                sm = -9999.0
            values = {
                "soil_moisture": (np.broadcast_to(np.float32(sm), shape), "f4", -9999.0),
                "retrieval_qual_flag": (np.broadcast_to(np.uint16(q), shape), "u2", 65534),
            }
            for var, (arr, dtype, fill) in values.items():
                if f"{group}/{var}{sfx}" in omit:
                    continue
                ds = g.create_dataset(
                    var + sfx,
                    shape=EASE2_M09.shape,
                    dtype=dtype,
                    chunks=(203, 482),
                    compression="gzip",
                    fillvalue=fill,
                )
                ds[r0:r1, c0:c1] = np.asarray(arr, dtype=dtype)
                ds.attrs["_FillValue"] = np.array([fill], dtype=dtype)
                if var == "soil_moisture":
                    ds.attrs["units"] = "cm**3/cm**3"
                    ds.attrs["valid_min"] = np.float32(0.02)
                    ds.attrs["valid_max"] = np.float32(0.5)
                else:
                    ds.attrs["flag_masks"] = "1s, 2s, 4s, 8s"
                    ds.attrs["flag_meanings"] = (
                        "Retrieval_recommended Retrieval_attempted Retrieval_success "
                        "FT_retrieval_success"
                    )
    return path


# -- MODIS --------------------------------------------------------------------------------
def modis_crop(short: str, bounds: tuple[float, float, float, float] = REGION) -> Grid:
    """The window of the product's sinusoidal lattice covering ``bounds``."""
    lattice = modis.PRODUCTS[short].global_grid()
    return lattice.crop(to_native_bounds(bounds, lattice.crs))


def write_modis_layer(
    root: Path,
    short: str,
    start: dt.date,
    layer: str,
    data: np.ndarray,
    grid: Grid,
    *,
    tile: tuple[int, int] = (10, 5),
    nodata: float | None = None,
    scale: float | None = None,
    production: str = "2020162045356",
    folder: dt.date | None = None,
    tags: dict[str, str] | None = None,
) -> Path:
    """One MODIS science/QC layer GeoTIFF in the LP DAAC / Planetary Computer layout."""
    doy = start.timetuple().tm_yday
    h, v = tile
    fdate = folder or start
    name = f"{short}.A{start.year}{doy:03d}.h{h:02d}v{v:02d}.061.{production}_{layer}.tif"
    path = root / "MODIS" / f"{short}.061" / f"{fdate:%Y.%m.%d}" / name
    return write_geotiff(path, data, grid, nodata=nodata, scale=scale, tags=tags)


def write_lst(
    root: Path, start: dt.date, kelvin: float | np.ndarray, *, qc: int = 0, short: str = "MOD11A2"
) -> Grid:
    """MOD11A2/MOD21A1D LST (stored uint16, 0.02 K) plus its QC over ``REGION``; returns grid."""
    prod = modis.PRODUCTS[short]
    grid = modis_crop(short)
    raw = np.broadcast_to(np.round(np.asarray(kelvin) / 0.02), grid.shape).astype(np.uint16)
    write_modis_layer(root, short, start, prod.layer, raw, grid, nodata=0, scale=0.02)
    assert prod.qc_layer is not None
    qdtype = np.uint8 if short == "MOD11A2" else np.uint16
    write_modis_layer(root, short, start, prod.qc_layer, np.full(grid.shape, qc, qdtype), grid)
    return grid


# -- CHIRPS, SoilGrids, MERIT, Koeppen --------------------------------------------------
def chirps_grid(bounds: tuple[float, float, float, float] = REGION) -> Grid:
    return Grid.from_bounds(bounds, 0.05, "EPSG:4326")


def write_chirps(root: Path, date: dt.date, mm: np.ndarray | float) -> Path:
    grid = chirps_grid()
    data = np.broadcast_to(np.float32(mm), grid.shape).astype(np.float32)
    path = root / "CHIRPS/global_daily/tifs/p05" / f"{date:%Y}" / f"chirps-v2.0.{date:%Y.%m.%d}.tif"
    return write_geotiff(path, data, grid, nodata=-9999.0)


SOILGRIDS_ORIGIN = (-19949750.0, 8361000.0)


def soilgrids_grid(bounds: tuple[float, float, float, float] = REGION) -> Grid:
    lattice = Grid(
        "ESRI:54052",
        (250.0, 0.0, SOILGRIDS_ORIGIN[0], 0.0, -250.0, SOILGRIDS_ORIGIN[1]),
        (58034, 159246),
    )
    return lattice.crop(to_native_bounds(bounds, lattice.crs))


def write_soilgrids(root: Path, prop: str, stored: np.ndarray | int) -> Path:
    """``<root>/SoilGrids/<prop>/<prop>_0-5cm_mean.tif`` with int16 stored values."""
    grid = soilgrids_grid()
    data = np.broadcast_to(np.int16(stored), grid.shape).astype(np.int16)
    path = root / "SoilGrids" / prop / f"{prop}_0-5cm_mean.tif"
    return write_geotiff(path, data, grid, nodata=-32768, crs="ESRI:54052")


def write_merit_tile(
    root: Path,
    metres: np.ndarray | float,
    *,
    tile: str = "n35w100",
    bounds: tuple[float, float, float, float] = REGION,
) -> Path:
    """A MERIT tile file (cropped to ``bounds`` to stay small, georeferenced on the lattice)."""
    grid = merit.LATTICE.crop(bounds)
    data = np.broadcast_to(np.float32(metres), grid.shape).astype(np.float32)
    return write_geotiff(root / "MERIT_DEM" / f"{tile}_dem.tif", data, grid, nodata=-9999.0)


def write_koppen(root: Path, codes: np.ndarray | int) -> Path:
    grid = Grid.from_bounds(REGION, 1 / 120, "EPSG:4326")
    data = np.broadcast_to(np.uint8(codes), grid.shape).astype(np.uint8)
    return write_geotiff(root / "Koeppen" / "Beck_KG_V1_present_0p0083.tif", data, grid, nodata=0)


# -- a whole small world ------------------------------------------------------------------
def write_modis_value(
    root: Path, short: str, start: dt.date, physical: float, *, qc: int = 0
) -> None:
    """One composite of ``short`` over ``REGION`` holding one physical value (product units)."""
    prod = modis.PRODUCTS[short]
    grid = modis_crop(short)
    if prod.kind == "lst":
        raw, dtype, nodata = (physical + 273.15) / 0.02, np.uint16, 0
    elif prod.kind == "ndvi":
        raw, dtype, nodata = physical / 1e-4, np.int16, -3000
    elif prod.kind == "et":
        days = (
            8 if start.timetuple().tm_yday < 361 else (dt.date(start.year, 12, 31) - start).days + 1
        )
        raw, dtype, nodata = physical * days / 0.1, np.int16, 32767
    else:
        raw, dtype, nodata = physical, np.uint8, 255
    data = np.full(grid.shape, round(raw), dtype)
    write_modis_layer(root, short, start, prod.layer, data, grid, nodata=nodata)
    if prod.qc_layer is not None:
        qdtype = (
            np.uint16 if short == "MOD21A1D" else (np.int8 if prod.kind == "ndvi" else np.uint8)
        )
        write_modis_layer(root, short, start, prod.qc_layer, np.full(grid.shape, qc, qdtype), grid)


def write_world(root: Path, days: list[dt.date]) -> None:
    """Every product over ``REGION`` for ``days`` (composites whose period holds them)."""
    from pipeline.sources.padding import composite_start

    for i, d in enumerate(days):
        write_smap(root, d, 0.2 + 0.01 * i, 0.2 + 0.01 * i)
        write_chirps(root, d, float(i))
        write_modis_value(root, "MOD21A1D", d, 20.0 + i)
    for short, value in (("MOD11A2", 25.0), ("MOD13A1", 0.6), ("MOD13Q1", 0.65), ("MOD16A2", 2.0)):
        for s in sorted({composite_start(d, modis.PRODUCTS[short].period_days) for d in days}):
            write_modis_value(root, short, s, value)
    write_modis_value(root, "MCD12Q1", dt.date(days[0].year - 1, 1, 1), 10)
    write_soilgrids(root, "sand", 423)
    write_soilgrids(root, "clay", 181)
    write_soilgrids(root, "phh2o", 65)
    write_merit_tile(root, 320.0)
    write_koppen(root, 14)
