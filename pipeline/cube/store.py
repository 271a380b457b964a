"""The output cube: a CF-1.8 Zarr (format 2) store per model version, written template-first.

Layout of ``<output.store>/<arch>-<manifest_hash[:12]>.zarr`` (consolidated):

- ``soil_moisture``, ``soil_moisture_sd``, ``member_spread`` (time, lat, lon) uint16,
  scale 1e-4 m3 m-3, fill 65535; ``quality_flag`` uint8 bits, fill 255
  (see ``pipeline.cube.encoding``). Chunks (1, c, c).
- ``time`` int32 days since 1970-01-01 from 1 January ``first_year`` through the
  latest day a run wrote (the axis grows as days are run, so ``xr.open_zarr``
  reports the size of what is there); ``lat``/``lon`` (or ``y``/``x``) float64
  pixel centres.
- ``spatial_ref`` (scalar) with ``crs_wkt``, CF grid-mapping parameters and GDAL
  ``GeoTransform``; GDAL >= 3.4 reads the CRS from it through ``grid_mapping``.
- ``day_status`` (time,) uint8: 0 absent, 1 provisional, 2 final. Set only after
  every chunk of the day and the day's provenance are written.
- ``provenance/YYYY-MM-DD.json`` (plain files, not arrays): input files per
  variable, composite staleness, model manifest hash, software version.

The driver writes the metadata once (``Cube.create``), extends the time axis
through the day it runs (``Cube.ensure_day``) before any task writes, and tasks
write their own chunks with ``write_region``; workers never resize arrays.
Written with zarr-python 3 in Zarr format 2 (the layout GDAL 3.4+ reads with its CRS).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from grids import Grid
from pipeline.cube import encoding as enc
from pipeline.cube.layout import EPOCH, CubeLayout, StoreSpec
from pipeline.cube.template import ArraySpec, StoreTemplate, compressor
from pipeline.errors import PublishGuardError, RunError

log = logging.getLogger(__name__)

TIME_CHUNK = 3660
"""Chunk length of ``time`` and ``day_status`` (written only by the driver)."""
FORMAT_VERSION = 1
"""Version of this store layout (root attribute ``smdown_cube_format``)."""


def store_name(arch: str, manifest_hash: str) -> str:
    """``<arch>-<manifest_hash[:12]>.zarr``: one store per model version."""
    if not manifest_hash:
        raise RunError(f"model {arch!r} has no manifest hash: cannot name its cube")
    return f"{arch}-{manifest_hash[:12]}.zarr"


@dataclass(frozen=True)
class ModelInfo:
    """What the global attributes say about the model that made the cube."""

    arch: str
    manifest_hash: str
    software_version: str
    grid_name: str = ""


def software_version() -> str:
    """The installed smdown version (``0+unknown`` from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smdown")
    except PackageNotFoundError:  # pragma: no cover
        return "0+unknown"


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _geo_transform(grid: Grid) -> str:
    a, b, c, d, e, f = grid.transform
    return " ".join(repr(v) for v in (c, a, b, f, d, e))


def grid_mapping_attrs(grid: Grid) -> dict[str, Any]:
    """CF grid-mapping attributes of ``spatial_ref``: CF parameters, crs_wkt, GeoTransform."""
    crs = grid.to_pyproj()
    attrs: dict[str, Any] = {}
    try:
        cf = crs.to_cf()
    except Exception:  # pragma: no cover - CRS without a CF mapping
        cf = {}
    for key, value in cf.items():
        if isinstance(value, int | float | str):
            attrs[key] = value
    wkt = grid.to_wkt()
    attrs["crs_wkt"] = wkt
    attrs["spatial_ref"] = wkt
    attrs["GeoTransform"] = _geo_transform(grid)
    return attrs


def coordinate_attrs(layout: CubeLayout) -> dict[str, dict[str, Any]]:
    """CF attributes of the two spatial coordinates (lat/lon or y/x), keyed by dimension."""
    ydim, xdim = layout.spatial_dims
    if layout.grid.is_geographic:
        return {
            ydim: {
                "standard_name": "latitude",
                "long_name": "latitude of the pixel centre",
                "units": "degrees_north",
                "axis": "Y",
            },
            xdim: {
                "standard_name": "longitude",
                "long_name": "longitude of the pixel centre",
                "units": "degrees_east",
                "axis": "X",
            },
        }
    unit = str(layout.grid.to_pyproj().axis_info[0].unit_name or "m")
    return {
        ydim: {
            "standard_name": "projection_y_coordinate",
            "long_name": "y of the pixel centre",
            "units": "m" if unit.startswith("met") else unit,
            "axis": "Y",
        },
        xdim: {
            "standard_name": "projection_x_coordinate",
            "long_name": "x of the pixel centre",
            "units": "m" if unit.startswith("met") else unit,
            "axis": "X",
        },
    }


def _global_attrs(layout: CubeLayout, model: ModelInfo) -> dict[str, Any]:
    now = _now_iso()
    grid = layout.grid
    attrs: dict[str, Any] = {
        "Conventions": "CF-1.8",
        "title": "smdown daily downscaled soil moisture (0-5 cm)",
        "summary": (
            "SMAP L3 enhanced soil moisture (SPL3SMP_E, 9 km) downscaled to the grid "
            f"'{model.grid_name or grid.key()[:12]}' with an ensemble of small ML models "
            "(MODIS NDVI/LST/ET, CHIRPS, SoilGrids, MERIT DEM covariates)."
        ),
        "source": f"smdown {model.software_version}, {model.arch} ensemble",
        "references": (
            "Poehls et al. (2025), Downscaling soil moisture to sub-km resolutions with "
            "simple machine learning ensembles, Journal of Hydrology 132624"
        ),
        "history": f"{now} created by smdown {model.software_version}",
        "date_created": now,
        "date_modified": now,
        "model_arch": model.arch,
        "model_manifest_hash": model.manifest_hash,
        "software_version": model.software_version,
        "grid_name": model.grid_name,
        "grid_key": grid.key(),
        "smdown_cube_format": FORMAT_VERSION,
        "first_year": layout.first_year,
        "day_status_meaning": "0 absent, 1 provisional, 2 final; read only days with status > 0",
        "provenance": "per-day input files: provenance/YYYY-MM-DD.json inside this store",
    }
    if grid.is_geographic:
        west, south, east, north = grid.bounds
        attrs.update(
            geospatial_lat_min=south,
            geospatial_lat_max=north,
            geospatial_lon_min=west,
            geospatial_lon_max=east,
        )
    return attrs


def _days(date: dt.date) -> int:
    return (date - EPOCH).days


def cube_template(layout: CubeLayout, model: ModelInfo, n_times: int) -> StoreTemplate:
    """The cube's arrays and attributes, declared once: data variables from
    ``pipeline.cube.encoding`` (dtype, packing, fill, CF attributes), chunks from the
    layout, coordinates with their values, ``day_status`` zeros, ``spatial_ref``."""
    grid = layout.grid
    ydim, xdim = layout.spatial_dims
    cattrs = coordinate_attrs(layout)
    arrays = [
        ArraySpec(
            name,
            ("time", ydim, xdim),
            (n_times, *grid.shape),
            enc.dtype_of(name),
            layout.chunks,
            enc.variable_attrs(name),
            fill=enc.fill_of(name),
        )
        for name in enc.DATA_VARS
    ]
    first = _days(layout.first_day)
    arrays += [
        ArraySpec(
            ydim,
            (ydim,),
            (grid.height,),
            np.dtype(np.float64),
            (grid.height,),
            cattrs[ydim],
            compressed=False,
            values=grid.y_coords().astype(np.float64),
        ),
        ArraySpec(
            xdim,
            (xdim,),
            (grid.width,),
            np.dtype(np.float64),
            (grid.width,),
            cattrs[xdim],
            compressed=False,
            values=grid.x_coords().astype(np.float64),
        ),
        ArraySpec(
            "time",
            ("time",),
            (n_times,),
            np.dtype(np.int32),
            (TIME_CHUNK,),
            TIME_ATTRS,
            compressed=False,
            values=np.arange(n_times, dtype=np.int32) + np.int32(first),
        ),
        ArraySpec(
            "day_status",
            ("time",),
            (n_times,),
            np.dtype(np.uint8),
            (TIME_CHUNK,),
            DAY_STATUS_ATTRS,
            compressed=False,
            values=np.zeros(n_times, dtype=np.uint8),
        ),
        ArraySpec(
            "spatial_ref",
            (),
            (),
            np.dtype(np.int32),
            (),
            grid_mapping_attrs(grid),
            compressed=False,
            values=np.zeros((), dtype=np.int32),
        ),
    ]
    return StoreTemplate(tuple(arrays), _global_attrs(layout, model))


class Cube:
    """Driver-side handle of one cube store: create, guard, extend, status, provenance."""

    def __init__(self, spec: StoreSpec, layout: CubeLayout) -> None:
        self.spec = spec
        self.layout = layout

    # -- existence and structure ----------------------------------------------------------
    def exists(self) -> bool:
        return store_exists(self.spec)

    def _group(self, mode: Literal["r", "r+"] = "r") -> Any:
        return open_group(self.spec, mode)

    def structure_differences(self, model: ModelInfo | None = None) -> list[str]:
        """What differs between the existing store and this layout (empty: compatible)."""
        return structure_differences(self.spec, self.layout, model)

    def guard_structure(self, model: ModelInfo | None = None) -> None:
        """Raise ``PublishGuardError`` naming the store and every difference, before writing."""
        diffs = self.structure_differences(model)
        if diffs:
            raise PublishGuardError(
                f"{self.spec}: existing store does not match this run: " + "; ".join(diffs)
            )

    # -- creation and extension -----------------------------------------------------------
    def create(self, model: ModelInfo, through: int | dt.date) -> None:
        """Write the metadata of an empty cube covering 1 Jan first_year .. ``through``
        (a day, or 31 December of a year), rendered from ``cube_template``.

        Data chunks are not written (missing chunks read as fill); coordinates,
        ``spatial_ref`` and ``day_status`` (zeros) are.
        """
        lay = self.layout
        last = through if isinstance(through, dt.date) else dt.date(through, 12, 31)
        if last.year < lay.first_year:
            raise RunError(f"{last} is before output.first_year {lay.first_year}")
        n_t = lay.time_index(last) + 1
        cube_template(lay, model, n_t).write(self.spec, mode="w-")
        log.info("created cube %s (%d days, grid %s)", self.spec, n_t, lay.grid.shape)

    def n_times(self) -> int:
        return int(self._group()["time"].shape[0])

    def ensure_year(self, year: int) -> bool:
        """Extend the time axis (all time arrays) to 31 Dec ``year``; True when it grew."""
        return self.ensure_day(dt.date(year, 12, 31))

    def ensure_day(self, date: dt.date) -> bool:
        """Extend the time axis (all time arrays) through ``date``; True when it grew."""
        lay = self.layout
        want = lay.time_index(date) + 1
        root = self._group("r+")
        have = int(root["time"].shape[0])
        if want <= have:
            return False
        for name in (*enc.DATA_VARS, "time", "day_status"):
            arr = root[name]
            arr.resize((want, *arr.shape[1:]))
        root["time"][have:want] = np.arange(have, want, dtype=np.int32) + np.int32(
            _days(lay.first_day)
        )
        root["day_status"][have:want] = np.zeros(want - have, dtype=np.uint8)
        self.consolidate()
        log.info("extended %s to %d days (through %s)", self.spec, want, date)
        return True

    # -- day status and provenance --------------------------------------------------------
    def day_status(self, date: dt.date) -> int:
        """0 absent, 1 provisional, 2 final (0 for a day beyond the time axis)."""
        idx = self.layout.time_index(date)
        arr = self._group()["day_status"]
        if idx >= arr.shape[0]:
            return enc.DAY_ABSENT
        return int(arr[idx])

    def statuses(self) -> dict[dt.date, int]:
        """Every day with a status above 0."""
        arr = np.asarray(self._group()["day_status"][:])
        return {self.layout.date_of(int(i)): int(arr[i]) for i in np.flatnonzero(arr)}

    def set_day_status(self, date: dt.date, status: int) -> None:
        if status not in (enc.DAY_ABSENT, enc.DAY_PROVISIONAL, enc.DAY_FINAL):
            raise ValueError(f"day status {status!r} not in 0, 1, 2")
        root = self._group("r+")
        root["day_status"][self.layout.time_index(date)] = np.uint8(status)
        root.attrs["date_modified"] = _now_iso()

    def provenance_key(self, date: dt.date) -> str:
        return f"provenance/{date.isoformat()}.json"

    def write_provenance(self, date: dt.date, record: Mapping[str, Any]) -> None:
        """Write the day's provenance JSON (sorted keys, so re-runs differ only in timings)."""
        self.spec.write_key(
            self.provenance_key(date),
            json.dumps(record, sort_keys=True, indent=1, default=str).encode("utf-8"),
        )

    def read_provenance(self, date: dt.date) -> dict[str, Any] | None:
        raw = self.spec.read_key(self.provenance_key(date))
        if raw is None:
            return None
        data = json.loads(raw.decode("utf-8"))
        return data if isinstance(data, dict) else None

    def consolidate(self) -> None:
        """Refresh ``.zmetadata`` so readers see the current shapes and attributes."""
        consolidate(self.spec)

    def chunk_keys(self, date: dt.date, name: str = "soil_moisture") -> list[str]:
        """Keys of the stored chunks of ``name`` on ``date`` (tests, diagnostics)."""
        idx = self.layout.time_index(date)
        prefix = f"{name}/{idx}."
        return [k for k in self.spec.list_keys(name) if k.startswith(prefix)]


def structure_differences(
    spec: StoreSpec, layout: CubeLayout, model: ModelInfo | None = None
) -> list[str]:
    """Differences between the store at ``spec`` and ``layout`` (and model); [] if absent."""
    if not store_exists(spec):
        return []
    try:
        root = open_group(spec, "r")
    except Exception as exc:  # corrupt metadata
        return [f"cannot open as a Zarr group ({exc})"]
    diffs: list[str] = []
    ydim, xdim = layout.spatial_dims
    want = {*enc.DATA_VARS, "time", "day_status", "spatial_ref", ydim, xdim}
    names = {n for n in want if n in root}  # not a listing: provenance/ is no Zarr node
    missing = sorted(want - names)
    if missing:
        diffs.append(f"variables missing: {', '.join(missing)}")
    grid = layout.grid
    for name in sorted(set(enc.DATA_VARS) & names):
        arr = root[name]
        if tuple(arr.shape[1:]) != tuple(grid.shape):
            diffs.append(f"{name} grid shape {tuple(arr.shape[1:])} != {grid.shape}")
        if tuple(arr.chunks) != layout.chunks:
            diffs.append(f"{name} chunks {tuple(arr.chunks)} != {layout.chunks}")
        if np.dtype(arr.dtype) != enc.dtype_of(name):
            diffs.append(f"{name} dtype {arr.dtype} != {enc.dtype_of(name)}")
        if arr.fill_value != enc.fill_of(name):
            diffs.append(f"{name} fill value {arr.fill_value} != {enc.fill_of(name)}")
        dims = array_dims(arr)
        if dims != ["time", ydim, xdim]:
            diffs.append(f"{name} dimensions {dims} != {['time', ydim, xdim]}")
    if "spatial_ref" in names:
        gt = root["spatial_ref"].attrs.get("GeoTransform")
        if gt != _geo_transform(grid):
            diffs.append(f"GeoTransform {gt!r} != {_geo_transform(grid)!r}")
        wkt = root["spatial_ref"].attrs.get("crs_wkt")
        if wkt is not None:
            from grids import normalize_crs

            try:
                if normalize_crs(wkt) != grid.crs:
                    diffs.append(f"CRS {normalize_crs(wkt)[:40]} != {grid.crs[:40]}")
            except Exception:
                diffs.append("CRS unreadable")
    if "time" in names:
        t0 = int(root["time"][0]) if root["time"].shape[0] else None
        if t0 != _days(layout.first_day):
            diffs.append(
                f"time axis starts {EPOCH + dt.timedelta(days=t0 or 0)} != {layout.first_day}"
            )
    if model is not None:
        have = root.attrs.get("model_manifest_hash")
        if have != model.manifest_hash:
            diffs.append(f"model manifest hash {have!r} != {model.manifest_hash!r}")
        arch = root.attrs.get("model_arch")
        if arch != model.arch:
            diffs.append(f"model arch {arch!r} != {model.arch!r}")
    return diffs


def write_region(
    spec: StoreSpec,
    layout: CubeLayout,
    date: dt.date,
    row0: int,
    col0: int,
    arrays: Mapping[str, np.ndarray],
) -> list[str]:
    """Write one tile's packed arrays (``encoding.encode_tile``) for ``date``; returns chunk keys.

    The region must cover whole chunks (``ChunkAlignmentError`` otherwise) and
    every data variable must be given with the same (rows, cols) shape.
    """
    import zarr

    missing = set(enc.DATA_VARS) - set(arrays)
    if missing:
        raise RunError(f"{spec}: tile write lacks {sorted(missing)}")
    shapes = {tuple(np.shape(a)) for a in arrays.values()}
    if len(shapes) != 1:
        raise RunError(f"{spec}: tile arrays disagree in shape {sorted(shapes)}")
    (h, w) = next(iter(shapes))
    layout.check_region(row0, row0 + h, col0, col0 + w)
    t = layout.time_index(date)
    store = spec.zarr_store()
    for name in enc.DATA_VARS:
        arr = zarr.open_array(store, path=name, mode="r+", config={"write_empty_chunks": False})
        if t >= arr.shape[0]:
            raise RunError(f"{spec}: {date} beyond the time axis (driver must extend it first)")
        data = np.asarray(arrays[name], dtype=enc.dtype_of(name))
        arr[t, row0 : row0 + h, col0 : col0 + w] = data
    c = layout.chunk
    return [
        f"{t}.{i}.{j}"
        for i in range(row0 // c, -(-(row0 + h) // c))
        for j in range(col0 // c, -(-(col0 + w) // c))
    ]


def read_layout(spec: StoreSpec) -> CubeLayout:
    """The layout of an existing cube, from its metadata (``RunError`` if not a cube)."""
    from grids import normalize_crs

    if not store_exists(spec):
        raise RunError(f"{spec}: no Zarr store here")
    root = open_group(spec, "r")
    try:
        gm = root["spatial_ref"].attrs
        c, a, b, f, d, e = (float(v) for v in str(gm["GeoTransform"]).split())
        sm = root["soil_moisture"]
        grid = Grid(normalize_crs(gm["crs_wkt"]), (a, b, c, d, e, f), tuple(sm.shape[1:]))
        first_year = int(root.attrs["first_year"])
        chunk = int(sm.chunks[1])
    except (KeyError, ValueError) as exc:
        raise RunError(f"{spec}: not an smdown cube ({exc})") from exc
    return CubeLayout(grid, chunk, first_year)


def open_cube(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    chunks: Literal["zarr"] | None = None,
) -> Any:
    """The cube as a lazy, CF-decoded ``xarray.Dataset``: ``xarray.open_zarr`` with the
    flags kept integer.

    ``quality_flag``, ``smap_age_days`` and ``input_fallback`` are read undecoded (uint8,
    255 = not computed, their ``_FillValue`` encoding says so): xarray takes a Zarr
    format 2 fill value as a mask and would turn the bits into floats with NaN.
    Nothing is read until values are asked for; ``chunks="zarr"`` gives dask arrays
    with one dask chunk per zarr chunk instead of lazily indexed arrays.
    """
    import xarray as xr

    spec = StoreSpec(url, dict(storage_options or {}))
    ds = xr.open_zarr(
        spec.local_path if spec.is_local else spec.url,
        consolidated=True,
        storage_options=None if spec.is_local else spec.fsspec_options(),
        chunks={} if chunks == "zarr" else None,
        mask_and_scale=MASK_AND_SCALE,
    )
    for name, masked in MASK_AND_SCALE.items():
        # An undecoded fill value belongs in the encoding, as xarray keeps a decoded one.
        if not masked and name in ds and "_FillValue" in ds[name].attrs:
            ds[name].encoding["_FillValue"] = ds[name].attrs.pop("_FillValue")
    return ds


MASK_AND_SCALE: dict[str, bool] = {
    "quality_flag": False,
    **dict.fromkeys(enc.PROVENANCE_VARS, False),
}
"""``mask_and_scale`` for ``xarray.open_zarr``: the flags and the per-pixel provenance
(``smap_age_days``, ``input_fallback``) stay integer, their fill (255) in the encoding."""


TIME_ATTRS: dict[str, Any] = {
    "standard_name": "time",
    "long_name": "day of the map (UTC calendar day)",
    "units": "days since 1970-01-01",
    "calendar": "proleptic_gregorian",
    "axis": "T",
}
DAY_STATUS_ATTRS: dict[str, Any] = {
    "long_name": "publication status of the day",
    "flag_values": [enc.DAY_ABSENT, enc.DAY_PROVISIONAL, enc.DAY_FINAL],
    "flag_meanings": enc.DAY_STATUS_MEANINGS,
    "comment": "set after every chunk of the day is written",
}


def store_exists(spec: StoreSpec) -> bool:
    """Whether a Zarr group's metadata is at ``spec`` (format 2 ``.zgroup`` or 3 ``zarr.json``)."""
    return spec.has_key(".zgroup") or spec.has_key("zarr.json")


def open_group(spec: StoreSpec, mode: Literal["r", "r+", "a", "w", "w-"] = "r") -> Any:
    """The root group, from its own metadata files (never the consolidated copy, which
    lags behind writes until ``consolidate``)."""
    import zarr

    return zarr.open_group(
        spec.zarr_store(read_only=mode == "r"), mode=mode, use_consolidated=False
    )


def consolidate(spec: StoreSpec) -> None:
    """Refresh the consolidated metadata (``.zmetadata``) of the store."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        # provenance/ holds plain JSON files beside the arrays, by design
        warnings.filterwarnings(
            "ignore", message="Object at provenance is not recognized", category=UserWarning
        )
        zarr.consolidate_metadata(spec.zarr_store())


def array_dims(arr: Any) -> list[str] | None:
    """Dimension names of a zarr array (format 3 metadata, else ``_ARRAY_DIMENSIONS``)."""
    names = getattr(arr.metadata, "dimension_names", None)
    if names is not None:
        return [str(n) for n in names]
    dims = arr.attrs.get("_ARRAY_DIMENSIONS")
    return None if dims is None else [str(d) for d in dims]


def create_array(
    root: Any,
    name: str,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype: np.dtype[Any],
    fill: Any,
    attrs: Mapping[str, Any],
    *,
    data: np.ndarray | None = None,
    compressed: bool = True,
) -> Any:
    """Create one array of a Zarr format 2 group (dimension names in ``_ARRAY_DIMENSIONS``),
    writing ``data`` when given; empty chunks are never stored."""
    arr = root.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=fill,
        compressors=compressor() if compressed else None,
        attributes={**attrs, "_ARRAY_DIMENSIONS": list(dims)},
        config={"write_empty_chunks": False},
    )
    if data is not None:
        arr[...] = data
    return arr
