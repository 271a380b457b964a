"""VIIRS collection-2 land products (HDF-EOS5 grid tiles) on the MODIS sinusoidal tiles.

The MODIS continuity products of Suomi NPP (``VNP*``), NOAA-20 (``VJ1*``) and
NOAA-21 (``VJ2*``): daily LST ``V..21A1D`` (1 km), 8-day LST ``VNP21A2`` (1 km),
16-day NDVI ``V..13A1`` (500 m), 8-day ET ``V..16A2`` (500 m) (``PRODUCTS``).
Files are ``<SHORT>.AYYYYDDD.hHHvVV.002.<production>.h5`` anywhere under the
VIIRS folder, HDF-EOS5 (HDF5): the layer is ``HDFEOS/GRIDS/<grid>/Data Fields/<layer>``
and the grid comes from ``HDFEOS INFORMATION/StructMetadata.0`` (UpperLeftPointMtrs,
LowerRightMtrs, XDim, YDim, HE5_GCTP_SNSOID): the ``XDim``/``YDim`` datasets hold
cell edges and GDAL returns no georeferencing, so neither is used.

Values: physical = raw * ``scale_factor`` + ``add_offset`` from the dataset's attributes
(the product table's scale when they are absent); raw values equal to the fill
(attribute spelt ``_FillValue`` or, as the real VNP21A1D granules do, ``_Fillvalue``;
a non-numeric fill such as ``"n/a"`` on a QC layer means none) or outside
``valid_range`` are missing. Units as every other reader: LST degC, NDVI 1, ET mm/day
(kg m-2 per composite divided by its days). QC (``qc`` as for MODIS): LST bits 0-1
(00 good, 01 other quality), NDVI pixel reliability (0 good, 1 marginal), ET QC bit 0.
The root attribute ``RangeBeginningDate`` must agree with the file name's date.

Which names are checked against real files: ``VNP21A1D`` (two real granules in the
test data: grid ``VIIRS_Grid_Daily_1km_LST21``, ``LST_1KM``, ``QC``). From public
readers of real files, not from a file here: ``VNP13A1`` (``VIIRS_Grid_16Day_VI_500m``,
``500 m 16 days NDVI``, ``500 m 16 days pixel reliability``) and ``VNP21A2``
(``VIIRS_Grid_8Day_1km_LST21``, ``LST_Day_1KM``). Unverified: ``QC_Day`` of VNP21A2,
``ET_QC_500m`` of VNP16A2 and the NDVI fill ``-15000``; the reader looks the layer up
in any grid of the file and takes fill/scale from the attributes, so only the layer
names matter (``VERIFIED`` says which).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from grids import Grid
from pipeline.sources import modis
from pipeline.sources.base import (
    DEFAULT_MARGIN_PIXELS,
    DEFAULT_RANGE_TOLERANCE,
    Bounds,
    CorruptFileError,
    DateMismatchError,
    MissingInputError,
    NativeRaster,
    Provenance,
    SchemaError,
    window_rows_cols,
)
from pipeline.sources.modis import QC, ModisGranule, ModisIndex, ModisProduct, ModisSource
from pipeline.sources.padding import composite_length
from pipeline.sources.raster import lattice_offset

STRUCT_METADATA = "HDFEOS INFORMATION/StructMetadata.0"
GRIDS = "HDFEOS/GRIDS"
COLLECTION = "002"

PLATFORMS: dict[str, str] = {"VNP": "SUOMI-NPP", "VJ1": "NOAA-20", "VJ2": "NOAA-21"}
"""Short-name prefix -> platform (root attribute ``PlatformShortName``)."""


@dataclass(frozen=True)
class ViirsLayout:
    """Where one product keeps its layers in the HDF-EOS5 file (grid name as documented)."""

    grid: str
    verified: str


_BASE: dict[str, tuple[ModisProduct, ViirsLayout]] = {
    "21A1D": (
        ModisProduct("VNP21A1D", "lst", "LST_1KM", "QC", 1, 1200, 0.02, 0.0, (0,), "lst"),
        ViirsLayout("VIIRS_Grid_Daily_1km_LST21", "real granules (test data)"),
    ),
    "21A2": (
        ModisProduct("VNP21A2", "lst", "LST_Day_1KM", "QC_Day", 8, 1200, 0.02, 0.0, (0,), "lst"),
        ViirsLayout("VIIRS_Grid_8Day_1km_LST21", "LST_Day_1KM from public readers; QC_Day not"),
    ),
    "13A1": (
        ModisProduct(
            "VNP13A1",
            "ndvi",
            "500 m 16 days NDVI",
            "500 m 16 days pixel reliability",
            16,
            2400,
            1e-4,
            0.0,
            (-15000,),
            "ndvi",
        ),
        ViirsLayout("VIIRS_Grid_16Day_VI_500m", "layer names from public readers; fill not"),
    ),
    "16A2": (
        ModisProduct(
            "VNP16A2",
            "et",
            "ET_500m",
            "ET_QC_500m",
            8,
            2400,
            0.1,
            0.0,
            (32767,),
            "et",
            special=(32761, 32766),
        ),
        ViirsLayout("VIIRS_Grid_ETLE", "ET_500m from public readers; ET_QC_500m not"),
    ),
}

PRODUCTS: dict[str, ModisProduct] = {}
LAYOUTS: dict[str, ViirsLayout] = {}
for _prefix in PLATFORMS:
    for _suffix, (_prod, _layout) in _BASE.items():
        if _suffix == "21A2" and _prefix != "VNP":
            continue  # the families use the daily LST for NOAA-20/21 (models.variables)
        _short = f"{_prefix}{_suffix}"
        PRODUCTS[_short] = replace(_prod, short=_short)
        LAYOUTS[_short] = _layout

VERIFIED: dict[str, str] = {s: LAYOUTS[s].verified for s in PRODUCTS}

FILENAME_RE = re.compile(
    r"^(?P<short>V(?:NP|J1|J2)\w+?)\.A(?P<year>\d{4})(?P<doy>\d{3})\.h(?P<h>\d{2})v(?P<v>\d{2})"
    r"\.(?P<coll>\d{3})\.(?P<prod>\d{13})\.(?:h5|he5)$"
)


def _doy_date(year: str, doy: str) -> dt.date:
    return dt.date(int(year), 1, 1) + dt.timedelta(days=int(doy) - 1)


def index_files(paths: Iterable[str | os.PathLike[str]]) -> ModisIndex:
    """Index VIIRS tile files by product, composite start and tile (newest production wins)."""
    out: ModisIndex = {}
    for p in paths:
        m = FILENAME_RE.match(os.path.basename(p))
        if m is None:
            continue
        try:
            start = _doy_date(m["year"], m["doy"])
        except ValueError:
            continue
        tile = (int(m["h"]), int(m["v"]))
        tiles = out.setdefault(m["short"], {}).setdefault(start, {})
        g = tiles.get(tile)
        if g is None or m["prod"] > g.production:
            tiles[tile] = ModisGranule(m["short"], start, tile, m["prod"], hdf=str(p))
    return out


def scan(root: str | os.PathLike[str]) -> ModisIndex:
    """Every VIIRS tile file anywhere under ``root`` (one directory walk)."""
    found: list[str] = []
    for dirpath, _dirs, files in os.walk(root):
        found.extend(os.path.join(dirpath, f) for f in files if f.endswith((".h5", ".he5")))
    return index_files(found)


# -- HDF-EOS5 -----------------------------------------------------------------------------
def _open(path: str) -> Any:
    import h5py

    if not Path(path).exists():
        raise MissingInputError(path, "file does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError(path, f"not a readable HDF5 file: {exc}") from exc


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else b""
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", "replace").rstrip("\x00")
    return str(value)


def struct_metadata(h5: Any, path: object) -> str:
    """The ``StructMetadata.0`` text of an open HDF-EOS5 file."""
    if STRUCT_METADATA not in h5:
        raise SchemaError(path, f"no {STRUCT_METADATA}: not an HDF-EOS5 grid file")
    return _text(h5[STRUCT_METADATA][()])


def find_layer(h5: Any, layer: str) -> Any | None:
    """The dataset ``<grid>/Data Fields/<layer>`` of any grid of the file, or None."""
    grids = h5.get(GRIDS)
    if grids is None:
        return None
    for name in grids:
        ds = grids[name].get(f"Data Fields/{layer}")
        if ds is not None:
            return ds
    return None


def range_beginning(h5: Any) -> dt.date | None:
    """The root attribute ``RangeBeginningDate`` (None when absent or unreadable)."""
    raw = h5.attrs.get("RangeBeginningDate")
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(_text(raw)[:10])
    except ValueError:
        return None


def _number(attrs: Any, *names: str) -> float | None:
    for name in names:
        v = attrs.get(name)
        if v is None:
            continue
        arr = np.atleast_1d(np.asarray(v))
        if arr.dtype.kind in "iuf" and arr.size:
            return float(arr[0])
    return None


@dataclass(frozen=True)
class LayerAttrs:
    """A layer's stored encoding: dtype, scale, offset, fill (None: no numeric fill), range."""

    dtype: str
    scale: float | None
    offset: float
    fill: float | None
    valid_range: tuple[float, float] | None


def layer_attrs(ds: Any) -> LayerAttrs:
    """Encoding attributes of an HDF-EOS5 dataset (both spellings of the fill attribute)."""
    a = ds.attrs
    vr = a.get("valid_range")
    rng = None
    if vr is not None:
        arr = np.atleast_1d(np.asarray(vr))
        if arr.dtype.kind in "iuf" and arr.size == 2:
            rng = (float(arr[0]), float(arr[1]))
    return LayerAttrs(
        str(ds.dtype),
        _number(a, "scale_factor"),
        _number(a, "add_offset") or 0.0,
        _number(a, "_FillValue", "_Fillvalue"),
        rng,
    )


def paste_h5(
    h5: Any, path: str, layer: str, window: Grid, out: np.ndarray, *, mask_fill: bool = True
) -> LayerAttrs | None:
    """Read ``layer`` of an open HDF-EOS5 tile where it overlaps ``window`` into ``out``.

    ``mask_fill=False`` keeps the raw values whatever the fill/valid range (QC layers).
    Returns None when the file does not overlap the window.
    """
    ds = find_layer(h5, layer)
    if ds is None:
        raise SchemaError(path, f"layer {layer!r} is missing (no {GRIDS}/*/Data Fields/{layer})")
    fgrid = modis.hdf_grid(struct_metadata(h5, path), layer, path)
    if tuple(ds.shape) != tuple(fgrid.shape):
        raise SchemaError(
            path, f"{layer}: shape {tuple(ds.shape)} differs from StructMetadata {fgrid.shape}"
        )
    r_off, c_off = lattice_offset(window, fgrid, path)
    r0, r1 = max(0, r_off), min(window.height, r_off + fgrid.height)
    c0, c1 = max(0, c_off), min(window.width, c_off + fgrid.width)
    if r1 <= r0 or c1 <= c0:
        return None
    try:
        block = np.asarray(ds[r0 - r_off : r1 - r_off, c0 - c_off : c1 - c_off])
    except (OSError, ValueError) as exc:
        raise CorruptFileError(path, f"cannot read {layer}: {exc}") from exc
    attrs = layer_attrs(ds)
    vals = block.astype(np.float64)
    if mask_fill:
        bad = np.zeros(block.shape, dtype=bool)
        if attrs.fill is not None:
            bad |= block == attrs.fill
        if attrs.valid_range is not None and block.dtype.kind in "iu":
            lo, hi = attrs.valid_range
            bad |= (block < lo) | (block > hi)
        vals[bad] = np.nan
    out[r0:r1, c0:c1] = vals
    return attrs


def scale_of(product: ModisProduct, attrs: LayerAttrs) -> tuple[float, float]:
    """(multiplier, offset): physical = raw * multiplier + offset.

    HDF-EOS5 VIIRS layers store ``raw * scale_factor + add_offset``; a ``scale_factor``
    that is the inverse of the product's (10000 for NDVI, MODIS-HDF style) divides.
    """
    s = attrs.scale
    if s is None or (s == 1.0 and attrs.offset == 0.0 and product.scale != 1.0):
        return product.scale, product.offset
    if s > 1.0 and product.scale < 1.0 and math.isclose(1.0 / s, product.scale, rel_tol=1e-6):
        return 1.0 / s, -attrs.offset / s
    return s, attrs.offset


def _read_layers(
    prod: ModisProduct,
    path: str,
    window: Grid,
    qc: QC,
    composite_days: int,
    expected_start: dt.date | None,
) -> tuple[np.ndarray, str]:
    """Physical values of one granule on ``window`` (NaN outside it) and a note."""
    h5 = _open(path)
    try:
        meta = range_beginning(h5)
        if expected_start is not None and meta is not None and meta != expected_start:
            raise DateMismatchError(
                path,
                f"file name says composite start {expected_start.isoformat()} but "
                f"RangeBeginningDate says {meta.isoformat()}",
            )
        raw = np.full(window.shape, np.nan, dtype=np.float64)
        attrs = paste_h5(h5, path, prod.layer, window, raw)
        if attrs is None:
            return np.full(window.shape, np.nan, dtype=np.float32), ""
        mult, off = scale_of(prod, attrs)
        note = ""
        if prod.special is not None:
            lo, hi = prod.special
            raw[(raw >= lo) & (raw <= hi)] = np.nan
        if qc != "any" and prod.qc_layer is not None:
            if find_layer(h5, prod.qc_layer) is None:
                raise SchemaError(path, f"QC layer {prod.qc_layer!r} is missing (qc='{qc}')")
            q = np.full(window.shape, np.nan, dtype=np.float64)
            paste_h5(h5, path, prod.qc_layer, window, q, mask_fill=False)
            rejected = modis._qc_mask(prod, q, qc) & np.isfinite(raw)
            raw[rejected] = np.nan
            n_rej = int(rejected.sum())
            if n_rej:
                note = f"QC '{qc}' rejected {n_rej} pixel(s)"
    finally:
        h5.close()
    return modis.to_physical(prod, raw, mult, off, composite_days), note


def read_viirs_file(
    path: str | os.PathLike[str],
    product: ModisProduct | str,
    bounds: Bounds | None = None,
    *,
    qc: QC = "usable",
    margin: int = DEFAULT_MARGIN_PIXELS,
    range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
) -> NativeRaster:
    """Read one VIIRS HDF-EOS5 tile (whole, or the part covering ``bounds``)."""
    prod = PRODUCTS[product] if isinstance(product, str) else product
    p = str(path)
    m = FILENAME_RE.match(os.path.basename(p))
    start = _doy_date(m["year"], m["doy"]) if m is not None else None
    h5 = _open(p)
    try:
        if find_layer(h5, prod.layer) is None:
            raise SchemaError(p, f"layer {prod.layer!r} is missing")
        fgrid = modis.hdf_grid(struct_metadata(h5, p), prod.layer, p)
        start = start or range_beginning(h5)
    finally:
        h5.close()
    lattice = prod.global_grid()
    f_row, f_col = lattice_offset(lattice, fgrid, p)
    rc = window_rows_cols(fgrid, bounds, margin)
    if rc is None:
        raise MissingInputError(p, f"file extent does not cover {bounds}", variable=prod.variable)
    window = lattice.window(f_row + rc[0], f_row + rc[1], f_col + rc[2], f_col + rc[3])
    days = composite_length(start, prod.period_days) if start else prod.period_days
    data, note = _read_layers(prod, p, window, qc, days, start if m is not None else None)
    data, rnote = modis._finish(prod, data, p, range_tolerance)
    prov = Provenance(prod.variable, (p,), prod.short, start, days, 0, note).with_note(rnote)
    return NativeRaster(window, data, prov, lattice, (f_row + rc[0], f_col + rc[2]))


class ViirsSource(ModisSource):
    """One VIIRS product as a ``Source``: padded composites, HDF-EOS5 tiles mosaicked."""

    def __init__(
        self,
        product: ModisProduct | str,
        index: ModisIndex | str | os.PathLike[str],
        **kwargs: Any,
    ) -> None:
        prod = PRODUCTS[product] if isinstance(product, str) else product
        if not isinstance(index, dict):
            kwargs.setdefault("where", str(index))
            index = scan(index)
        super().__init__(prod, index, **kwargs)

    def _pattern(self, date: dt.date | None) -> str:
        s = self.product.short
        return f"{self._where}/**/{s}.AYYYYDDD.hHHvVV.{COLLECTION}.*.h5  (serving {date})"

    def _read_tile(self, g: ModisGranule, window: Grid, days: int) -> tuple[np.ndarray, str]:
        if g.hdf is None:
            raise SchemaError(g.files()[0] if g.files() else self._where, "no HDF-EOS5 file")
        return _read_layers(self.product, g.hdf, window, self.qc, days, g.start)
