"""ISMN readers: the "Header+values" and CEOP "separate files" formats, static variables.

Formats as ISMN delivers them (see ``Readme.txt`` of a download):

* Header+values: first line ``CSE NETWORK STATION LAT LON ELEV DEPTH_FROM DEPTH_TO
  SENSOR``, then ``YYYY/MM/DD HH:MM VALUE ISMN_FLAG PROVIDER_FLAG`` per reading.
* CEOP separate files: every line ``YYYY/MM/DD HH:MM`` (UTC nominal) ``YYYY/MM/DD
  HH:MM`` (UTC actual) ``CSE NETWORK STATION LAT LON ELEV DEPTH_FROM DEPTH_TO VALUE
  ISMN_FLAG PROVIDER_FLAG``.

Times are UTC. Station names and sensor names may contain spaces, provider
flags may contain spaces and commas (everything after the ISMN flag is the
provider flag). Line endings may be CR, LF, CRLF or mixed; text may be UTF-8
or Latin-1. Value lines are parsed with Arrow compute on the whole file.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import InsituError
from pipeline.insitu._text import (
    EARLIEST,
    LATEST,
    NUMBER_RE,
    clean_text,
    first_line,
    split_lines,
    token,
    tokens,
)

IsmnFormat = Literal["header_values", "ceop"]

_DATE_RE = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$")
_TIME_RE = re.compile(r"^\d{1,2}:\d{2}$")
# <CSE>_<NETWORK>_<STATION>_<variable>_<depth_from>_<depth_to>[_<SENSOR>]_<start>_<end>.stm
_NAME_RE = re.compile(
    r"^(?P<head>.+?)_(?P<variable>[A-Za-z][A-Za-z-]*)_(?P<depth_from>-?\d+\.\d+)_"
    r"(?P<depth_to>-?\d+\.\d+)(?:_(?P<sensor>.*?))?_(?P<start>\d{8})_(?P<end>\d{8})\.stm$",
    re.IGNORECASE,
)
SOIL_MOISTURE_NAMES = frozenset({"sm", "soil-moisture", "soilmoisture", "moisture"})
_TIME_FORMAT = "%Y/%m/%d %H:%M"


@dataclass(frozen=True, slots=True)
class IsmnName:
    """What an ISMN data file name says: variable, depths (m), sensor, period."""

    variable: str
    depth_from: float
    depth_to: float
    sensor: str | None
    start: str
    end: str

    @property
    def is_soil_moisture(self) -> bool:
        """True for the soil-moisture variable (``sm``)."""
        return self.variable.lower() in SOIL_MOISTURE_NAMES


def parse_ismn_name(name: str) -> IsmnName | None:
    """Parse an ISMN data file name; ``None`` when it does not follow the convention."""
    m = _NAME_RE.match(name.rsplit("/", 1)[-1])
    if m is None:
        return None
    return IsmnName(
        variable=m["variable"],
        depth_from=float(m["depth_from"]),
        depth_to=float(m["depth_to"]),
        sensor=m["sensor"] or None,
        start=m["start"],
        end=m["end"],
    )


@dataclass(frozen=True, eq=False)
class IsmnSeries:
    """One ISMN sensor file: station metadata and its readings.

    ``data`` columns: ``time`` (datetime64[ns], UTC), ``value`` (float64, the
    variable's unit: m3 m-3 for soil moisture), ``ismn_flag`` (str, e.g. ``G``,
    ``D03,D05``), ``provider_flag`` (str, may be empty).
    """

    path: str
    format: IsmnFormat
    cse: str
    network: str
    station: str
    lat: float
    lon: float
    elevation: float
    depth_from: float
    depth_to: float
    sensor: str
    variable: str | None
    data: pd.DataFrame

    @property
    def site_id(self) -> str:
        """``ISMN:<NETWORK>:<STATION>`` as the header names them."""
        return f"ISMN:{self.network}:{self.station}"

    def good(self) -> pd.DataFrame:
        """Readings whose ISMN flag is exactly ``G`` (a multi-flag such as ``D03,D05`` is not)."""
        return self.data.loc[self.data["ismn_flag"] == "G"].reset_index(drop=True)


@dataclass(frozen=True, slots=True)
class IsmnHead:
    """Station metadata parsed from a file's first line (no readings)."""

    format: IsmnFormat
    cse: str
    network: str
    station: str
    lat: float
    lon: float
    elevation: float
    depth_from: float
    depth_to: float
    sensor: str
    n_prefix: int  # tokens before the value (CEOP) / before lat (header)
    note: str = ""  # e.g. a depth that disagrees with the file name (resolved)


def _is_number(s: str) -> bool:
    return NUMBER_RE.match(s) is not None


def _meta_split(toks: list[str], first: int, n_numbers: int, hint: IsmnName | None) -> int | None:
    """Index of the latitude token: station names may hold spaces, so try each split.

    A split is valid when ``n_numbers`` plain numbers follow with a plausible
    latitude/longitude; among several, the one whose depths match the file name
    wins, else the shortest station name.
    """
    found: list[int] = []
    for i in range(first + 1, len(toks) - n_numbers + 1):
        nums = toks[i : i + n_numbers]
        if not all(_is_number(t) for t in nums):
            continue
        lat, lon = float(nums[0]), float(nums[1])
        if -90.0 <= lat <= 90.0 and -180.0 <= lon <= 360.0:
            found.append(i)
    if not found:
        return None
    if hint is not None and len(found) > 1:
        for i in found:
            if (
                abs(float(toks[i + 3]) - hint.depth_from) < 1e-6
                and abs(float(toks[i + 4]) - hint.depth_to) < 1e-6
            ):
                return i
    return found[0]


def _head_from_tokens(toks: list[str], hint: IsmnName | None) -> IsmnHead | None:
    """Metadata from a first line's tokens, or ``None`` when it is neither ISMN layout."""
    if len(toks) >= 4 and _DATE_RE.match(toks[0]) and _TIME_RE.match(toks[1]):
        # CEOP: 4 date/time tokens, CSE, NETWORK, STATION..., 5 numbers, value, flag(s).
        if not (_DATE_RE.match(toks[2]) and _TIME_RE.match(toks[3])):
            return None
        i = _meta_split(toks, 5, 6, hint)
        if i is None or len(toks) < i + 7:
            return None
        fmt: IsmnFormat = "ceop"
        cse, network, station = toks[4], toks[5], " ".join(toks[6:i])
        sensor = hint.sensor if hint is not None and hint.sensor else ""
    else:
        i = _meta_split(toks, 1, 5, hint)
        if i is None:
            return None
        fmt = "header_values"
        cse, network, station = toks[0], toks[1], " ".join(toks[2:i])
        sensor = " ".join(toks[i + 5 :])
    if not station:
        return None
    lat, lon, elev, dfrom, dto = (float(t) for t in toks[i : i + 5])
    if not all(np.isfinite([lat, lon, elev, dfrom, dto])):
        return None
    notes = []
    if hint is not None:
        dfrom, n1 = _precise_depth("depth_from", toks[i + 3], hint.depth_from)
        dto, n2 = _precise_depth("depth_to", toks[i + 4], hint.depth_to)
        notes = [n for n in (n1, n2) if n]
    note = "; ".join(notes)
    return IsmnHead(fmt, cse, network, station, lat, lon, elev, dfrom, dto, sensor, i, note)


def _decimals(text: str) -> int:
    frac = text.partition(".")[2].rstrip("0")
    return len(frac)


def _precise_depth(what: str, header: str, from_name: float) -> tuple[float, str]:
    """The depth where the first line and the file name disagree: the more precise one
    (more decimals; the header on a tie), and a note saying so (empty when they agree)."""
    value = float(header)
    if abs(value - from_name) < 1e-6:
        return value, ""
    name_text = f"{from_name:.6f}"
    if _decimals(name_text) > _decimals(header):
        chosen, where = from_name, "the file name"
    else:
        chosen, where = value, "the header"
    return chosen, (
        f"{what} {value:g} m in the header, {from_name:g} m in the file name: "
        f"using {chosen:g} m ({where}, the more precise)"
    )


def _not_ismn(line: str, label: str, name: str | None = None) -> InsituError:
    """The refusal of a first line that is neither ISMN layout, naming a known other format
    (``label`` names the file in the message, ``name`` is its file name)."""
    name = name or label
    toks = line.split()
    dated = (
        len(toks) >= 4
        and all(_DATE_RE.match(toks[k]) for k in (0, 2))
        and all(_TIME_RE.match(toks[k]) for k in (1, 3))
    )
    if dated and parse_ismn_name(PurePosixPath(name.split("!")[-1]).name) is None:
        numbers = sum(1 for t in toks[4:] if _is_number(t))
        if numbers >= 6:
            return InsituError(
                label,
                "ISMN CEOP one-file format (all variables of a station in one file, "
                "'Variables stored in one file'), not supported: download the data as "
                "'Header+values' or CEOP 'separate files' (one file per variable and depth)",
            )
    return InsituError(
        label, f"not an ISMN data file: first line is neither header nor CEOP: {line[:80]!r}"
    )


def read_ismn_head(data: bytes, name: str = "<bytes>") -> IsmnHead:
    """Station metadata from the start of an ISMN file (either format); ``InsituError`` if not."""
    line = first_line(data)
    if not line:
        raise InsituError(name, "empty file: not an ISMN data file")
    head = _head_from_tokens(line.split(), parse_ismn_name(name))
    if head is None:
        raise _not_ismn(line, name)
    return head


def _bad_line(name: str, numbers: np.ndarray, mask: np.ndarray, problem: str) -> InsituError:
    where = int(numbers[int(np.flatnonzero(mask)[0])])
    return InsituError(name, f"line {where}: {problem}")


def _times(lines: pa.Array, d: pa.Array, t: pa.Array, numbers: np.ndarray, name: str) -> np.ndarray:
    """UTC times (datetime64[ns]) from date and time tokens, vectorised; errors name the line."""
    ok_shape = pc.and_(pc.equal(pc.utf8_length(d), 10), pc.equal(pc.utf8_length(t), 5))
    if pc.all(ok_shape).as_py() is not False:
        stamp = pc.utf8_slice_codeunits(lines, 0, 16)
    else:
        sep = pa.scalar(" ", type=d.type)
        stamp = pc.binary_join_element_wise(d, t, sep)
    parsed = pc.strptime(stamp, format=_TIME_FORMAT, unit="s", error_is_null=True)
    if parsed.null_count:
        bad = parsed.is_null().to_numpy(zero_copy_only=False)
        raise _bad_line(name, numbers, bad, "date/time is not 'YYYY/MM/DD HH:MM'")
    secs = parsed.to_numpy(zero_copy_only=False).astype("datetime64[s]")
    out_of_range = (secs < EARLIEST) | (secs >= LATEST)
    if out_of_range.any():
        raise _bad_line(name, numbers, out_of_range, "date outside 1900..2199")
    return secs.astype("datetime64[ns]")


def _values(v: pa.Array, numbers: np.ndarray, name: str) -> np.ndarray:
    """Float64 values, vectorised; a non-number fails naming its line."""
    try:
        out = pc.cast(v, pa.float64())
    except pa.ArrowInvalid:
        pattern = NUMBER_RE.pattern
        okay = pc.match_substring_regex(v, pattern).to_numpy(zero_copy_only=False)
        okay |= np.isin(pc.utf8_lower(v).to_numpy(zero_copy_only=False), ["nan", "-nan", "+nan"])
        raise _bad_line(name, numbers, ~okay, "value is not a number") from None
    arr = out.to_numpy(zero_copy_only=False).astype(np.float64)
    arr[~np.isfinite(arr)] = np.nan
    return arr


def _strings(a: pa.Array) -> pd.Series:
    return pd.Series(a.cast(pa.string()).to_pandas(), dtype="str")


def read_ismn_file(
    source: str | bytes | io.BufferedIOBase | object, name: str | None = None
) -> IsmnSeries:
    """Read one ISMN data file of either format (detected from the content).

    ``source`` is a path or the file's bytes (then ``name``, the file name, is
    used for messages and for the variable/depths the name carries). Raises
    ``InsituError(path, problem)`` naming the file for anything that is not ISMN.
    """
    if isinstance(source, bytes | bytearray):
        raw = bytes(source)
        label = name or "<bytes>"
    elif hasattr(source, "read") and callable(source.read):
        raw = source.read()
        label = name or str(getattr(source, "name", "<stream>"))
    else:
        label = str(source)
        try:
            with open(str(source), "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise InsituError(label, f"cannot read: {exc}") from exc
    return parse_ismn_bytes(raw, label, name or label)


def parse_ismn_bytes(raw: bytes, label: str, name: str | None = None) -> IsmnSeries:
    """Parse an ISMN file's bytes; ``label`` names it in errors, ``name`` gives the file name."""
    hint = parse_ismn_name(name or label)
    text = clean_text(raw)
    lines, numbers = split_lines(text)
    if len(lines) == 0:
        raise InsituError(label, "empty file: not an ISMN data file")
    first = lines[0].as_py()
    head = _head_from_tokens(first.split(), hint)
    if head is None:
        raise _not_ismn(first, label, name)
    try:
        if head.format == "header_values":
            body, nums = lines[1:], numbers[1:]
            parts, counts = tokens(body, max_splits=4)
            if len(body) and (counts < 4).any():
                raise _bad_line(label, nums, counts < 4, "expected 'date time value flag'")
            d, t = pc.list_element(parts, 0), pc.list_element(parts, 1)
            v, f = pc.list_element(parts, 2), pc.list_element(parts, 3)
            p = token(parts, 4)
        else:
            body, nums = lines, numbers
            k = head.n_prefix + 5  # tokens before the value
            parts, counts = tokens(body, max_splits=k + 2)
            if (counts < k + 2).any():
                raise _bad_line(label, nums, counts < k + 2, "CEOP line has too few fields")
            net = pc.list_element(parts, 5)
            same = pc.equal(net, pa.scalar(head.network, type=net.type))
            if not pc.all(same).as_py():
                bad = ~same.to_numpy(zero_copy_only=False)
                raise _bad_line(label, nums, bad, "network differs from the first line")
            d, t = pc.list_element(parts, 0), pc.list_element(parts, 1)
            v, f = pc.list_element(parts, k), pc.list_element(parts, k + 1)
            p = token(parts, k + 2)
        if len(body):
            times = _times(body, d, t, nums, label)
            values = _values(v, nums, label)
        else:
            times = np.zeros(0, dtype="datetime64[ns]")
            values = np.zeros(0, dtype=np.float64)
        frame = pd.DataFrame(
            {
                "time": times,
                "value": values,
                "ismn_flag": _strings(f),
                "provider_flag": _strings(p),
            }
        )
    except (pa.ArrowException, ValueError, OverflowError) as exc:
        raise InsituError(label, f"not a readable ISMN file: {exc}") from exc
    sensor = head.sensor or (hint.sensor if hint is not None and hint.sensor else "")
    return IsmnSeries(
        path=label,
        format=head.format,
        cse=head.cse,
        network=head.network,
        station=head.station,
        lat=head.lat,
        lon=head.lon,
        elevation=head.elevation,
        depth_from=head.depth_from,
        depth_to=head.depth_to,
        sensor=sensor,
        variable=hint.variable if hint is not None else None,
        data=frame,
    )


@dataclass(frozen=True, slots=True)
class StaticVariables:
    """What an ISMN ``*_static_variables.csv`` says about a station (top soil layer).

    Fractions in % weight, saturation in m3 m-3 (HWSD); ``landcover_cci`` is the
    ESA CCI class of the latest epoch; ``koppen`` the Koeppen-Geiger symbol.
    """

    koppen: str | None = None
    landcover_cci: int | None = None
    landcover_name: str | None = None
    clay: float | None = None
    sand: float | None = None
    silt: float | None = None
    organic_carbon: float | None = None
    saturation: float | None = None


_STATIC_QUANTITIES = {
    "clay fraction": "clay",
    "sand fraction": "sand",
    "silt fraction": "silt",
    "organic carbon": "organic_carbon",
    "saturation": "saturation",
}


def read_static_variables(source: str | bytes, name: str | None = None) -> StaticVariables:
    """Parse an ISMN ``*_static_variables.csv`` (``;``-separated, UTF-8 or Latin-1)."""
    if isinstance(source, bytes | bytearray):
        raw, label = bytes(source), name or "<bytes>"
    else:
        label = str(source)
        try:
            with open(label, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise InsituError(label, f"cannot read: {exc}") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            table = pd.read_csv(
                io.BytesIO(clean_text(raw)),
                sep=";",
                dtype=str,
                keep_default_na=False,
                index_col=False,
                encoding="utf-8",
            )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InsituError(label, f"not an ISMN static-variables file: {exc}") from exc
    need = {"quantity_name", "value"}
    if not need.issubset(table.columns):
        raise InsituError(label, f"not an ISMN static-variables file: no columns {sorted(need)}")
    q = table["quantity_name"].str.strip().str.lower()
    values: dict[str, object] = {}
    climate = table.loc[q == "climate classification", "value"]
    if len(climate):
        values["koppen"] = str(climate.iloc[-1]).strip() or None
    land = table.loc[q == "land cover classification"]
    if len(land):
        code = pd.to_numeric(land["value"].iloc[-1], errors="coerce")
        values["landcover_cci"] = None if pd.isna(code) else int(code)
        if "description" in land.columns:
            values["landcover_name"] = str(land["description"].iloc[-1]).strip() or None
    depth_col = "depth_from[m]" if "depth_from[m]" in table.columns else None
    for quantity, field in _STATIC_QUANTITIES.items():
        rows = table.loc[q == quantity]
        if depth_col is not None and len(rows):
            depth = pd.to_numeric(rows[depth_col], errors="coerce")
            rows = rows.loc[depth >= 0].assign(_d=depth[depth >= 0]).sort_values("_d")
        if len(rows):
            val = pd.to_numeric(rows["value"].iloc[0], errors="coerce")
            values[field] = None if pd.isna(val) else float(val)
    return StaticVariables(**values)  # type: ignore[arg-type]
