"""From ISMN and AmeriFlux deliveries to one tidy daily table plus a site table.

Order of the rules (each counted in the QC report):

ISMN: flag exactly ``G``; sensor depth (``depth_field`` <= ``max_depth_m``); one
sensor per station (shallowest, then most G readings, then name); duplicate
times (a file delivered twice); inside CONUS; not a wetland; 0 <= sm <=
``max_swc``; days with >= ``min_obs_per_day`` readings.

AmeriFlux: SWC present (not -9999); SWC in percent (a column whose max <= 1 is a
unit error and is dropped, never divided); sensor depth from the BADM (unknown
depths kept or dropped by ``unknown_depth``); one sensor per site; inside CONUS;
not a wetland (IGBP ``WET`` or listed); temperature >= ``min_soil_temperature_c``
(TS_* of the site, else ``lst_at_site``; readings with neither are counted as
"not applicable" and kept unless ``require_temperature``); 0 <= sm <= ``max_swc``;
days with >= ``min_obs_per_day`` readings.

Site ids: ``ISMN:<NETWORK>:<STATION>`` (names from the file header) and
``AMF:<SITE>``.

Output (``InsituResult.write(out)``; ``out`` with or without ``.parquet``):

* ``<out>.parquet`` daily table, one row per (site, UTC day), sorted by
  (site_id, date): site_id, network (ISMN network or ``AmeriFlux``), lat, lon
  (degrees), depth_from, depth_to (m; NaN when the BADM gives no AmeriFlux
  depth), date (datetime64[ns], midnight UTC), sm (float64 m3 m-3), n_obs (int64).
* ``<out>_sites.parquet``: one row per site read (kept or not): the columns of
  ``SITE_COLUMNS``; ``excluded`` says why a site has no day (None when kept).
* ``<out>_qc.json``: the QC report (steps, skipped files, notes).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import InsituConfig
from pipeline.errors import InsituError
from pipeline.insitu.ameriflux import (
    BADM_ZIP_RE,
    BASE_CSV_RE,
    BIF_RE,
    AmerifluxSite,
    BifSite,
    SensorColumn,
    read_ameriflux,
    read_bif,
)
from pipeline.insitu.daily import daily_means
from pipeline.insitu.ismn import (
    IsmnHead,
    StaticVariables,
    parse_ismn_bytes,
    parse_ismn_name,
    read_ismn_head,
    read_static_variables,
)
from pipeline.insitu.members import Member, iter_members
from pipeline.insitu.qc import QCCounter, QCReport, in_conus, is_wetland

log = logging.getLogger(__name__)

LstAtSite = Callable[[str, float, float, pd.DatetimeIndex], pd.Series]

DAILY_COLUMNS: tuple[str, ...] = (
    "site_id",
    "network",
    "lat",
    "lon",
    "depth_from",
    "depth_to",
    "date",
    "sm",
    "n_obs",
)
SITE_COLUMNS: tuple[str, ...] = (
    "site_id",
    "network",
    "station",
    "source",
    "lat",
    "lon",
    "elevation",
    "depth_from",
    "depth_to",
    "sensor",
    "igbp",
    "koppen",
    "group",
    "in_conus",
    "landcover_cci",
    "clay",
    "sand",
    "silt",
    "n_days",
    "excluded",
)
_ANCILLARY = frozenset({"readme.txt", "ismn_qualityflags_description.txt", "metadata.xml"})

# Rule names as printed (ISMN, AmeriFlux); {d}, {t}, {s}, {n} are filled from the config.
R_FILES = "data files read"
R_G = "ISMN flag is exactly G"
R_DEPTH = "sensor {field} <= {d} m"
R_DEPTH_UNKNOWN = "sensor depth unknown in BADM ({policy})"
R_ONE = "one sensor per site (shallowest)"
R_DUP = "duplicate times (file delivered twice)"
R_CONUS = "inside CONUS"
R_WET = "not a wetland site"
R_PRESENT = "SWC value present (not -9999)"
R_PERCENT = "SWC in percent (max > 1; else unit error)"
R_TEMP = "temperature >= {t} degC (TS_* or MODIS LST)"
R_TEMP_NA = "temperature rule not applicable (no TS_*, no LST)"
R_RANGE = "0 <= sm <= {s} m3 m-3"
R_DAYS = "days with >= {n} readings"


@dataclass(frozen=True, eq=False)
class InsituResult:
    """The daily table, the site table and the QC report of one build."""

    daily: pd.DataFrame
    sites: pd.DataFrame
    report: QCReport

    def write(self, out: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<out>.parquet`` (daily), ``<out>_sites.parquet`` and ``<out>_qc.json``.

        ``out`` may end in ``.parquet`` (then it is the daily file itself). Each
        file is written to a temporary name in the same folder, then renamed.
        """
        daily_path, sites_path, qc_path = output_paths(out)
        daily_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_parquet(self.daily, daily_path)
        _atomic_parquet(self.sites, sites_path)
        _atomic_bytes(json.dumps(self.report.to_dict(), indent=1).encode("utf-8"), qc_path)
        return daily_path, sites_path


def output_paths(out: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """The (daily, sites, qc) file names for an ``--out`` value."""
    p = Path(out)
    stem = p.with_suffix("") if p.suffix == ".parquet" else p
    return (
        stem.with_name(stem.name + ".parquet"),
        stem.with_name(stem.name + "_sites.parquet"),
        stem.with_name(stem.name + "_qc.json"),
    )


def load_insitu(out: str | os.PathLike[str]) -> InsituResult:
    """Read back what ``InsituResult.write`` wrote (the QC report when present)."""
    daily_path, sites_path, qc_path = output_paths(out)
    for p in (daily_path, sites_path):
        if not p.exists():
            raise InsituError(p, "in-situ table not found (run 'smdown insitu')")
    try:
        daily = pd.read_parquet(daily_path)
        sites = pd.read_parquet(sites_path)
    except (OSError, ValueError) as exc:
        raise InsituError(daily_path, f"not a readable in-situ table: {exc}") from exc
    for frame in (daily, sites):  # same dtypes as built: str columns as object
        for col in frame.columns:
            if pd.api.types.is_string_dtype(frame[col].dtype) and frame[col].dtype != object:
                frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    report = QCReport()
    if qc_path.exists():
        report = QCReport.from_dict(json.loads(qc_path.read_text(encoding="utf-8")))
    return InsituResult(daily, sites, report)


def _atomic_bytes(data: bytes, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_parquet(frame: pd.DataFrame, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- helpers


class _Rules:
    """Rule names with the configured numbers filled in."""

    def __init__(self, cfg: InsituConfig) -> None:
        self.depth = R_DEPTH.format(field=cfg.depth_field, d=f"{cfg.max_depth_m:g}")
        self.depth_unknown = R_DEPTH_UNKNOWN.format(policy=cfg.unknown_depth)
        self.temp = R_TEMP.format(t=f"{cfg.min_soil_temperature_c:g}")
        self.range = R_RANGE.format(s=f"{cfg.max_swc:g}")
        self.days = R_DAYS.format(n=cfg.min_obs_per_day)


def _site_rules(
    counter: QCCounter,
    network: str,
    cfg: InsituConfig,
    rules: _Rules,
    n: int,
    in_conus: bool,
    wetland: bool,
) -> str | None:
    """CONUS and wetland rules on a site's ``n`` readings; the exclusion reason or None."""
    reason: str | None = None
    if cfg.conus_only:
        ok = in_conus
        counter.add(network, R_CONUS, n if ok else 0, 0 if ok else n)
        if not ok:
            reason = "outside CONUS"
            n = 0
    ok = not wetland
    counter.add(network, R_WET, n if ok else 0, 0 if ok else n)
    if not ok and reason is None:
        reason = "wetland site"
    return reason


def _range_and_days(
    counter: QCCounter,
    network: str,
    cfg: InsituConfig,
    rules: _Rules,
    times: np.ndarray,
    values: np.ndarray,
) -> pd.DataFrame:
    """The value-range rule then the daily means with the min-readings rule."""
    ok = np.isfinite(values) & (values >= 0.0) & (values <= cfg.max_swc)
    counter.add(network, rules.range, int(ok.sum()), int((~ok).sum()))
    all_days = daily_means(times[ok], values[ok], 1)
    days = all_days.loc[all_days["n_obs"] >= cfg.min_obs_per_day].reset_index(drop=True)
    counter.add(network, rules.days, len(days), len(all_days) - len(days), "days")
    return days


def _daily_rows(
    days: pd.DataFrame,
    site_id: str,
    network: str,
    lat: float,
    lon: float,
    depth_from: float,
    depth_to: float,
) -> pd.DataFrame:
    n = len(days)
    return pd.DataFrame(
        {
            "site_id": [site_id] * n,
            "network": [network] * n,
            "lat": np.full(n, lat, dtype=np.float64),
            "lon": np.full(n, lon, dtype=np.float64),
            "depth_from": np.full(n, depth_from, dtype=np.float64),
            "depth_to": np.full(n, depth_to, dtype=np.float64),
            "date": days["date"].to_numpy(dtype="datetime64[ns]"),
            "sm": days["sm"].to_numpy(dtype=np.float64),
            "n_obs": days["n_obs"].to_numpy(dtype=np.int64),
        }
    )


def _fail_or_skip(counter: QCCounter, strict: bool, exc: InsituError) -> None:
    if strict:
        raise exc
    log.warning("skipped %s", exc)
    counter.skip(exc.path, exc.problem)


# --------------------------------------------------------------------------- ISMN


@dataclass(frozen=True, slots=True)
class _IsmnFile:
    member: Member
    head: IsmnHead

    @property
    def sensor_key(self) -> tuple[str, float, float]:
        return (self.head.sensor, self.head.depth_from, self.head.depth_to)


def _is_ancillary(m: Member) -> bool:
    low = m.name.lower()
    return (
        low in _ANCILLARY
        or low.startswith(".")
        or "python_metadata" in m.parts
        or "__MACOSX" in m.parts
        or low.endswith(("_static_variables.csv", ".npy", ".log"))
    )


def _static_for(
    counter: QCCounter, statics: dict[str, list[Member]], f: _IsmnFile, strict: bool
) -> StaticVariables:
    candidates = statics.get(f.member.folder, [])
    if not candidates:
        return StaticVariables()

    def common(a: str, b: str) -> int:
        n = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            n += 1
        return n

    best = max(candidates, key=lambda s: (common(s.name, f.member.name), s.name))
    try:
        return read_static_variables(best.read(), str(best))
    except InsituError as exc:
        _fail_or_skip(counter, strict, exc)
        return StaticVariables()


def _ismn(
    root: Path, cfg: InsituConfig, counter: QCCounter, strict: bool
) -> tuple[list[pd.DataFrame], list[dict[str, Any]]]:
    net = "ISMN"
    rules = _Rules(cfg)
    counter.declare(
        net,
        [
            (R_FILES, "files"),
            (R_G, "readings"),
            (rules.depth, "readings"),
            (R_ONE, "readings"),
            (R_DUP, "readings"),
            *([(R_CONUS, "readings")] if cfg.conus_only else []),
            (R_WET, "readings"),
            (rules.range, "readings"),
            (rules.days, "days"),
        ],
    )
    zip_errors: list[InsituError] = []
    members = list(iter_members(root, errors=None if strict else zip_errors))
    for exc in zip_errors:
        counter.add(net, R_FILES, 0, 1, "files")
        _fail_or_skip(counter, strict, exc)
    statics: dict[str, list[Member]] = {}
    groups: dict[str, list[_IsmnFile]] = {}
    other_vars = 0
    for m in members:
        if m.name.lower().endswith("_static_variables.csv"):
            statics.setdefault(m.folder, []).append(m)
            continue
        if _is_ancillary(m):
            continue
        name = parse_ismn_name(m.name)
        if name is not None and not name.is_soil_moisture:
            other_vars += 1
            continue
        try:
            head = read_ismn_head(m.read_head(), str(m))
            if name is None:
                raise InsituError(
                    m,
                    "ISMN content but the file name does not say the variable "
                    "(expected <CSE>_<NET>_<STATION>_sm_<from>_<to>_<SENSOR>_<start>_<end>.stm)",
                )
        except InsituError as exc:
            counter.add(net, R_FILES, 0, 1, "files")
            _fail_or_skip(counter, strict, exc)
            continue
        if head.note:
            counter.notes.append(f"{m}: {head.note}")
        site_id = f"ISMN:{head.network}:{head.station}"
        groups.setdefault(site_id, []).append(_IsmnFile(m, head))
    if other_vars:
        counter.notes.append(f"ISMN: {other_vars} files of other variables (not sm) ignored")

    daily: list[pd.DataFrame] = []
    sites: list[dict[str, Any]] = []
    no_g: list[str] = []
    for site_id in sorted(groups):
        files = groups[site_id]
        # sensor -> [(times datetime64[ns], values m3 m-3)] of its G readings, per file
        per_sensor: dict[tuple[str, float, float], list[tuple[np.ndarray, np.ndarray]]] = {}
        n_good: dict[tuple[str, float, float], int] = {}
        read_ok: list[_IsmnFile] = []
        for f in files:
            try:
                series = parse_ismn_bytes(f.member.read(), str(f.member), f.member.name)
            except InsituError as exc:
                counter.add(net, R_FILES, 0, 1, "files")
                _fail_or_skip(counter, strict, exc)
                continue
            counter.add(net, R_FILES, 1, 0, "files")
            read_ok.append(f)
            good = (series.data["ismn_flag"] == "G").to_numpy(dtype=bool)
            counter.add(net, R_G, int(good.sum()), int((~good).sum()))
            g_times = series.data["time"].to_numpy()[good]
            g_values = series.data["value"].to_numpy(dtype=np.float64)[good]
            per_sensor.setdefault(f.sensor_key, []).append((g_times, g_values))
            n_good[f.sensor_key] = n_good.get(f.sensor_key, 0) + len(g_times)
        if not read_ok:
            continue
        if not any(n_good.values()):
            no_g.append(f"{site_id} ({', '.join(f.member.name for f in read_ok)})")
        head = read_ok[0].head

        def depth_of(key: tuple[str, float, float]) -> float:
            return key[2] if cfg.depth_field == "depth_to" else key[1]

        shallow = [k for k in per_sensor if depth_of(k) <= cfg.max_depth_m + 1e-9]
        counter.add(
            net,
            rules.depth,
            sum(n_good[k] for k in shallow),
            sum(n for k, n in n_good.items() if k not in shallow),
        )
        excluded: str | None = None
        chosen: tuple[str, float, float] | None = None
        if shallow:
            chosen = min(shallow, key=lambda k: (k[2], k[1], -n_good[k], k[0]))
            counter.add(net, R_ONE, n_good[chosen], sum(n_good[k] for k in shallow if k != chosen))
        else:
            excluded = f"no sensor with {cfg.depth_field} <= {cfg.max_depth_m:g} m"
        shown = chosen or min(per_sensor, key=lambda k: (k[2], k[1], k[0]))
        first_file = next(f for f in read_ok if f.sensor_key == shown)
        static = _static_for(counter, statics, first_file, strict)
        conus = in_conus(head.lat, head.lon, cfg.conus_bounds)
        wet = is_wetland(site_id, head.station, None, cfg.wetland_sites, cfg.wetland_igbp)
        n_days = 0
        if chosen is not None:
            parts = per_sensor[chosen]
            stamps = np.concatenate([p[0] for p in parts])
            values = np.concatenate([p[1] for p in parts])
            n_all = len(stamps)
            if n_all > 1 and not bool((stamps[1:] > stamps[:-1]).all()):
                # first occurrence of each time (files in path order), then time order
                _, first = np.unique(stamps, return_index=True)
                stamps, values = stamps[first], values[first]
            counter.add(net, R_DUP, len(stamps), n_all - len(stamps))
            reason = _site_rules(counter, net, cfg, rules, len(stamps), conus, wet)
            if reason is not None:
                excluded = reason
            else:
                days = _range_and_days(
                    counter,
                    net,
                    cfg,
                    rules,
                    stamps,
                    values,
                )
                n_days = len(days)
                if n_days:
                    daily.append(
                        _daily_rows(
                            days, site_id, head.network, head.lat, head.lon, chosen[1], chosen[2]
                        )
                    )
                elif sum(n_good.values()) == 0:
                    excluded = "no G readings"
                else:
                    excluded = "no day passes the rules"
        if excluded is None and n_days == 0:
            excluded = "no G readings"
        sites.append(
            {
                "site_id": site_id,
                "network": head.network,
                "station": head.station,
                "source": "ISMN",
                "lat": head.lat,
                "lon": head.lon,
                "elevation": head.elevation,
                "depth_from": shown[1],
                "depth_to": shown[2],
                "sensor": shown[0],
                "igbp": None,
                "koppen": static.koppen,
                "group": head.network,
                "in_conus": conus,
                "landcover_cci": static.landcover_cci,
                "clay": static.clay,
                "sand": static.sand,
                "silt": static.silt,
                "n_days": n_days,
                "excluded": excluded,
            }
        )
    if no_g:
        counter.notes.append(
            f"ISMN: {len(no_g)} station(s) without any G reading: {'; '.join(no_g)}"
        )
    return daily, sites


# --------------------------------------------------------------------------- AmeriFlux


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


def _ameriflux(
    root: Path,
    cfg: InsituConfig,
    counter: QCCounter,
    strict: bool,
    lst_at_site: LstAtSite | None,
) -> tuple[list[pd.DataFrame], list[dict[str, Any]]]:
    net = "AmeriFlux"
    rules = _Rules(cfg)
    counter.declare(
        net,
        [
            (R_FILES, "files"),
            (R_PRESENT, "readings"),
            (R_PERCENT, "readings"),
            (rules.depth, "readings"),
            (rules.depth_unknown, "readings"),
            (R_ONE, "readings"),
            *([(R_CONUS, "readings")] if cfg.conus_only else []),
            (R_WET, "readings"),
            (rules.temp, "readings"),
            (R_TEMP_NA, "readings"),
            (rules.range, "readings"),
            (rules.days, "days"),
        ],
    )
    zip_errors: list[InsituError] = []
    members = list(iter_members(root, errors=None if strict else zip_errors))
    for exc in zip_errors:
        counter.add(net, R_FILES, 0, 1, "files")
        _fail_or_skip(counter, strict, exc)
    bifs: list[tuple[str, Member]] = []
    data: dict[str, list[tuple[tuple[int, ...], int, Member]]] = {}
    ignored: list[str] = []
    for m in members:
        low = m.name.lower()
        if low.startswith(".") or "__MACOSX" in m.parts:
            continue
        if not m.name.startswith("AMF_"):
            # Renamed BASE CSVs are found by their content ('# Site:' line and the
            # TIMESTAMP_START column); LICENSE, README, ... are not part of a delivery.
            found = _base_csv_by_content(m)
            if found is None:
                ignored.append(m.name)
            elif isinstance(found, InsituError):
                counter.add(net, R_FILES, 0, 1, "files")
                _fail_or_skip(counter, strict, found)
            else:
                counter.notes.append(f"AmeriFlux: {m}: BASE CSV of {found} (found by content)")
                data.setdefault(found, []).append(((), 0, m))
            continue
        if (b := BIF_RE.match(m.name)) is not None:
            bifs.append((b["date"], m))
        elif (c := BASE_CSV_RE.match(m.name)) is not None:
            res_rank = 0 if c["res"].upper() == "HH" else 1
            data.setdefault(c["site"], []).append((_version_key(c["ver"]), -res_rank, m))
        elif BADM_ZIP_RE.match(m.name) is None:
            counter.add(net, R_FILES, 0, 1, "files")
            _fail_or_skip(
                counter,
                strict,
                InsituError(m, "not an AmeriFlux BASE CSV or BIF (AMF_<SITE>_BASE_<HH|HR>_...)"),
            )
    if ignored:
        counter.notes.append(
            f"AmeriFlux: {len(ignored)} file(s) neither named AMF_* nor BASE CSV content, "
            f"ignored: {', '.join(sorted(ignored))}"
        )
    meta: dict[str, BifSite] = {}
    for _date, m in sorted(bifs, key=lambda x: (x[0], str(x[1]))):  # later BIF wins
        try:
            meta.update(read_bif(m.read(), str(m)))
        except InsituError as exc:
            _fail_or_skip(counter, strict, exc)

    daily: list[pd.DataFrame] = []
    sites: list[dict[str, Any]] = []
    for site in sorted(data):
        ranked = sorted(data[site], key=lambda x: (x[0], x[1], str(x[2])), reverse=True)
        member = ranked[0][2]
        if len(ranked) > 1:
            counter.notes.append(
                f"AmeriFlux {site}: using {member}; "
                f"{len(ranked) - 1} older/duplicate file(s) unused"
            )
        try:
            if site not in meta:
                raise InsituError(member, f"no BIF/BADM metadata for {site} (UTC_OFFSET needed)")
            af = read_ameriflux(str(member), badm=meta[site], data=member.read())
        except InsituError as exc:
            counter.add(net, R_FILES, 0, 1, "files")
            _fail_or_skip(counter, strict, exc)
            continue
        counter.add(net, R_FILES, 1, 0, "files")
        days, row = _ameriflux_site(af, cfg, rules, counter, lst_at_site)
        if days is not None:
            daily.append(days)
        sites.append(row)
    return daily, sites


def _base_csv_by_content(m: Member) -> str | InsituError | None:
    """The site of an AmeriFlux BASE CSV found by content (``# Site: <id>`` comment and a
    ``TIMESTAMP_START`` header), an ``InsituError`` when it has the table but no site, or
    None when it is not a BASE CSV."""
    if not m.name.lower().endswith(".csv"):
        return None
    try:
        head = m.read_head()
    except (OSError, InsituError):
        return None
    text = head[:8192].decode("utf-8", errors="replace")
    if "TIMESTAMP_START" not in text:
        return None
    site = re.search(r"^#\s*Site:\s*([A-Za-z]{2}-[A-Za-z0-9]{3})\b", text, re.M)
    if site is None:
        return InsituError(
            m,
            "AmeriFlux BASE table (TIMESTAMP_START) but neither a '# Site:' line nor an "
            "AMF_<SITE>_BASE_<HH|HR>_<VER>.csv name says its site",
        )
    return site.group(1)


def _ameriflux_site(
    af: AmerifluxSite,
    cfg: InsituConfig,
    rules: _Rules,
    counter: QCCounter,
    lst_at_site: LstAtSite | None,
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    net = "AmeriFlux"
    site_id = af.site_key
    n_rows = len(af.times)
    cols = af.swc_columns
    conus = in_conus(af.lat, af.lon, cfg.conus_bounds)
    row: dict[str, Any] = {
        "site_id": site_id,
        "network": "AmeriFlux",
        "station": af.site_id,
        "source": "AmeriFlux",
        "lat": af.lat,
        "lon": af.lon,
        "elevation": af.elevation,
        "depth_from": np.nan,
        "depth_to": np.nan,
        "sensor": None,
        "igbp": af.igbp,
        "koppen": af.koppen,
        "group": "AmeriFlux",
        "in_conus": conus,
        "landcover_cci": None,
        "clay": None,
        "sand": None,
        "silt": None,
        "n_days": 0,
        "excluded": None,
    }
    valid = sum(c.n_valid for c in cols)
    counter.add(net, R_PRESENT, valid, len(cols) * n_rows - valid)
    if not cols:
        row["excluded"] = "no SWC column"
        counter.notes.append(f"{site_id}: no SWC column in {af.path}")
        return None, row
    percent = [c for c in cols if not c.unit_error]
    counter.add(
        net, R_PERCENT, sum(c.n_valid for c in percent), valid - sum(c.n_valid for c in percent)
    )
    for c in cols:
        if c.unit_error:
            counter.notes.append(
                f"{site_id}: {c.name} in {af.path} looks like a fraction already (max <= 1): "
                "unit error, dropped"
            )
    known = [c for c in percent if c.depth is not None]
    unknown = [c for c in percent if c.depth is None]
    shallow = [c for c in known if c.depth is not None and c.depth <= cfg.max_depth_m + 1e-9]
    counter.add(
        net,
        rules.depth,
        sum(c.n_valid for c in shallow),
        sum(c.n_valid for c in known if c not in shallow),
    )
    n_unknown = sum(c.n_valid for c in unknown)
    if cfg.unknown_depth == "keep":
        counter.add(net, rules.depth_unknown, n_unknown, 0)
        eligible: list[SensorColumn] = shallow + unknown
    else:
        counter.add(net, rules.depth_unknown, 0, n_unknown)
        eligible = shallow
    eligible = [c for c in eligible if c.n_valid > 0]
    if not eligible:
        row["excluded"] = "unit error" if not percent else "no SWC sensor passes the depth rule"
        return None, row
    chosen = min(eligible, key=SensorColumn.rank)
    counter.add(net, R_ONE, chosen.n_valid, sum(c.n_valid for c in eligible if c is not chosen))
    depth = chosen.depth if chosen.depth is not None else np.nan
    row.update({"depth_from": depth, "depth_to": depth, "sensor": chosen.name})
    values = af.swc[chosen.name].to_numpy(dtype=np.float64)
    present = ~np.isnan(values)
    times = af.times.to_numpy()[present]
    values = values[present]
    wet = is_wetland(site_id, af.site_id, af.igbp, cfg.wetland_sites, cfg.wetland_igbp)
    reason = _site_rules(counter, net, cfg, rules, len(values), conus, wet)
    if reason is not None:
        row["excluded"] = reason
        return None, row
    temp = np.full(len(values), np.nan)
    ts_col = af.best_ts()
    if ts_col is not None:
        temp = af.ts[ts_col.name].to_numpy(dtype=np.float64)[present].copy()
    if lst_at_site is not None and np.isnan(temp).any():
        gaps = np.isnan(temp)
        when = pd.DatetimeIndex(times[gaps])
        lst = lst_at_site(site_id, af.lat, af.lon, when)
        if isinstance(lst.index, pd.DatetimeIndex) and len(lst.index.intersection(when)):
            lst = lst[~lst.index.duplicated()].reindex(when)
        elif len(lst) != len(when):
            raise InsituError(
                site_id, f"lst_at_site returned {len(lst)} values for {len(when)} times"
            )
        temp[gaps] = np.asarray(lst, dtype=np.float64)
    has_t = ~np.isnan(temp)
    warm = has_t & (temp >= cfg.min_soil_temperature_c)
    counter.add(net, rules.temp, int(warm.sum()), int((has_t & ~warm).sum()))
    n_na = int((~has_t).sum())
    if n_na:
        counter.notes.append(
            f"{site_id}: temperature rule not applicable to {n_na} readings (no TS_*, no LST)"
        )
    if cfg.require_temperature:
        counter.add(net, R_TEMP_NA, 0, n_na)
        keep = warm
    else:
        counter.add(net, R_TEMP_NA, n_na, 0)
        keep = warm | ~has_t
    days = _range_and_days(counter, net, cfg, rules, times[keep], values[keep])
    row["n_days"] = len(days)
    if not len(days):
        row["excluded"] = "no day passes the rules"
        return None, row
    return _daily_rows(days, site_id, "AmeriFlux", af.lat, af.lon, depth, depth), row


# --------------------------------------------------------------------------- entry point


def _empty_daily() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": pd.Series([], dtype=object),
            "network": pd.Series([], dtype=object),
            "lat": pd.Series([], dtype=np.float64),
            "lon": pd.Series([], dtype=np.float64),
            "depth_from": pd.Series([], dtype=np.float64),
            "depth_to": pd.Series([], dtype=np.float64),
            "date": pd.Series([], dtype="datetime64[ns]"),
            "sm": pd.Series([], dtype=np.float64),
            "n_obs": pd.Series([], dtype=np.int64),
        }
    )


def _frames(
    daily: Iterable[pd.DataFrame], sites: list[dict[str, Any]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    parts = [d for d in daily if len(d)]
    table = pd.concat(parts, ignore_index=True) if parts else _empty_daily()
    table = table.loc[:, list(DAILY_COLUMNS)].sort_values(["site_id", "date"], kind="stable")
    table["site_id"] = table["site_id"].astype(object)
    table["network"] = table["network"].astype(object)
    table["date"] = table["date"].astype("datetime64[ns]")
    site_table = pd.DataFrame(sites, columns=list(SITE_COLUMNS))
    site_table = site_table.astype(
        {
            "lat": np.float64,
            "lon": np.float64,
            "elevation": np.float64,
            "depth_from": np.float64,
            "depth_to": np.float64,
            "in_conus": bool,
            "n_days": np.int64,
            "clay": np.float64,
            "sand": np.float64,
            "silt": np.float64,
            "landcover_cci": "Int64",
        }
    )
    for col in (
        "site_id",
        "network",
        "station",
        "source",
        "sensor",
        "igbp",
        "koppen",
        "group",
        "excluded",
    ):
        site_table[col] = site_table[col].astype(object).where(site_table[col].notna(), None)
    return table.reset_index(drop=True), site_table.sort_values("site_id").reset_index(drop=True)


def build_insitu(
    ismn: str | os.PathLike[str] | None,
    ameriflux: str | os.PathLike[str] | None,
    cfg: InsituConfig,
    *,
    lst_at_site: LstAtSite | None = None,
    strict: bool | None = None,
) -> InsituResult:
    """Read, quality-control and aggregate both networks to daily means per UTC day.

    ``ismn``: a folder tree, a zip, a folder of zips or one file, as ISMN delivers.
    ``ameriflux``: a folder of BASE CSVs / BASE-BADM zips / BIF files.
    ``lst_at_site(site_id, lat, lon, times) -> Series`` (degC) supplies MODIS LST
    for AmeriFlux readings without soil temperature. ``strict`` (default
    ``cfg.strict``) stops at the first unreadable file instead of skipping it.
    """
    if ismn is None and ameriflux is None:
        raise InsituError("<none>", "no ISMN nor AmeriFlux input given")
    strict_mode = cfg.strict if strict is None else strict
    counter = QCCounter()
    daily: list[pd.DataFrame] = []
    sites: list[dict[str, Any]] = []
    if ismn is not None:
        d, s = _ismn(Path(ismn), cfg, counter, strict_mode)
        daily += d
        sites += s
    if ameriflux is not None:
        d, s = _ameriflux(Path(ameriflux), cfg, counter, strict_mode, lst_at_site)
        daily += d
        sites += s
    table, site_table = _frames(daily, sites)
    return InsituResult(table, site_table, counter.report())
