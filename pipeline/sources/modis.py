"""MODIS land products (LP DAAC, collection 6.1) on the sinusoidal tile grid.

Products (``PRODUCTS``): LST MOD11A2 (8-day, training) and MOD21A1D (daily,
maps), NDVI MOD13A1 (500 m) and MOD13Q1 (250 m), ET MOD16A2 (8-day 500 m),
land cover MCD12Q1 (yearly, IGBP ``LC_Type1``); MOD11B2 (6 km LST) is readable
too; the Aqua twins MYD11A2, MYD21A1D, MYD13A1, MYD13Q1, MYD16A2 (``AQUA``) read
the same way. Files are single-layer GeoTIFF/COG tiles as AppEEARS / the Planetary
Computer serve them, or HDF4-EOS granules when pyhdf is installed (layout in
docs/data-layout.md). Tiles of one composite are mosaicked on the global
sinusoidal lattice (sphere R = 6371007.181 m), so a window spanning tiles is
seamless.

Values and units (models/features.py): LST degC (stored 0.02 K), NDVI 1
(stored x 1e-4), ET mm/day (stored 0.1 kg m-2 per composite, divided by the
composite's days), land cover IGBP codes 1-17. Integer layers get the GDAL
band scale/offset when set, else the product's; float32 layers are taken as
already scaled (the real MODIStsp NDVI set mixes both). Fills and the
product's special values become NaN.

Quality (``qc``): ``"good"`` keeps only best-quality pixels (LST QC bits 0-1
== 00, NDVI reliability 0, ET QC bit 0 clear); ``"usable"`` (default) also
keeps LST "other quality" (01) and NDVI marginal (1), and ignores ET QC;
``"any"`` applies no QC (fills still masked). A QC layer the setting needs
but the granule lacks is a ``SchemaError``.

Temporal padding follows ``pipeline.sources.padding``. Out-of-range values
follow the rule in ``pipeline.sources.base``; land-cover codes outside 1-17
become NaN and are counted in the note.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from grids import Grid, named
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
    WrongCRSError,
    apply_physical_range,
    categorical_clean,
    range_note,
    window_rows_cols,
)
from pipeline.sources.padding import YEARLY, choose_composite, composite_length
from pipeline.sources.raster import (
    is_modis_sinusoidal,
    lattice_offset,
    paste,
)

QC = Literal["good", "usable", "any"]

# The MODIS sinusoidal grid constants are grids.named's (one place).
MODIS_CRS = named.MODIS_SINUSOIDAL_CRS
TILE_SIZE_M = named.MODIS_TILE_SIZE  # m, one tile edge
GRID_X0 = named.MODIS_ORIGIN_X  # m, west edge of h00
GRID_Y0 = named.MODIS_ORIGIN_Y  # m, north edge of v00
N_H, N_V = named.MODIS_N_H, named.MODIS_N_V
CRS_DESC = "MODIS sinusoidal (sphere R = 6371007.181 m)"


@dataclass(frozen=True)
class ModisProduct:
    """How one MODIS product stores its science layer and QC."""

    short: str
    variable: str
    layer: str
    qc_layer: str | None
    period_days: int
    tile_px: int
    scale: float
    offset: float
    fills: tuple[float, ...]
    kind: Literal["lst", "ndvi", "et", "class"]
    special: tuple[float, float] | None = None  # inclusive raw range meaning "no value"

    @property
    def cell(self) -> float:
        """Pixel size in metres."""
        return TILE_SIZE_M / self.tile_px

    def global_grid(self) -> Grid:
        """The whole sinusoidal lattice of this product (36 x 18 tiles)."""
        c = self.cell
        return Grid(
            MODIS_CRS, (c, 0.0, GRID_X0, 0.0, -c, GRID_Y0), (N_V * self.tile_px, N_H * self.tile_px)
        )


PRODUCTS: dict[str, ModisProduct] = {
    p.short: p
    for p in (
        ModisProduct("MOD11A2", "lst", "LST_Day_1km", "QC_Day", 8, 1200, 0.02, 0.0, (0,), "lst"),
        ModisProduct("MOD21A1D", "lst", "LST_1KM", "QC", 1, 1200, 0.02, 0.0, (0,), "lst"),
        ModisProduct("MOD11B2", "lst", "LST_Day_6km", "QC_Day", 8, 200, 0.02, 0.0, (0,), "lst"),
        ModisProduct(
            "MOD13A1",
            "ndvi",
            "500m_16_days_NDVI",
            "500m_16_days_pixel_reliability",
            16,
            2400,
            1e-4,
            0.0,
            (-3000,),
            "ndvi",
        ),
        ModisProduct(
            "MOD13Q1",
            "ndvi",
            "250m_16_days_NDVI",
            "250m_16_days_pixel_reliability",
            16,
            4800,
            1e-4,
            0.0,
            (-3000,),
            "ndvi",
        ),
        ModisProduct(
            "MOD16A2",
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
        ModisProduct(
            "MCD12Q1", "landcover", "LC_Type1", None, YEARLY, 2400, 1.0, 0.0, (255,), "class"
        ),
    )
}

AQUA: dict[str, str] = {
    "MOD11A2": "MYD11A2",
    "MOD21A1D": "MYD21A1D",
    "MOD13A1": "MYD13A1",
    "MOD13Q1": "MYD13Q1",
    "MOD16A2": "MYD16A2",
}
"""Aqua (MYD*) twin of each Terra product: same layers, QC, scale and period."""
PRODUCTS.update({myd: replace(PRODUCTS[mod], short=myd) for mod, myd in AQUA.items()})

FILENAME_RE = re.compile(
    r"^(?P<short>M[OYC]D\w+?)\.A(?P<year>\d{4})(?P<doy>\d{3})\.h(?P<h>\d{2})v(?P<v>\d{2})"
    r"\.(?P<coll>\d{3})\.(?P<prod>\d{13})(?:_(?P<layer>[A-Za-z0-9_]+))?\.(?P<ext>tif|hdf)$"
)
APPEEARS_RE = re.compile(
    r"^(?P<short>M[OYC]D\w+?)\.(?P<coll>\d{3})_(?P<layer>[A-Za-z0-9_]+?)_doy(?P<year>\d{4})"
    r"(?P<doy>\d{3})\d*_aid\d+\.tif$"
)
"""AppEEARS area-request output (native projection), e.g.
``MOD11A2.061_LST_Day_1km_doy2020153_aid0001.tif``: not a tile but a mosaic."""
AREA = (-1, -1)
"""Tile key of an AppEEARS area mosaic: pasted for any window it overlaps."""
MODISTSP_RE = re.compile(r"_(?P<year>\d{4})_(?P<doy>\d{3})\.tif$")
FOLDER_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2}$")


def _doy_date(year: str, doy: str) -> dt.date:
    return dt.date(int(year), 1, 1) + dt.timedelta(days=int(doy) - 1)


@dataclass
class ModisGranule:
    """One tile of one composite: its layer files (GeoTIFF) and/or its HDF4 granule."""

    short: str
    start: dt.date
    tile: tuple[int, int]  # (h, v)
    production: str
    layers: dict[str, str] = field(default_factory=dict)
    hdf: str | None = None
    folder_date: dt.date | None = None

    def files(self) -> tuple[str, ...]:
        return tuple(sorted(self.layers.values())) + ((self.hdf,) if self.hdf else ())


ModisIndex = dict[str, dict[dt.date, dict[tuple[int, int], ModisGranule]]]
"""short name -> composite start -> (h, v) -> newest granule."""


def index_files(paths: Iterable[str | os.PathLike[str]]) -> ModisIndex:
    """Index MODIS tile files by product, composite start and tile (newest production wins)."""
    out: ModisIndex = {}
    for p in paths:
        name = os.path.basename(p)
        m = FILENAME_RE.match(name)
        area = None
        if m is None:
            area = APPEEARS_RE.match(name)
            if area is None:
                continue
        if area is not None:
            try:
                start = _doy_date(area["year"], area["doy"])
            except ValueError:
                continue
            granule = (
                out.setdefault(area["short"], {})
                .setdefault(start, {})
                .setdefault(AREA, ModisGranule(area["short"], start, AREA, ""))
            )
            granule.layers[area["layer"]] = str(p)
            continue
        assert m is not None
        try:
            start = _doy_date(m["year"], m["doy"])
        except ValueError:
            continue
        folder = os.path.basename(os.path.dirname(str(p)))
        fdate = None
        if FOLDER_RE.match(folder):
            try:
                fdate = dt.datetime.strptime(folder, "%Y.%m.%d").date()
            except ValueError:
                fdate = None
        tile = (int(m["h"]), int(m["v"]))
        tiles = out.setdefault(m["short"], {}).setdefault(start, {})
        g = tiles.get(tile)
        if g is None or m["prod"] > g.production:
            g = ModisGranule(m["short"], start, tile, m["prod"], folder_date=fdate)
            tiles[tile] = g
        elif m["prod"] < g.production:
            continue
        if m["ext"] == "hdf":
            g.hdf = str(p)
        elif m["layer"]:
            g.layers[m["layer"]] = str(p)
    return out


def scan(root: str | os.PathLike[str]) -> ModisIndex:
    """Every MODIS tile file under ``root`` (one directory walk)."""
    found: list[str] = []
    for dirpath, _dirs, files in os.walk(root):
        found.extend(os.path.join(dirpath, f) for f in files if f.endswith((".tif", ".hdf")))
    return index_files(found)


# -- HDF4-EOS -----------------------------------------------------------------------------
_GRID_BLOCK_RE = re.compile(r"GROUP=GRID_\d+(.*?)END_GROUP=GRID_\d+", re.S)


def hdf_grid(struct_metadata: str, layer: str, path: object) -> Grid:
    """The sinusoidal grid of ``layer`` from an HDF-EOS ``StructMetadata.0`` text."""
    blocks = _GRID_BLOCK_RE.findall(struct_metadata)
    if not blocks:
        raise SchemaError(path, "StructMetadata.0 has no GRID definition")
    block = next((b for b in blocks if f'DataFieldName="{layer}"' in b), blocks[0])

    def num(key: str) -> str:
        m = re.search(rf"\b{key}=([^\n]+)", block)
        if m is None:
            raise SchemaError(path, f"StructMetadata.0 lacks {key}")
        return m.group(1).strip()

    try:
        nx, ny = int(num("XDim")), int(num("YDim"))
        ulx, uly = (float(v) for v in num("UpperLeftPointMtrs").strip("()").split(","))
        lrx, lry = (float(v) for v in num("LowerRightMtrs").strip("()").split(","))
    except ValueError as exc:
        raise SchemaError(path, f"StructMetadata.0 grid corners unreadable: {exc}") from exc
    if "GCTP_SNSOID" not in num("Projection"):
        raise WrongCRSError(path, f"HDF-EOS projection {num('Projection')}; expected GCTP_SNSOID")
    return Grid(MODIS_CRS, ((lrx - ulx) / nx, 0.0, ulx, 0.0, (lry - uly) / ny, uly), (ny, nx))


def _hdf_open(path: str) -> Any:
    try:
        from pyhdf.SD import SD, SDC
    except ImportError as exc:  # pragma: no cover - pyhdf is an optional extra
        raise SchemaError(path, "HDF4 granule needs the optional 'pyhdf' (extra hdf4)") from exc
    from pyhdf.error import HDF4Error

    if not Path(path).exists():
        raise MissingInputError(path, "file does not exist")
    try:
        return SD(path, SDC.READ)
    except HDF4Error as exc:
        raise CorruptFileError(path, f"not a readable HDF4 file: {exc}") from exc


def hdf_range_beginning(core_metadata: str) -> dt.date | None:
    """RANGEBEGINNINGDATE of an ECS ``CoreMetadata.0`` text."""
    m = re.search(
        r"OBJECT\s*=\s*RANGEBEGINNINGDATE.*?VALUE\s*=\s*\"([0-9-]{10})\"", core_metadata, re.S
    )
    if m is None:
        return None
    try:
        return dt.date.fromisoformat(m.group(1))
    except ValueError:
        return None


@dataclass(frozen=True)
class _Layer:
    dtype: str
    scale: float
    offset: float
    fills: tuple[float, ...]


def paste_hdf(
    path: str, layer: str, window: Grid, out: np.ndarray, *, mask_fill: bool = True
) -> _Layer | None:
    """Read ``layer`` of an HDF4-EOS granule where it overlaps ``window`` into ``out``.

    ``mask_fill=False`` keeps ``_FillValue`` pixels (QC layers: MOD11 QC fill 0 = good).
    """
    from pyhdf.error import HDF4Error

    sd = _hdf_open(path)
    try:
        attrs = sd.attributes()
        if "StructMetadata.0" not in attrs:
            raise SchemaError(path, "no StructMetadata.0: not an HDF-EOS granule")
        fgrid = hdf_grid(attrs["StructMetadata.0"], layer, path)
        if layer not in sd.datasets():
            raise SchemaError(path, f"layer {layer!r} is missing")
        sds = sd.select(layer)
        a = sds.attributes()
        r_off, c_off = lattice_offset(window, fgrid, path)
        r0, r1 = max(0, r_off), min(window.height, r_off + fgrid.height)
        c0, c1 = max(0, c_off), min(window.width, c_off + fgrid.width)
        if r1 <= r0 or c1 <= c0:
            return None
        try:
            block = np.asarray(sds[r0 - r_off : r1 - r_off, c0 - c_off : c1 - c_off])
        except HDF4Error as exc:
            raise CorruptFileError(path, f"cannot read {layer}: {exc}") from exc
    finally:
        sd.end()
    fills = tuple(float(v) for v in np.atleast_1d(a.get("_FillValue", [])))
    vals = block.astype(np.float64)
    for f in fills if mask_fill else ():
        vals[block == f] = np.nan
    out[r0:r1, c0:c1] = vals
    s = float(a.get("scale_factor", 1.0))
    o = float(a.get("add_offset", 0.0))
    return _Layer(str(block.dtype), s, o, fills)


def _hdf_scale(product: ModisProduct, layer: _Layer) -> tuple[float, float]:
    """(multiplier, offset) so that physical = raw * multiplier + offset for an HDF layer.

    MODIS HDF uses physical = scale_factor * (raw - add_offset), except MOD13
    whose scale_factor (10000) divides; the product table tells which.
    """
    s, o = layer.scale, layer.offset
    if s == 1.0 and o == 0.0:
        return product.scale, product.offset
    if s > 1.0 and product.scale < 1.0 and math.isclose(1.0 / s, product.scale, rel_tol=1e-6):
        return 1.0 / s, -o / s
    return s, -s * o


# -- conversion -----------------------------------------------------------------------------
def _qc_mask(product: ModisProduct, qc_raw: np.ndarray, qc: QC) -> np.ndarray:
    """True where the QC layer rejects the pixel under setting ``qc``."""
    finite = np.isfinite(qc_raw)
    q = np.where(finite, qc_raw, 0).astype(np.int64)
    if product.kind == "lst":
        bits = q & 0b11
        keep = bits == 0 if qc == "good" else bits <= 1
    elif product.kind == "ndvi":
        keep = q == 0 if qc == "good" else (q == 0) | (q == 1)
    elif product.kind == "et":
        keep = (q & 1) == 0 if qc == "good" else np.ones(q.shape, dtype=bool)
    else:
        keep = np.ones(q.shape, dtype=bool)
    return ~keep | ~finite


def to_physical(
    product: ModisProduct,
    raw: np.ndarray,
    multiplier: float,
    offset: float,
    composite_days: int,
) -> np.ndarray:
    """Scaled raw values (NaN = missing) in the units of models/features.py, float32."""
    vals = raw * multiplier + offset
    if product.kind == "lst":
        vals = vals - 273.15  # K -> degC
    elif product.kind == "et":
        vals = vals / float(composite_days)  # kg m-2 per composite -> mm/day
    return vals.astype(np.float32)


def _mask_raw(product: ModisProduct, raw: np.ndarray, is_float: bool) -> None:
    if is_float:
        return
    for f in product.fills:
        raw[raw == f] = np.nan
    if product.special is not None:
        lo, hi = product.special
        raw[(raw >= lo) & (raw <= hi)] = np.nan


def _finish(
    product: ModisProduct,
    data: np.ndarray,
    path: object,
    tolerance: float,
) -> tuple[np.ndarray, str]:
    if product.kind == "class":
        data, n = categorical_clean(data, range(1, 18))
        return data, (f"{n} code(s) outside IGBP 1-17 set to NaN" if n else "")
    data, n = apply_physical_range(data, product.variable, path, tolerance=tolerance)
    return data, range_note(n, product.variable)


def _check_date(name_start: dt.date | None, other: dt.date | None, what: str, path: object) -> None:
    if name_start is not None and other is not None and name_start != other:
        raise DateMismatchError(
            path,
            f"file name says composite start {name_start.isoformat()} but {what} says "
            f"{other.isoformat()}",
        )


def read_modis_file(
    path: str | os.PathLike[str],
    product: ModisProduct | str,
    bounds: Bounds | None = None,
    *,
    qc_path: str | os.PathLike[str] | None = None,
    qc: QC = "usable",
    composite_start: dt.date | None = None,
    margin: int = DEFAULT_MARGIN_PIXELS,
    range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
) -> NativeRaster:
    """Read one MODIS file (a layer GeoTIFF, a cropped GeoTIFF, or an HDF4 granule).

    The file may be a whole tile or any sub-window on the sinusoidal lattice.
    QC is applied only when ``qc_path`` is given (GeoTIFF) or the HDF granule
    holds the QC layer and ``qc`` is not ``"any"``.
    """
    prod = PRODUCTS[product] if isinstance(product, str) else product
    p = str(path)
    name = os.path.basename(p)
    m = FILENAME_RE.match(name)
    start = composite_start
    if m is not None:
        start = start or _doy_date(m["year"], m["doy"])
    elif (mt := MODISTSP_RE.search(name)) is not None:
        start = start or _doy_date(mt["year"], mt["doy"])
    if p.endswith(".hdf"):
        sd = _hdf_open(p)
        try:
            attrs = sd.attributes()
            if "StructMetadata.0" not in attrs:
                raise SchemaError(p, "no StructMetadata.0: not an HDF-EOS granule")
            fgrid = hdf_grid(attrs["StructMetadata.0"], prod.layer, p)
            meta = hdf_range_beginning(str(attrs.get("CoreMetadata.0", "")))
            has_qc = prod.qc_layer is not None and prod.qc_layer in sd.datasets()
        finally:
            sd.end()
        _check_date(start if m else None, meta, "CoreMetadata RANGEBEGINNINGDATE", p)
    else:
        from pipeline.sources.raster import band_info

        info = band_info(p, is_modis_sinusoidal, CRS_DESC)
        fgrid = info.grid
        meta_txt = info.tags.get("RANGEBEGINNINGDATE")
        meta = dt.date.fromisoformat(meta_txt[:10]) if meta_txt else None
        _check_date(start if m else None, meta, "RANGEBEGINNINGDATE metadata", p)
        has_qc = qc_path is not None
    lattice = prod.global_grid()
    f_row, f_col = lattice_offset(lattice, fgrid, p)  # must sit on the product lattice
    rc = window_rows_cols(fgrid, bounds, margin)
    if rc is None:
        raise MissingInputError(p, f"file extent does not cover {bounds}", variable=prod.variable)
    window = lattice.window(f_row + rc[0], f_row + rc[1], f_col + rc[2], f_col + rc[3])
    days = composite_length(start, prod.period_days) if start else prod.period_days
    data, note = _read_granule_layers(
        prod,
        window,
        tif=None if p.endswith(".hdf") else p,
        tif_qc=str(qc_path) if qc_path is not None else None,
        hdf=p if p.endswith(".hdf") else None,
        qc=qc if has_qc else "any",
        composite_days=days,
    )
    data, rnote = _finish(prod, data, p, range_tolerance)
    files = (p,) + ((str(qc_path),) if qc_path is not None else ())
    prov = Provenance(prod.variable, files, prod.short, start, days, 0, note).with_note(rnote)
    return NativeRaster(window, data, prov, lattice, (f_row + rc[0], f_col + rc[2]))


def _read_granule_layers(
    prod: ModisProduct,
    window: Grid,
    *,
    tif: str | None,
    tif_qc: str | None,
    hdf: str | None,
    qc: QC,
    composite_days: int,
) -> tuple[np.ndarray, str]:
    """Physical values of one granule on ``window`` (NaN outside the granule)."""
    raw = np.full(window.shape, np.nan, dtype=np.float64)
    if tif is not None:
        info = paste(tif, window, raw, crs_ok=is_modis_sinusoidal, crs_desc=CRS_DESC)
        if info is None:
            return np.full(window.shape, np.nan, dtype=np.float32), ""
        from pipeline.sources.raster import effective_scale

        mult, off = effective_scale(info, prod.scale, prod.offset)
        is_float = info.is_float
        note = "float layer taken as already scaled" if is_float and mult == 1.0 else ""
    else:
        assert hdf is not None
        layer = paste_hdf(hdf, prod.layer, window, raw)
        if layer is None:
            return np.full(window.shape, np.nan, dtype=np.float32), ""
        mult, off = _hdf_scale(prod, layer)
        is_float = np.dtype(layer.dtype).kind == "f"
        note = ""
    _mask_raw(prod, raw, is_float)
    if qc != "any" and prod.qc_layer is not None:
        q = np.full(window.shape, np.nan, dtype=np.float64)
        if tif_qc is not None:
            paste(
                tif_qc, window, q, crs_ok=is_modis_sinusoidal, crs_desc=CRS_DESC, keep_nodata=True
            )
        elif hdf is not None:
            paste_hdf(hdf, prod.qc_layer, window, q, mask_fill=False)
        rejected = _qc_mask(prod, q, qc) & np.isfinite(raw)
        raw[rejected] = np.nan
        n_rej = int(rejected.sum())
        if n_rej:
            note = (note + "; " if note else "") + f"QC '{qc}' rejected {n_rej} pixel(s)"
    return to_physical(prod, raw, mult, off, composite_days), note


def tiles_of(grid: Grid, tile_px: int) -> list[tuple[int, int]]:
    """MODIS tiles (h, v) that a window of the global lattice touches."""
    west, south, east, north = grid.bounds
    h0 = max(0, math.floor((west - GRID_X0) / TILE_SIZE_M + 1e-9))
    h1 = min(N_H - 1, math.ceil((east - GRID_X0) / TILE_SIZE_M - 1e-9) - 1)
    v0 = max(0, math.floor((GRID_Y0 - north) / TILE_SIZE_M + 1e-9))
    v1 = min(N_V - 1, math.ceil((GRID_Y0 - south) / TILE_SIZE_M - 1e-9) - 1)
    return [(h, v) for v in range(v0, v1 + 1) for h in range(h0, h1 + 1)]


class ModisSource:
    """One MODIS product as a ``Source``: padded composites, tiles mosaicked."""

    def __init__(
        self,
        product: ModisProduct | str,
        index: ModisIndex | str | os.PathLike[str],
        *,
        max_pad_days: int = 0,
        qc: QC = "usable",
        margin: int = DEFAULT_MARGIN_PIXELS,
        range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
        variable: str | None = None,
        where: str | None = None,
    ) -> None:
        self.product = PRODUCTS[product] if isinstance(product, str) else product
        self.variable = variable or self.product.variable
        if isinstance(index, Mapping):
            self._where = where or "<index>"
            granules = index.get(self.product.short, {})
        else:
            self._where = where or str(index)
            granules = scan(index).get(self.product.short, {})
        self._granules: dict[dt.date, dict[tuple[int, int], ModisGranule]] = granules
        self.max_pad_days = max_pad_days
        self.qc: QC = qc
        self.margin = margin
        self.range_tolerance = range_tolerance

    def _pattern(self, date: dt.date | None) -> str:
        s = self.product.short
        return f"{self._where}/{s}.061/YYYY.MM.DD/{s}.AYYYYDDD.hHHvVV.061.*  (serving {date})"

    def _choose(self, date: dt.date | None) -> tuple[dt.date, int, int] | None:
        if date is None:
            raise ValueError(f"{self.product.short} is temporal: a date is required")
        c = choose_composite(
            date, self._granules.keys(), self.product.period_days, self.max_pad_days
        )
        return None if c is None else (c.start, c.days, c.days_stale)

    def available(self, date: dt.date | None) -> Provenance | None:
        chosen = self._choose(date)
        if chosen is None:
            return None
        start, days, stale = chosen
        files = tuple(f for g in self._granules[start].values() for f in g.files())
        tiles = ",".join(
            "area" if (h, v) == AREA else f"h{h:02d}v{v:02d}"
            for h, v in sorted(self._granules[start])
        )
        return Provenance(
            self.variable, files, self.product.short, start, days, stale, f"tiles {tiles}"
        )

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        chosen = self._choose(date)
        if chosen is None:
            raise MissingInputError(
                self._pattern(date),
                f"no {self.product.short} composite within its period or "
                f"{self.max_pad_days} day(s) after it",
                variable=self.variable,
                date=date,
            )
        start, days, stale = chosen
        lattice = self.product.global_grid()
        rc = window_rows_cols(lattice, bounds, self.margin)
        if rc is None:
            raise MissingInputError(self._pattern(date), f"bounds {bounds} off the MODIS grid")
        window = lattice.window(*rc)
        data = np.full(window.shape, np.nan, dtype=np.float32)
        used: list[str] = []
        absent: list[str] = []
        notes: list[str] = []
        granules = self._granules[start]
        wanted = tiles_of(window, self.product.tile_px) + ([AREA] if AREA in granules else [])
        for tile in wanted:
            g = granules.get(tile)
            label = "area" if tile == AREA else f"h{tile[0]:02d}v{tile[1]:02d}"
            if g is None:
                absent.append(label)
                continue
            part, note = self._read_tile(g, window, days)
            ok = np.isfinite(part)
            data[ok] = part[ok]
            used.extend(g.files())
            if note:
                notes.append(f"{label}: {note}")
        if AREA in granules and not used:
            absent.append("area mosaic (no overlap)")
        if not used:
            raise MissingInputError(
                self._pattern(date),
                f"composite {start} has no tile {', '.join(absent)} covering {bounds}",
                variable=self.variable,
                date=date,
            )
        path0 = used[0]
        data, rnote = _finish(self.product, data, path0, self.range_tolerance)
        prov = Provenance(self.variable, tuple(used), self.product.short, start, days, stale)
        for n in notes:
            prov = prov.with_note(n)
        if absent:
            prov = prov.with_note(f"tiles absent (NaN): {', '.join(absent)}")
        return NativeRaster(window, data, prov.with_note(rnote), lattice, (rc[0], rc[2]))

    def _read_tile(self, g: ModisGranule, window: Grid, days: int) -> tuple[np.ndarray, str]:
        prod = self.product
        if g.folder_date is not None and g.folder_date != g.start:
            raise DateMismatchError(
                g.files()[0],
                f"folder date {g.folder_date} disagrees with the file name's composite start "
                f"{g.start}",
            )
        tif = g.layers.get(prod.layer)
        need_qc = self.qc != "any" and prod.qc_layer is not None
        if tif is not None:
            tif_qc = g.layers.get(prod.qc_layer) if prod.qc_layer else None
            if need_qc and tif_qc is None:
                raise SchemaError(
                    tif, f"QC layer {prod.qc_layer} is missing beside it (qc='{self.qc}')"
                )
            return _read_granule_layers(
                prod, window, tif=tif, tif_qc=tif_qc, hdf=None, qc=self.qc, composite_days=days
            )
        if g.hdf is not None:
            sd = _hdf_open(g.hdf)
            try:
                meta = hdf_range_beginning(str(sd.attributes().get("CoreMetadata.0", "")))
                names = sd.datasets()
            finally:
                sd.end()
            _check_date(g.start, meta, "CoreMetadata RANGEBEGINNINGDATE", g.hdf)
            if need_qc and prod.qc_layer not in names:
                raise SchemaError(g.hdf, f"QC layer {prod.qc_layer} is missing (qc='{self.qc}')")
            return _read_granule_layers(
                prod, window, tif=None, tif_qc=None, hdf=g.hdf, qc=self.qc, composite_days=days
            )
        some = next(iter(g.layers.values()))
        raise SchemaError(
            some, f"layer {prod.layer} of {prod.short} h{g.tile[0]:02d}v{g.tile[1]:02d} is missing"
        )
