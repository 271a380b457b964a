"""SMAP L3 enhanced (SPL3SMP_E) retrievals of the synthetic truth, written as real HDF5 granules.

A retrieval is the truth averaged over the 90 m pixels whose centres fall in
the 9 km EASE-Grid 2.0 cell, blurred like the ~33 km radiometer footprint
(half the cell, half its 3 x 3 neighbourhood), plus a vegetation-dependent
bias (dry under dense canopies: +0.02 - 0.08 * NDVI m3 m-3) and noise
(sigma 0.015 + 0.035 * NDVI m3 m-3), clipped to the valid range 0.02-0.5.
AM (6 am descending) and PM (6 pm ascending) passes cover diagonal swaths,
so a cell is seen on some days only; frozen ground and failed retrievals are
fill; water, urban and forest cells and random RFI are flagged "not
recommended" (retrieval_qual_flag bit 0), as in the real product.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter

from grids import Grid
from pipeline.synth import lattices, noise
from pipeline.synth.rasters import CellIndex
from pipeline.synth.spec import WorldSpec

SM_FILL = np.float32(-9999.0)
FLAG_FILL = np.uint16(65534)
IDX_FILL = np.uint16(65534)
VALID_MIN, VALID_MAX = 0.02, 0.5  # m3 m-3 (DMR valid_min/valid_max)

# retrieval_qual_flag bits (bit set = condition NOT met), DMR flag_meanings order.
QF_NOT_RECOMMENDED = 1
QF_NOT_ATTEMPTED = 2
QF_NOT_SUCCESSFUL = 4
QF_FT_NOT_SUCCESSFUL = 8
# surface_flag bits used here (DMR flag_meanings order).
SF_STATIC_WATER = 1
SF_URBAN = 8
SF_PRECIPITATION = 16
SF_MODEL_FROZEN = 256
SF_DENSE_VEGETATION = 1024

SWATH_PERIOD = 250  # EASE 9 km columns between adjacent orbit tracks at mid-latitudes
SWATH_WIDTH = 108  # columns covered by one ~1000 km swath


@dataclass
class SmapCells:
    """The EASE2 M09 cells over the domain and their pixel index."""

    index: CellIndex
    rows: np.ndarray  # global EASE rows of the block, 1-D
    cols: np.ndarray  # global EASE columns of the block, 1-D
    complete: np.ndarray  # (H, W) cell lies wholly inside the domain
    lat: np.ndarray  # (H, W) float32 cell-centre latitude
    lon: np.ndarray  # (H, W) float32 cell-centre longitude
    water: np.ndarray  # (H, W) fraction of water pixels
    urban: np.ndarray
    forest: np.ndarray


def smap_cells(domain: Grid, landcover: np.ndarray) -> SmapCells:
    """Map the domain's 90 m pixels to EASE2 M09 cells (separable: row(lat), col(lon))."""
    lon = domain.x_coords()
    lat = domain.y_coords()
    x, y = lattices.ease2_separable_xy(lon=lon, lat=lat)
    cell = lattices.EASE2_M09_CELL
    cols = np.floor((x - lattices.EASE2_M09_X0) / cell).astype(np.int64)
    rows = np.floor((lattices.EASE2_M09_Y0 - y) / cell).astype(np.int64)
    land = landcover != 17
    index = CellIndex(rows[:, None], cols[None, :], land)
    brow = np.arange(index.r0, index.r0 + index.height)
    bcol = np.arange(index.c0, index.c0 + index.width)
    # cell edges in lon/lat: complete when wholly inside the domain
    x_edges = lattices.EASE2_M09_X0 + np.arange(index.c0, index.c0 + index.width + 1) * cell
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:6933", "EPSG:4326", always_xy=True)
    lon_edges, _ = t.transform(x_edges, np.zeros_like(x_edges))
    lat_edges = lattices.ease2_lat_of_row_edges(np.arange(index.r0, index.r0 + index.height + 1))
    w, s, e, n = domain.bounds
    ok_c = (np.asarray(lon_edges[:-1]) >= w - 1e-9) & (np.asarray(lon_edges[1:]) <= e + 1e-9)
    ok_r = (lat_edges[:-1] <= n + 1e-9) & (lat_edges[1:] >= s - 1e-9)
    complete = ok_r[:, None] & ok_c[None, :]
    clon, clat = lattices.ease2_lonlat_of_cells(brow, bcol)
    shape = (index.height, index.width)
    return SmapCells(
        index=index,
        rows=brow,
        cols=bcol,
        complete=complete,
        lat=np.broadcast_to(clat[:, None], shape).astype(np.float32),
        lon=np.broadcast_to(clon[None, :], shape).astype(np.float32),
        water=index.fraction(landcover == 17),
        urban=index.fraction(landcover == 13),
        forest=index.fraction(landcover == 4),
    )


def swath_mask(
    spec: WorldSpec, date: dt.date, rows: np.ndarray, cols: np.ndarray, pm: bool
) -> np.ndarray:
    """Cells of the block seen by the AM (or PM) swaths of ``date`` (diagonal stripes)."""
    d = date.toordinal()
    shift = (d * 83 + (125 if pm else 0) + spec.key("swath", pm) % SWATH_PERIOD) % SWATH_PERIOD
    slope = 0.18 if pm else -0.18
    phase = np.mod(cols[None, :] + slope * rows[:, None] + shift, SWATH_PERIOD)
    return phase < SWATH_WIDTH


def _blur(truth: np.ndarray) -> np.ndarray:
    """Half the cell, half the mean of its 3 x 3 neighbourhood (NaN-aware)."""
    ok = np.isfinite(truth)
    v = np.where(ok, truth, 0.0)
    s = uniform_filter(v.astype(np.float64), size=3, mode="constant")
    n = uniform_filter(ok.astype(np.float64), size=3, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        neigh = s / n
    return (0.5 * truth + 0.5 * neigh).astype(np.float32)


@dataclass
class SmapPass:
    """One pass (AM or PM) over the block: values with fill, flags, coverage."""

    soil_moisture: np.ndarray  # float32, -9999 fill
    retrieval_qual_flag: np.ndarray  # uint16, 65534 fill
    surface_flag: np.ndarray  # uint16, 65534 fill
    covered: np.ndarray  # bool, cell attempted by this pass


def retrievals(
    spec: WorldSpec,
    date: dt.date,
    cells: SmapCells,
    truth: np.ndarray,
    ndvi: np.ndarray,
    rain: np.ndarray,
    tair: np.ndarray,
    crid: str,
) -> dict[str, SmapPass]:
    """AM and PM retrievals over the block for one day (cell arrays of ``smap_cells``)."""
    d = date.toordinal()
    base = _blur(truth)
    veg = np.clip(np.nan_to_num(ndvi, nan=0.3), 0.0, 1.0)
    bias = 0.02 - 0.08 * veg
    sigma = 0.015 + 0.035 * veg
    rr = cells.rows[:, None]
    cc = cells.cols[None, :]
    sf = np.zeros(truth.shape, dtype=np.uint16)
    sf[cells.water > 0.05] |= SF_STATIC_WATER
    sf[cells.urban > 0.15] |= SF_URBAN
    sf[np.nan_to_num(rain) > 1.0] |= SF_PRECIPITATION
    sf[(cells.forest > 0.5) | (veg > 0.75)] |= SF_DENSE_VEGETATION
    out: dict[str, SmapPass] = {}
    for name, pm in (("AM", False), ("PM", True)):
        frozen = np.nan_to_num(tair, nan=10.0) + (3.0 if pm else -4.0) < 0.0
        e = noise.hash_normal(spec.key("smap-noise", crid, name, d), rr, cc)
        u = noise.hash_uniform(spec.key("smap-qc", crid, name, d), rr, cc)
        sm = base + bias + sigma * e + (-0.008 if pm else 0.0)
        covered = swath_mask(spec, date, cells.rows, cells.cols, pm) & cells.complete
        covered &= np.isfinite(base)
        flag = np.zeros(truth.shape, dtype=np.uint16)
        not_rec = (cells.water > 0.05) | (cells.urban > 0.15) | (cells.forest > 0.5) | (u < 0.04)
        flag[not_rec] |= QF_NOT_RECOMMENDED
        failed = (u > 0.99) | frozen
        flag[failed] |= QF_NOT_RECOMMENDED | QF_NOT_SUCCESSFUL
        flag |= QF_FT_NOT_SUCCESSFUL * (u > 0.5).astype(np.uint16)
        sm = np.clip(sm, VALID_MIN, VALID_MAX).astype(np.float32)
        sm[failed] = SM_FILL
        sfp = sf | np.where(frozen, SF_MODEL_FROZEN, 0).astype(np.uint16)
        out[name] = SmapPass(
            soil_moisture=np.where(covered, sm, SM_FILL).astype(np.float32),
            retrieval_qual_flag=np.where(covered, flag, FLAG_FILL).astype(np.uint16),
            surface_flag=np.where(covered, sfp, FLAG_FILL).astype(np.uint16),
            covered=covered,
        )
    return out


def granule_name(date: dt.date, crid: str, counter: int = 1) -> str:
    """``SMAP_L3_SM_P_E_YYYYMMDD_R<CRID>_<NNN>.h5``."""
    return f"SMAP_L3_SM_P_E_{date:%Y%m%d}_{crid}_{counter:03d}.h5"


def granule_path(root: Path, date: dt.date, crid: str, counter: int = 1) -> Path:
    """``<root>/SMAP/SPL3SMP_E.006/YYYY.MM.DD/<granule>``."""
    return root / "SMAP" / "SPL3SMP_E.006" / f"{date:%Y.%m.%d}" / granule_name(date, crid, counter)


_COORDS_AM = "/Soil_Moisture_Retrieval_Data_AM/latitude /Soil_Moisture_Retrieval_Data_AM/longitude"
_QF_MEANINGS = "Retrieval_recommended Retrieval_attempted Retrieval_success FT_retrieval_success"
_SF_MEANINGS = (
    "36_km_static_water_body 36_km_radar_water_body_detection 36_km_coastal_proximity "
    "36_km_urban_area 36_km_precipitation 36_km_snow_or_ice 36_km_permanent_snow_or_ice "
    "36_km_radiometer_frozen_ground 36_km_model_frozen_ground 36_km_mountainous_terrain "
    "36_km_dense_vegetation 36_km_nadir_region"
)


def write_granule(
    path: Path, date: dt.date, crid: str, cells: SmapCells, passes: dict[str, SmapPass]
) -> Path:
    """Write one global SPL3SMP_E granule; only the block's chunks are stored (rest is fill)."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    shape = lattices.EASE2_M09_SHAPE
    r0, c0 = int(cells.rows[0]), int(cells.cols[0])
    r1, c1 = r0 + len(cells.rows), c0 + len(cells.cols)
    chunks = (203, 482)
    tmp = path.with_suffix(".h5.part")
    with h5py.File(tmp, "w", libver="earliest") as f:
        meta = f.create_group("Metadata")
        ident = meta.create_group("DatasetIdentification")
        for k, v in {
            "shortName": "SPL3SMP_E",
            "SMAPShortName": "L3_SM_P_E",
            "fileName": path.name,
            "CompositeReleaseID": crid,
            "ECSVersionID": "006",
            "format": "HDF5",
            "creationDate": f"{date + dt.timedelta(days=2):%Y-%m-%d}",
            "abstract": "Synthetic SPL3SMP_E granule written by smdown synth (not NASA data).",
        }.items():
            ident.attrs[k] = np.bytes_(v)
        ext = meta.create_group("Extent")
        ext.attrs["rangeBeginningDateTime"] = np.bytes_(f"{date:%Y-%m-%d}T00:00:00.000Z")
        ext.attrs["rangeEndingDateTime"] = np.bytes_(f"{date:%Y-%m-%d}T23:59:59.999Z")
        ext.attrs["westBoundLongitude"] = np.float32(-180.0)
        ext.attrs["eastBoundLongitude"] = np.float32(180.0)
        ext.attrs["southBoundLatitude"] = np.float32(-85.04450226)
        ext.attrs["northBoundLatitude"] = np.float32(85.04450226)
        for name, p in passes.items():
            suffix = "_pm" if name == "PM" else ""
            g = f.create_group(f"Soil_Moisture_Retrieval_Data_{name}")

            def ds(
                var: str,
                dtype: str,
                fill: float | int,
                block: np.ndarray,
                attrs: dict[str, object],
                g: h5py.Group = g,
                suffix: str = suffix,
            ) -> None:
                d = g.create_dataset(
                    var + suffix,
                    shape=shape,
                    dtype=dtype,
                    chunks=chunks,
                    compression="gzip",
                    compression_opts=4,
                    shuffle=True,
                    fillvalue=np.array(fill, dtype=dtype),
                )
                d[r0:r1, c0:c1] = block.astype(dtype)
                d.attrs["_FillValue"] = np.array([fill], dtype=dtype)
                for k, v in attrs.items():
                    d.attrs[k] = v

            cov = p.covered
            ds(
                "soil_moisture",
                "float32",
                -9999.0,
                p.soil_moisture,
                {
                    "long_name": np.bytes_(
                        "Representative DCA soil moisture measurement for the Earth based grid "
                        "cell."
                    ),
                    "units": np.bytes_("cm**3/cm**3"),
                    "coordinates": np.bytes_(_COORDS_AM),
                    "valid_min": np.float32(VALID_MIN),
                    "valid_max": np.float32(VALID_MAX),
                },
            )
            ds(
                "retrieval_qual_flag",
                "uint16",
                65534,
                p.retrieval_qual_flag,
                {
                    "long_name": np.bytes_(
                        "Bit flags that record the conditions and the quality of the DCA retrieval "
                        "algorithms that generate soil moisture for the grid cell."
                    ),
                    "flag_masks": np.bytes_("1s, 2s, 4s, 8s"),
                    "flag_meanings": np.bytes_(_QF_MEANINGS),
                    "coordinates": np.bytes_(_COORDS_AM),
                },
            )
            ds(
                "surface_flag",
                "uint16",
                65534,
                p.surface_flag,
                {
                    "long_name": np.bytes_(
                        "Bit flags that record ambient surface conditions for the grid cell"
                    ),
                    "flag_masks": np.bytes_(
                        "1s, 2s, 4s, 8s, 16s, 32s, 64s, 128s, 256s, 512s, 1024s, 2048s"
                    ),
                    "flag_meanings": np.bytes_(_SF_MEANINGS),
                    "coordinates": np.bytes_(_COORDS_AM),
                },
            )
            ds(
                "latitude",
                "float32",
                -9999.0,
                np.where(cov, cells.lat, -9999.0),
                {
                    "long_name": np.bytes_("Latitude of the center of the Earth based grid cell."),
                    "units": np.bytes_("degrees_north"),
                    "valid_min": np.float32(-90.0),
                    "valid_max": np.float32(90.0),
                },
            )
            ds(
                "longitude",
                "float32",
                -9999.0,
                np.where(cov, cells.lon, -9999.0),
                {
                    "long_name": np.bytes_("Longitude of the center of the Earth based grid cell."),
                    "units": np.bytes_("degrees_east"),
                    "valid_min": np.float32(-180.0),
                    "valid_max": np.float32(179.9989929),
                },
            )
            rows2 = np.broadcast_to(cells.rows[:, None], cov.shape)
            cols2 = np.broadcast_to(cells.cols[None, :], cov.shape)
            ds(
                "EASE_row_index",
                "uint16",
                65534,
                np.where(cov, rows2, 65534),
                {
                    "long_name": np.bytes_(
                        "The row index of the 9 km EASE grid cell that contains the associated "
                        "data."
                    ),
                    "valid_min": np.uint16(0),
                    "valid_max": np.uint16(shape[0] - 1),
                },
            )
            ds(
                "EASE_column_index",
                "uint16",
                65534,
                np.where(cov, cols2, 65534),
                {
                    "long_name": np.bytes_(
                        "The column index of the 9 km EASE grid cell that contains the associated "
                        "data."
                    ),
                    "valid_min": np.uint16(0),
                    "valid_max": np.uint16(shape[1] - 1),
                },
            )
    tmp.replace(path)
    return path
