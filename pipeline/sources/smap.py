"""SMAP L3 enhanced passive soil moisture, SPL3SMP_E (NSIDC), HDF5 on EASE-Grid 2.0 9 km.

File: ``SMAP_L3_SM_P_E_YYYYMMDD_R<CRID>_<NNN>.h5``, groups
``Soil_Moisture_Retrieval_Data_AM`` / ``..._PM`` (PM names end in ``_pm``),
``soil_moisture`` float32 in cm3/cm3 (= m3 m-3), ``_FillValue`` -9999,
``retrieval_qual_flag`` uint16 whose bit 0 *set* means the retrieval does NOT
have recommended quality (schema of ``SC_SPL3SMP_008.dmr``).

Rules:
- AM and PM are averaged where both are valid for a cell, else whichever
  exists (paper 2.2.1).
- ``quality="recommended"`` (default) keeps only retrievals with bit 0 clear;
  ``"any"`` keeps every non-fill retrieval.
- Several releases of one day: the newest (highest CRID, then NNN) wins and
  is named in ``provenance.note``.
- The file-name date must agree with ``Metadata/Extent/rangeBeginningDateTime``
  (``DateMismatchError`` otherwise).
- Spatial subsets (e.g. Harmony/OPeNDAP output) are placed on the global grid
  from their ``x``/``y`` coordinates or ``EASE_row_index``/``EASE_column_index``.
- A window where no cell holds a valid retrieval (all fill: a swath gap, the
  ocean or an all-fill day) raises ``MissingInputError`` naming the file, so
  the map flags SMAP missing for that day instead of failing.
- Values outside [0, 1] m3 m-3: see the range rule in ``pipeline.sources.base``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
    apply_physical_range,
    range_note,
    window_rows_cols,
)

PRODUCT = "SPL3SMP_E"
VARIABLE = "smap"
# The EASE-Grid 2.0 constants are grids.named's (one place).
EASE2_M09_CELL = named.EASE2_M09_CELL  # m
EASE2_M09_SHAPE = named.EASE2_M09_SHAPE  # rows, cols
EASE2_M09_X0 = named.EASE2_ORIGIN_X  # m, west edge
EASE2_M09_Y0 = named.EASE2_ORIGIN_Y  # m, north edge
EASE2_M09 = named.named_grid("ease2-m09")
"""The global EASE-Grid 2.0 9 km grid of SPL3SMP_E (EPSG:6933)."""

GROUP_AM = "Soil_Moisture_Retrieval_Data_AM"
GROUP_PM = "Soil_Moisture_Retrieval_Data_PM"
FILL = -9999.0
QUAL_FILL = 65534
QUAL_NOT_RECOMMENDED = 0x1  # bit 0 set: recommended quality NOT met

FILENAME_RE = re.compile(r"^SMAP_L3_SM_P_E_(\d{8})_R(\d+)_(\d{3})\.h5$")


@dataclass(frozen=True, order=True)
class SmapGranule:
    """One SPL3SMP_E file: its day and release (CRID, then NNN orders the releases)."""

    date: dt.date
    crid: int
    number: int
    path: str

    @property
    def release(self) -> str:
        return f"R{self.crid}_{self.number:03d}"


def parse_name(name: str) -> SmapGranule | None:
    """The granule a file name denotes, or None if it is not an SPL3SMP_E name."""
    m = FILENAME_RE.match(name)
    if m is None:
        return None
    try:
        day = dt.datetime.strptime(m.group(1), "%Y%m%d").date()
    except ValueError:
        return None
    return SmapGranule(day, int(m.group(2)), int(m.group(3)), name)


def index_granules(paths: Iterable[str | os.PathLike[str]]) -> dict[dt.date, list[SmapGranule]]:
    """Group SPL3SMP_E files by day, each day's releases newest first."""
    out: dict[dt.date, list[SmapGranule]] = {}
    for p in paths:
        g = parse_name(os.path.basename(p))
        if g is not None:
            out.setdefault(g.date, []).append(SmapGranule(g.date, g.crid, g.number, str(p)))
    for v in out.values():
        v.sort(reverse=True)
    return out


def scan(root: str | os.PathLike[str]) -> dict[dt.date, list[SmapGranule]]:
    """Every SPL3SMP_E file under ``root`` (one directory walk)."""
    found: list[str] = []
    for dirpath, _dirs, files in os.walk(root):
        found.extend(os.path.join(dirpath, f) for f in files if f.endswith(".h5"))
    return index_granules(found)


# -- reading ------------------------------------------------------------------------------
def _open_h5(path: str | os.PathLike[str]) -> Any:
    import h5py

    if not Path(path).exists():
        raise MissingInputError(path, "file does not exist", variable=VARIABLE)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError(path, f"not a readable HDF5 file (truncated?): {exc}") from exc


def _attr_str(v: Any) -> str:
    if isinstance(v, bytes | np.bytes_):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.size == 1:
        return _attr_str(v.reshape(-1)[0])
    return str(v)


def metadata_date(f: Any) -> dt.date | None:
    """``Metadata/Extent/rangeBeginningDateTime`` as a date, or None when absent."""
    ext = f.get("Metadata/Extent")
    if ext is None or "rangeBeginningDateTime" not in ext.attrs:
        return None
    text = _attr_str(ext.attrs["rangeBeginningDateTime"]).strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _group(f: Any, name: str, path: object) -> Any:
    g = f.get(name)
    if g is None:
        raise SchemaError(path, f"group /{name} is missing (not an SPL3SMP_E file?)")
    return g


def _locate(group: Any, suffix: str, path: object) -> tuple[int, int, int, int]:
    """(row0, col0, rows, cols) of the file's arrays on the global EASE2 M09 grid."""
    shape = None
    for name in ("soil_moisture", "latitude", "longitude", "retrieval_qual_flag"):
        ds = group.get(name + suffix)
        if ds is not None and ds.ndim == 2:
            shape = tuple(ds.shape)
            break
    if shape is None:
        raise SchemaError(path, f"/{group.name.strip('/')} holds no 2-D science dataset")
    if shape == EASE2_M09_SHAPE:
        return 0, 0, *EASE2_M09_SHAPE
    if "x" in group and "y" in group:
        x = np.asarray(group["x"][:], dtype=np.float64)
        y = np.asarray(group["y"][:], dtype=np.float64)
        col = (x[0] - EASE2_M09_X0) / EASE2_M09_CELL - 0.5
        row = (EASE2_M09_Y0 - y[0]) / EASE2_M09_CELL - 0.5
        if (
            (len(y), len(x)) != shape
            or abs(col - round(col)) > 0.01
            or abs(row - round(row)) > 0.01
        ):
            raise SchemaError(path, "x/y coordinates are not on the EASE-Grid 2.0 9 km lattice")
        return round(row), round(col), *shape
    rname, cname = "EASE_row_index" + suffix, "EASE_column_index" + suffix
    if rname in group and cname in group:
        rows = np.asarray(group[rname][:])
        cols = np.asarray(group[cname][:])
        good = (rows != QUAL_FILL) & (cols != QUAL_FILL)
        if not good.any():
            raise SchemaError(path, f"{rname}/{cname} hold only fill values")
        i, j = np.argwhere(good)[0]
        return int(rows[i, j]) - int(i), int(cols[i, j]) - int(j), *shape
    raise SchemaError(
        path,
        f"arrays of shape {shape} are not global 1624x3856 and carry no x/y or EASE "
        "row/column indices to place them on the grid",
    )


def file_grid(path: str | os.PathLike[str]) -> Grid:
    """The (sub-)grid of EASE-Grid 2.0 9 km that an SPL3SMP_E file (or subset) covers."""
    with _open_h5(path) as f:
        row0, col0, h, w = _locate(_group(f, GROUP_AM, path), "", path)
    return EASE2_M09.window(row0, row0 + h, col0, col0 + w)


def _read_pass(
    group: Any,
    suffix: str,
    sl: tuple[slice, slice],
    quality: str,
    path: object,
) -> np.ndarray:
    name = "soil_moisture" + suffix
    ds = group.get(name)
    if ds is None:
        raise SchemaError(path, f"variable /{group.name.strip('/')}/{name} is missing")
    try:
        sm = np.asarray(ds[sl], dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise CorruptFileError(path, f"cannot read {ds.name}: {exc}") from exc
    fill = float(np.asarray(ds.attrs.get("_FillValue", FILL)).reshape(-1)[0])
    sm[(sm == fill) | (sm == FILL)] = np.nan
    if quality == "recommended":
        qname = "retrieval_qual_flag" + suffix
        qds = group.get(qname)
        if qds is None:
            raise SchemaError(
                path, f"variable /{group.name.strip('/')}/{qname} is missing (quality filter)"
            )
        try:
            q = np.asarray(qds[sl])
        except (OSError, ValueError) as exc:
            raise CorruptFileError(path, f"cannot read {qds.name}: {exc}") from exc
        sm[(q & QUAL_NOT_RECOMMENDED) != 0] = np.nan
    return sm


def read_smap(
    path: str | os.PathLike[str],
    bounds: Bounds | None = None,
    *,
    date: dt.date | None = None,
    quality: Literal["recommended", "any"] = "recommended",
    margin: int = DEFAULT_MARGIN_PIXELS,
    range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
    note: str = "",
) -> NativeRaster:
    """AM/PM mean soil moisture (m3 m-3) of one SPL3SMP_E file on its EASE2 9 km window.

    ``bounds`` (degrees, EPSG:4326) selects the cells read (plus ``margin``
    cells); None reads the whole file. ``date``, when given, must match the
    file's date. See the module docstring for the rules and errors.
    """
    name = os.path.basename(path)
    granule = parse_name(name)
    with _open_h5(path) as f:
        am = _group(f, GROUP_AM, path)
        pm = _group(f, GROUP_PM, path)
        meta_day = metadata_date(f)
        if granule is not None and meta_day is not None and meta_day != granule.date:
            raise DateMismatchError(
                path,
                f"file name says {granule.date.isoformat()} but "
                f"Metadata/Extent/rangeBeginningDateTime says {meta_day.isoformat()}",
            )
        file_day = granule.date if granule is not None else meta_day
        if date is not None and file_day is not None and file_day != date:
            raise DateMismatchError(
                path, f"file is for {file_day.isoformat()}, asked for {date.isoformat()}"
            )
        row0, col0, h, w = _locate(am, "", path)
        fgrid = EASE2_M09.window(row0, row0 + h, col0, col0 + w)
        rc = window_rows_cols(fgrid, bounds, margin)
        if rc is None:
            raise MissingInputError(
                path, f"file extent does not cover {bounds}", variable=VARIABLE, date=date
            )
        r0, r1, c0, c1 = rc
        sl = (slice(r0, r1), slice(c0, c1))
        sm_am = _read_pass(am, "", sl, quality, path)
        sm_pm = _read_pass(pm, "_pm", sl, quality, path)
    ok_am, ok_pm = np.isfinite(sm_am), np.isfinite(sm_pm)
    n = ok_am.astype(np.float32) + ok_pm.astype(np.float32)
    total = np.where(ok_am, sm_am, 0.0) + np.where(ok_pm, sm_pm, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        data = (total / n).astype(np.float32)
    data[n == 0] = np.nan
    if not np.isfinite(data).any():
        raise MissingInputError(
            path,
            f"no valid retrieval ({quality} quality) in the {r1 - r0}x{c1 - c0} cells "
            "read: all fill (flagged SMAP-missing)",
            variable=VARIABLE,
            date=file_day,
        )
    data, n_bad = apply_physical_range(data, VARIABLE, path, tolerance=range_tolerance)
    both = int((ok_am & ok_pm).sum())
    prov = (
        Provenance(
            variable=VARIABLE,
            files=(str(path),),
            product=PRODUCT,
            composite_start=file_day,
            composite_days=1,
            days_stale=0,
            note=note,
        )
        .with_note(f"AM+PM mean in {both} cells")
        .with_note(range_note(n_bad, VARIABLE))
    )
    window = EASE2_M09.window(row0 + r0, row0 + r1, col0 + c0, col0 + c1)
    return NativeRaster(window, data, prov, EASE2_M09, (row0 + r0, col0 + c0))


class SmapSource:
    """SPL3SMP_E daily soil moisture from a directory tree (or an index of granules)."""

    variable = VARIABLE

    def __init__(
        self,
        root: str | os.PathLike[str] | Mapping[dt.date, list[SmapGranule]],
        *,
        quality: Literal["recommended", "any"] = "recommended",
        margin: int = DEFAULT_MARGIN_PIXELS,
        range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
        where: str | None = None,
    ) -> None:
        if isinstance(root, Mapping):
            self._index = dict(root)
            self._where = where or "<index>"
        else:
            self._index = scan(root)
            self._where = where or str(root)
        self.quality = quality
        self.margin = margin
        self.range_tolerance = range_tolerance

    def _looked_for(self, date: dt.date) -> str:
        return f"{self._where}/**/SMAP_L3_SM_P_E_{date:%Y%m%d}_R*_*.h5"

    def _choose(self, date: dt.date | None) -> tuple[SmapGranule, str] | None:
        if date is None:
            raise ValueError("SMAP is daily: a date is required")
        releases = self._index.get(date)
        if not releases:
            return None
        best = releases[0]
        note = f"release {best.release}"
        if len(releases) > 1:
            others = ", ".join(g.release for g in releases[1:])
            note += f" (newest of {len(releases)}; not used: {others})"
        return best, note

    def available(self, date: dt.date | None) -> Provenance | None:
        chosen = self._choose(date)
        if chosen is None:
            return None
        g, note = chosen
        return Provenance(VARIABLE, (g.path,), PRODUCT, g.date, 1, 0, note)

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        chosen = self._choose(date)
        if chosen is None:
            raise MissingInputError(
                self._looked_for(date),  # type: ignore[arg-type]
                "no SPL3SMP_E file for this day",
                variable=VARIABLE,
                date=date,
            )
        g, note = chosen
        return read_smap(
            g.path,
            bounds,
            date=date,
            quality=self.quality,
            margin=self.margin,
            range_tolerance=self.range_tolerance,
            note=note,
        )
