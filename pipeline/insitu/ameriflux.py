"""AmeriFlux BASE readers: the half-hourly/hourly CSV and the BIF (BADM) site metadata.

BASE CSV: ``#`` comment lines, then a header; ``-9999`` is missing;
``TIMESTAMP_START``/``TIMESTAMP_END`` (``YYYYMMDDHHMM``) are local *standard*
time, turned to UTC with the site's ``UTC_OFFSET`` (hours) from the BIF. Soil
water content ``SWC*`` is in percent and becomes m3 m-3; soil temperature
``TS*`` is degC. A reading's time is the middle of its averaging interval.

BIF: rows ``SITE_ID, GROUP_ID, VARIABLE_GROUP, VARIABLE, DATAVALUE``, as the
``.xlsx`` inside ``AMF_<SITE>_BASE-BADM_<VER>.zip`` or a CSV export of it.
Sensor depths come from ``GRP_VAR_INFO`` (``VAR_INFO_VARNAME``,
``VAR_INFO_HEIGHT`` in m, negative below the surface).
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from pipeline.errors import InsituError
from pipeline.insitu._text import EARLIEST, LATEST, clean_text

BIF_COLUMNS = ("SITE_ID", "GROUP_ID", "VARIABLE_GROUP", "VARIABLE", "DATAVALUE")
MISSING = -9999.0

# AMF_<SITE>_BASE_<HH|HR>_<VER>.csv ; AMF_<SITE>_BASE-BADM_<VER>.zip ; AMF_<SITE>_BIF_<DATE>.xlsx
_SITE = r"(?P<site>[A-Za-z]{2}-[A-Za-z0-9]{3})"
BASE_CSV_RE = re.compile(rf"^AMF_{_SITE}_BASE_(?P<res>HH|HR)_(?P<ver>[\w.-]+)\.csv$")
BADM_ZIP_RE = re.compile(rf"^AMF_{_SITE}_BASE-BADM_(?P<ver>[\w.-]+)\.zip$")
BIF_RE = re.compile(
    r"^AMF_(?P<site>[\w-]+)_BIF_(?P<date>[\w.-]+)\.(?P<ext>xlsx|csv)$", re.IGNORECASE
)
# SWC / TS with optional _PI and a position qualifier _H_V_R or a layer index _N.
# Gap-filled (_F) and statistics (_SD, _N) variants are not measurements: not matched.
_VAR_RE = re.compile(
    r"^(?P<base>SWC|TS)(?P<pi>_PI)?(?:_(?P<h>\d+)_(?P<v>\d+)_(?P<r>\d+)|_(?P<layer>\d+))?$"
)


@dataclass(frozen=True, slots=True)
class BifSite:
    """The BIF facts smdown uses for one site (degrees, m, hours)."""

    site_id: str
    lat: float | None = None
    lon: float | None = None
    elevation: float | None = None
    utc_offset: float | None = None
    igbp: str | None = None
    koppen: str | None = None
    name: str | None = None
    # variable name (e.g. SWC_1_1_1) -> depth below the surface (m), latest VAR_INFO entry.
    depths: Mapping[str, float] = field(default_factory=dict)


def _read_bif_rows(raw: bytes, label: str) -> pd.DataFrame:
    """BIF rows from .xlsx bytes (openpyxl) or CSV bytes, as strings."""
    if raw[:2] == b"PK":
        import openpyxl

        try:
            wb = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a damaged workbook
            raise InsituError(label, f"not a readable BIF spreadsheet: {exc}") from exc
        try:
            for ws in wb.worksheets:
                rows = ws.iter_rows(values_only=True)
                header = next(rows, None)
                if header is None:
                    continue
                names = [str(h).strip().upper() if h is not None else "" for h in header]
                if all(c in names for c in BIF_COLUMNS):
                    idx = [names.index(c) for c in BIF_COLUMNS]
                    data = [
                        ["" if r[i] is None else str(r[i]) for i in idx]
                        for r in rows
                        if r is not None and len(r) > max(idx)
                    ]
                    return pd.DataFrame(data, columns=list(BIF_COLUMNS), dtype=str)
        finally:
            wb.close()
        raise InsituError(label, f"BIF spreadsheet has no sheet with columns {BIF_COLUMNS}")
    try:
        table = pd.read_csv(
            io.BytesIO(clean_text(raw)), dtype=str, keep_default_na=False, encoding="utf-8"
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InsituError(label, f"not a BIF CSV: {exc}") from exc
    table.columns = [str(c).strip().upper() for c in table.columns]
    missing = [c for c in BIF_COLUMNS if c not in table.columns]
    if missing:
        raise InsituError(label, f"not a BIF CSV: columns {missing} missing")
    return table.loc[:, list(BIF_COLUMNS)]


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        out = float(str(value).strip())
    except ValueError:
        return None
    return out if math.isfinite(out) else None


def _sites_from_rows(rows: pd.DataFrame) -> dict[str, BifSite]:
    out: dict[str, BifSite] = {}
    rows = rows.assign(
        SITE_ID=rows["SITE_ID"].str.strip(),
        VARIABLE=rows["VARIABLE"].str.strip().str.upper(),
        DATAVALUE=rows["DATAVALUE"].str.strip(),
    )
    for site, grp in rows.groupby("SITE_ID", sort=True):
        if not site:
            continue
        first: dict[str, str] = {}
        for var, val in zip(grp["VARIABLE"], grp["DATAVALUE"], strict=True):
            first.setdefault(var, val)
        depths: dict[str, float] = {}
        info = grp.loc[grp["VARIABLE_GROUP"].str.strip().str.upper() == "GRP_VAR_INFO"]
        entries = []
        for _gid, g in info.groupby("GROUP_ID", sort=False):
            kv = dict(zip(g["VARIABLE"], g["DATAVALUE"], strict=True))
            name, height = kv.get("VAR_INFO_VARNAME"), _float(kv.get("VAR_INFO_HEIGHT"))
            if name and height is not None:
                entries.append((kv.get("VAR_INFO_DATE", ""), name.strip().upper(), -height))
        for _date, name, depth in sorted(entries):  # later VAR_INFO_DATE wins
            depths[name] = depth
        out[str(site)] = BifSite(
            site_id=str(site),
            lat=_float(first.get("LOCATION_LAT")),
            lon=_float(first.get("LOCATION_LONG")),
            elevation=_float(first.get("LOCATION_ELEV")),
            utc_offset=_float(first.get("UTC_OFFSET")),
            igbp=(first.get("IGBP") or None),
            koppen=(first.get("CLIMATE_KOEPPEN") or None),
            name=(first.get("SITE_NAME") or None),
            depths=depths,
        )
    return out


def read_bif(source: str | Path | bytes, name: str | None = None) -> dict[str, BifSite]:
    """Site metadata from a BIF: the BASE-BADM zip, the .xlsx inside it, or a CSV export.

    Returns one ``BifSite`` per SITE_ID present (a combined BIF holds many sites).
    """
    if isinstance(source, bytes | bytearray):
        raw, label = bytes(source), name or "<bytes>"
    else:
        label = str(source)
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise InsituError(label, f"cannot read: {exc}") from exc
    if raw[:2] == b"PK" and not _is_xlsx(raw):
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                names = [n for n in zf.namelist() if BIF_RE.match(PurePosixPath(n).name)]
                if not names:
                    raise InsituError(label, "zip holds no AMF_<SITE>_BIF_<DATE>.xlsx/.csv")
                sites: dict[str, BifSite] = {}
                for n in sorted(names):
                    sites.update(read_bif(zf.read(n), f"{label}!{n}"))
                return sites
        except zipfile.BadZipFile as exc:
            raise InsituError(label, f"not a readable zip: {exc}") from exc
    return _sites_from_rows(_read_bif_rows(raw, label))


def _is_xlsx(raw: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            return "[Content_Types].xml" in zf.namelist()
    except zipfile.BadZipFile:
        return False


@dataclass(frozen=True, slots=True)
class SensorColumn:
    """One SWC or TS column: its qualifiers, depth (m, from the BADM) and valid count."""

    name: str
    depth: float | None
    vertical: int
    horizontal: int
    replicate: int
    pi: bool
    n_valid: int
    unit_error: bool = False

    def rank(self) -> tuple[int, float, int, int, int, int, str]:
        """Sort key: known depth (shallowest) first, then vertical index, plain before _PI."""
        known = 0 if self.depth is not None else 1
        return (
            known,
            self.depth if self.depth is not None else 0.0,
            self.vertical,
            int(self.pi),
            self.horizontal,
            self.replicate,
            self.name,
        )


def sensor_column(name: str, depths: Mapping[str, float], n_valid: int = 0) -> SensorColumn | None:
    """Parse an SWC/TS column name (``SWC``, ``SWC_1_1_1``, ``SWC_PI_2``, ...); None otherwise."""
    m = _VAR_RE.match(name)
    if m is None:
        return None
    if m["v"] is not None:
        h, v, r = int(m["h"]), int(m["v"]), int(m["r"])
    elif m["layer"] is not None:
        h, v, r = 0, int(m["layer"]), 0
    else:
        h, v, r = 0, 0, 0
    depth = depths.get(name.upper())
    return SensorColumn(name, depth, v, h, r, m["pi"] is not None, n_valid)


@dataclass(frozen=True, eq=False)
class AmerifluxSite:
    """One AmeriFlux site's BASE file read and converted.

    ``swc`` holds every SWC column in m3 m-3 (percent / 100) except those flagged
    as unit errors (their values look like fractions already: max <= 1), which
    stay as read and are listed in ``unit_errors``; ``ts`` every TS column in
    degC. Both are indexed like ``times`` (UTC, datetime64[ns], interval middle).
    """

    site_id: str
    path: str
    version: str | None
    lat: float
    lon: float
    elevation: float | None
    utc_offset: float
    igbp: str | None
    koppen: str | None
    times: pd.DatetimeIndex
    swc_columns: tuple[SensorColumn, ...]
    ts_columns: tuple[SensorColumn, ...]
    swc: pd.DataFrame
    ts: pd.DataFrame
    unit_errors: tuple[str, ...]

    @property
    def site_key(self) -> str:
        """``AMF:<SITE>``, the site id of the daily table."""
        return f"AMF:{self.site_id}"

    def best_ts(self) -> SensorColumn | None:
        """The soil temperature to test against: TS_1_1_1 first, else the shallowest."""
        usable = [c for c in self.ts_columns if c.n_valid > 0]
        for c in usable:
            if c.name.upper() == "TS_1_1_1":
                return c
        return min(usable, key=SensorColumn.rank) if usable else None


def _split_comments(text: bytes) -> tuple[bytes, dict[str, str]]:
    """Strip leading ``#`` lines; return the rest and the ``# Key: value`` pairs."""
    meta: dict[str, str] = {}
    pos = 0
    while text.startswith(b"#", pos):
        end = text.find(b"\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos + 1 : end].decode("utf-8", errors="replace").split(",")[0]
        if ":" in line:
            key, value = line.split(":", 1)
            meta[key.strip().lower()] = value.strip()
        pos = end + 1
    return text[pos:], meta


def read_ameriflux(
    csv_path: str | Path,
    badm: str | Path | bytes | BifSite | Mapping[str, BifSite] | None = None,
    *,
    data: bytes | None = None,
) -> AmerifluxSite:
    """Read an AmeriFlux BASE CSV (or the BASE-BADM zip holding it) with its BIF metadata.

    ``badm`` is the BASE-BADM zip, the BIF .xlsx/.csv, or already-read metadata;
    ``None`` uses the BIF inside ``csv_path`` when that is the BASE-BADM zip.
    ``data`` passes the CSV bytes directly (then ``csv_path`` only names the file).
    Raises ``InsituError`` naming the file for anything unreadable, and when the
    site's ``UTC_OFFSET``, latitude or longitude is unknown.
    """
    label = str(csv_path)
    path = Path(csv_path)
    raw = data
    bif_source: str | Path | bytes | BifSite | Mapping[str, BifSite] | None = badm
    if raw is None:
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise InsituError(label, f"cannot read: {exc}") from exc
        if blob[:2] == b"PK":
            try:
                with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                    csvs = [n for n in zf.namelist() if BASE_CSV_RE.match(PurePosixPath(n).name)]
                    if not csvs:
                        raise InsituError(label, "zip holds no AMF_<SITE>_BASE_<HH|HR>_<VER>.csv")
                    inner = sorted(csvs)[0]
                    raw = zf.read(inner)
                    label = f"{label}!{inner}"
            except zipfile.BadZipFile as exc:
                raise InsituError(label, f"not a readable zip: {exc}") from exc
            if bif_source is None:
                bif_source = blob
        else:
            raw = blob
    name = PurePosixPath(label.split("!")[-1]).name
    m = BASE_CSV_RE.match(name)
    body, meta = _split_comments(clean_text(raw))
    site_id = meta.get("site") or (m["site"] if m else None)
    if not site_id:
        raise InsituError(label, "not an AmeriFlux BASE file: no '# Site:' line and no AMF_ name")
    version = meta.get("version") or (m["ver"] if m else None)
    frame = _read_base_table(body, label)
    bif = _resolve_bif(bif_source, site_id, label)
    start = _timestamps(frame["TIMESTAMP_START"], label, "TIMESTAMP_START")
    end = _timestamps(frame["TIMESTAMP_END"], label, "TIMESTAMP_END")
    if ((end - start) <= np.timedelta64(0, "s")).any():
        raise InsituError(label, "TIMESTAMP_END is not after TIMESTAMP_START")
    if bif.utc_offset is None:
        raise InsituError(label, f"UTC_OFFSET of {site_id} unknown (no BIF/BADM metadata)")
    if bif.lat is None or bif.lon is None:
        raise InsituError(label, f"LOCATION_LAT/LONG of {site_id} unknown (no BIF/BADM metadata)")
    offset = pd.to_timedelta(bif.utc_offset, unit="h")
    # Local standard time -> UTC: UTC = local - UTC_OFFSET; stamp at the interval middle.
    middle = start + (end - start) / 2 - offset
    times = pd.DatetimeIndex(middle.astype("datetime64[ns]"), name="time")

    swc_cols: list[SensorColumn] = []
    swc: dict[str, np.ndarray] = {}
    unit_errors: list[str] = []
    ts_cols: list[SensorColumn] = []
    ts: dict[str, np.ndarray] = {}
    for col in frame.columns:
        parsed = sensor_column(col, bif.depths)
        if parsed is None:
            continue
        values = np.array(pd.to_numeric(frame[col], errors="coerce"), dtype=np.float64)
        values[(values == MISSING) | ~np.isfinite(values)] = np.nan
        n_valid = int(np.count_nonzero(~np.isnan(values)))
        if col.upper().startswith("SWC"):
            unit_error = bool(n_valid and np.nanmax(values) <= 1.0)
            if unit_error:
                unit_errors.append(col)
            else:
                values = values / 100.0
            swc[col] = values
            swc_cols.append(
                SensorColumn(
                    col,
                    parsed.depth,
                    parsed.vertical,
                    parsed.horizontal,
                    parsed.replicate,
                    parsed.pi,
                    n_valid,
                    unit_error,
                )
            )
        else:
            ts[col] = values
            ts_cols.append(
                SensorColumn(
                    col,
                    parsed.depth,
                    parsed.vertical,
                    parsed.horizontal,
                    parsed.replicate,
                    parsed.pi,
                    n_valid,
                )
            )
    return AmerifluxSite(
        site_id=site_id,
        path=label,
        version=version,
        lat=bif.lat,
        lon=bif.lon,
        elevation=bif.elevation,
        utc_offset=bif.utc_offset,
        igbp=bif.igbp,
        koppen=bif.koppen,
        times=times,
        swc_columns=tuple(swc_cols),
        ts_columns=tuple(ts_cols),
        swc=pd.DataFrame(swc, index=times),
        ts=pd.DataFrame(ts, index=times),
        unit_errors=tuple(unit_errors),
    )


def _resolve_bif(
    source: str | Path | bytes | BifSite | Mapping[str, BifSite] | None, site: str, label: str
) -> BifSite:
    if source is None:
        raise InsituError(label, f"no BIF/BADM metadata for {site} (UTC_OFFSET needed)")
    if isinstance(source, BifSite):
        return source
    sites = source if isinstance(source, Mapping) else read_bif(source)
    if site not in sites:
        raise InsituError(label, f"BIF/BADM metadata holds no site {site}")
    return sites[site]


def _read_base_table(body: bytes, label: str) -> pd.DataFrame:
    """The BASE table: timestamps as strings, SWC*/TS* columns only (C parser, vectorised)."""

    def wanted(col: str) -> bool:
        return col in ("TIMESTAMP_START", "TIMESTAMP_END") or _VAR_RE.match(col) is not None

    try:
        header = pd.read_csv(io.BytesIO(body), nrows=0, encoding="utf-8").columns
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InsituError(label, f"not an AmeriFlux BASE file: {exc}") from exc
    cols = [str(c).strip() for c in header]
    if "TIMESTAMP_START" not in cols or "TIMESTAMP_END" not in cols:
        raise InsituError(label, "not an AmeriFlux BASE file: no TIMESTAMP_START/END columns")
    if len(set(cols)) != len(cols):
        raise InsituError(label, "duplicate column names in the header")
    use = [c for c in cols if wanted(c)]
    try:
        frame = pd.read_csv(
            io.BytesIO(body),
            usecols=lambda c: str(c).strip() in use,
            dtype={"TIMESTAMP_START": str, "TIMESTAMP_END": str},
            engine="c",
            encoding="utf-8",
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OverflowError) as exc:
        raise InsituError(label, f"not a readable AmeriFlux BASE table: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _timestamps(values: pd.Series, label: str, column: str) -> pd.Series:
    text = values.astype(str).str.strip()
    parsed = pd.to_datetime(text, format="%Y%m%d%H%M", errors="coerce")
    secs = parsed.to_numpy().astype("datetime64[s]")
    bad = parsed.isna().to_numpy() | (secs < EARLIEST) | (secs >= LATEST)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InsituError(
            label, f"{column} row {row + 1}: {text.iloc[row]!r} is not YYYYMMDDHHMM in 1900..2199"
        )
    return parsed.astype("datetime64[ns]")
