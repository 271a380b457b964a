"""NASA's CMR granule search, and the archive facts of every NASA product smdown fetches.

``ARCHIVE`` is the one place that says where a product lives today: its CMR short name,
version and provider, the folder the fetcher stores it under, the file extension of its
data files and the DAAC endpoint that hands out temporary S3 credentials. The product
*names* a family uses per input are the registry's (``models/variables.py``); this table
only knows the archives.

Discovery (``search``) is CMR's JSON API, ``GET <CMR>/search/granules.umm_json`` with
``short_name``, ``version``, ``provider``, ``temporal=<begin>,<end>`` (granules overlapping
the range), ``bounding_box=W,S,E,N``, ``page_size`` (at most 2000) and
``sort_key=start_date``. Paging: every page with results carries a ``CMR-Search-After``
response header; the next request sends it back as a request header (with the same
parameters) until a page comes back empty or without the header. ``CMR-Hits`` (and the
body's ``hits``) give the total, which the pages must add up to. Each item is UMM-G:
``umm.GranuleUR``, ``umm.TemporalExtent.RangeDateTime``, ``umm.RelatedUrls`` (``Type``
``"GET DATA"``: the Earthdata Cloud HTTPS link; ``"GET DATA VIA DIRECT ACCESS"``: the
``s3://`` link, readable only inside us-west-2), ``umm.DataGranule.
ArchiveAndDistributionInformation`` (per file ``Name``, ``SizeInBytes`` or
``Size``+``SizeUnit``, ``Checksum {Value, Algorithm}``).

Why plain ``requests`` and not ``earthaccess`` 0.17 (measured, see docs/data-layout.md
"Fetching"): earthaccess's login contacts urs.earthdata.nasa.gov and its search goes to the
operational CMR, so neither runs against a local emulator without patching its internals;
its download writes atomically but does not retry, resume, or check sizes and checksums;
and it adds nine packages to the install (import about 2 s against 0.6 s for requests). What
smdown needs of it is one paged GET and a bearer header.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import SourceError

CMR_URL = "https://cmr.earthdata.nasa.gov/search/granules.umm_json"
CLIENT_ID = "smdown"
PAGE_SIZE = 2000  # CMR's maximum
TOKEN_ENV = "EARTHDATA_TOKEN"
TIMEOUT_S = 120.0
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})

LPCLOUD_S3 = "https://data.lpdaac.earthdatacloud.nasa.gov/s3credentials"
NSIDC_S3 = "https://data.nsidc.earthdatacloud.nasa.gov/s3credentials"


class FetchError(SourceError):
    """A search or download failed; ``path`` is the URL."""


class MissingTokenError(FetchError):
    """No Earthdata Login token: raised before any network call."""


@dataclass(frozen=True, slots=True)
class Collection:
    """Where a product's granules are archived (see the module docstring)."""

    short_name: str
    version: str
    provider: str
    folder: str
    """Top folder under the sources root: ``MODIS``, ``VIIRS`` or ``SMAP``."""
    extension: str
    """Data files of a granule end with this (other GET DATA links are ignored)."""
    s3_credentials: str
    tiled: bool = True
    """Sinusoidal hHHvVV tiles (file name ``<SHORT>.AYYYYDDD.hHHvVV.<ver>.<prod>.<ext>``)."""
    yearly: bool = False
    """One granule per year (land cover): a day is served by the latest year up to it."""

    @property
    def label(self) -> str:
        return f"{self.short_name}.{self.version}"


def _lp(short: str, version: str, ext: str, yearly: bool = False) -> Collection:
    folder = "VIIRS" if short.startswith(("VNP", "VJ1", "VJ2")) else "MODIS"
    return Collection(short, version, "LPCLOUD", folder, ext, LPCLOUD_S3, yearly=yearly)


_MODIS = ("MOD11A2", "MOD21A1D", "MOD13A1", "MOD13Q1", "MOD16A2")
_AQUA = ("MYD11A2", "MYD21A1D", "MYD13A1", "MYD13Q1", "MYD16A2")
# VIIRS collection 2 land products on the MODIS sinusoidal tiles (HDF-EOS5, .h5).
_VIIRS = (
    *("VNP21A1D", "VNP21A2", "VNP13A1", "VNP16A2"),  # Suomi NPP
    *("VJ121A1D", "VJ121A2", "VJ113A1", "VJ116A2"),  # NOAA-20 (JPSS-1)
    *("VJ221A1D", "VJ221A2", "VJ213A1", "VJ216A2"),  # NOAA-21 (JPSS-2)
)
ARCHIVE: dict[str, Collection] = {
    **{s: _lp(s, "061", ".hdf") for s in (*_MODIS, *_AQUA)},
    "MCD12Q1": _lp("MCD12Q1", "061", ".hdf", yearly=True),
    **{s: _lp(s, "002", ".h5") for s in _VIIRS},
    "SPL3SMP_E": Collection("SPL3SMP_E", "006", "NSIDC_CPRD", "SMAP", ".h5", NSIDC_S3, tiled=False),
}
"""Every NASA product ``smdown fetch`` discovers through CMR, by short name."""

# Entries whose CMR collection we could not confirm from public sources when this table was
# written: a search that finds nothing for them says so. NOAA-21 land products were being
# released in 2025-2026 (VJ213A1.002 and VJ221A1D.002 are cited); one 2026 CMR check reported
# zero hits for the short name VNP16A2 (the Suomi NPP ET exists as the gap-filled VNP16A2GF,
# which lags about a year), while VJ116A2.002 (NOAA-20) is cited.
UNCONFIRMED = frozenset({"VNP16A2", "VJ221A2", "VJ216A2"})


# -- retries --------------------------------------------------------------------------------
@dataclass
class Backoff:
    """Exponential backoff with full jitter: try ``i`` (0-based) waits U(0, min(cap, base*2^i)).

    A ``Retry-After`` header (seconds or HTTP date) is honoured, capped at ``cap``.
    ``sleep`` and ``rng`` are injectable so tests record the waits instead of waiting.
    """

    tries: int = 6
    base: float = 1.0
    cap: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random
    waits: list[float] = field(default_factory=list)

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            s = _retry_after_seconds(retry_after)
            if s is not None:
                return min(self.cap, s)
        return self.rng() * min(self.cap, self.base * 2.0**attempt)

    def wait(self, attempt: int, retry_after: str | None = None) -> None:
        d = self.delay(attempt, retry_after)
        self.waits.append(d)
        self.sleep(d)


def _retry_after_seconds(value: str) -> float | None:
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def http_error(url: str, status: int, reason: str, token: str | None) -> FetchError:
    hint = ""
    if status in (401, 403):
        hint = (
            f"; set ${TOKEN_ENV} to an Earthdata Login token (urs.earthdata.nasa.gov, "
            "'Generate Token')"
            if not token
            else "; the Earthdata token was refused (expired, or the DAAC's application "
            "not authorised in your Earthdata profile?)"
        )
    return FetchError(url, f"HTTP {status} {reason}{hint}")


def require_token(token: str | None, what: str) -> str:
    """The token, or ``MissingTokenError`` naming ``EARTHDATA_TOKEN`` (no network call)."""
    if token:
        return token
    raise MissingTokenError(
        f"${TOKEN_ENV}",
        f"not set: {what} needs an Earthdata Login token (urs.earthdata.nasa.gov > "
        f"Generate Token; then export {TOKEN_ENV}=...)",
    )


# -- granules -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FileInfo:
    """One file of a granule as UMM-G describes it (size in bytes, checksum when given)."""

    name: str
    size: int | None = None
    checksum: tuple[str, str] | None = None
    """(algorithm as CMR spells it, e.g. ``MD5``/``SHA-256``, hex value)."""


@dataclass(frozen=True, slots=True)
class Granule:
    ur: str
    begin: dt.datetime | None
    end: dt.datetime | None
    https: tuple[str, ...]
    s3: tuple[str, ...]
    files: tuple[FileInfo, ...] = ()

    def file(self, url: str) -> FileInfo | None:
        """The UMM-G file record for a data link (matched by file name)."""
        name = url.rstrip("/").rsplit("/", 1)[-1]
        return next((f for f in self.files if f.name == name), None)


def _size(info: Mapping[str, Any]) -> int | None:
    if isinstance(info.get("SizeInBytes"), int | float):
        return int(info["SizeInBytes"])
    # Size + SizeUnit is rounded by the provider: too coarse to check a download against.
    return None


def _time(s: object) -> dt.datetime | None:
    if not isinstance(s, str):
        return None
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def parse_item(item: Mapping[str, Any], where: str) -> Granule:
    """One ``items[]`` entry of a ``granules.umm_json`` response."""
    umm = item.get("umm")
    if not isinstance(umm, Mapping):
        raise FetchError(where, "CMR item without 'umm' (not a granules.umm_json response?)")
    ur = str(umm.get("GranuleUR") or item.get("meta", {}).get("native-id") or "")
    rng = (umm.get("TemporalExtent") or {}).get("RangeDateTime") or {}
    https: list[str] = []
    s3: list[str] = []
    for link in umm.get("RelatedUrls") or []:
        url, kind = link.get("URL"), link.get("Type")
        if not isinstance(url, str):
            continue
        if kind == "GET DATA" and url.startswith(("https://", "http://")):
            https.append(url)
        elif kind == "GET DATA VIA DIRECT ACCESS" and url.startswith("s3://"):
            s3.append(url)
    files = []
    data_granule = umm.get("DataGranule") or {}
    for info in data_granule.get("ArchiveAndDistributionInformation") or []:
        ck = info.get("Checksum") or {}
        checksum = None
        if ck.get("Value") and ck.get("Algorithm"):
            checksum = (str(ck["Algorithm"]), str(ck["Value"]).lower())
        if info.get("Name"):
            files.append(FileInfo(str(info["Name"]), _size(info), checksum))
    return Granule(
        ur,
        _time(rng.get("BeginningDateTime")),
        _time(rng.get("EndingDateTime")),
        tuple(https),
        tuple(s3),
        tuple(files),
    )


def temporal(start: dt.date, end: dt.date) -> str:
    """CMR's ``temporal`` value for whole days ``start``..``end`` (UTC)."""
    return f"{start:%Y-%m-%d}T00:00:00Z,{end:%Y-%m-%d}T23:59:59Z"


def search(
    collection: Collection,
    start: dt.date,
    end: dt.date,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    token: str | None = None,
    session: Any = None,
    url: str = CMR_URL,
    page_size: int = PAGE_SIZE,
    backoff: Backoff | None = None,
) -> list[Granule]:
    """Every granule of ``collection`` overlapping ``start``..``end`` (and ``bbox``: W,S,E,N)."""
    import requests

    sess = session if session is not None else requests.Session()
    bo = backoff if backoff is not None else Backoff()
    params: dict[str, str | int] = {
        "short_name": collection.short_name,
        "version": collection.version,
        "provider": collection.provider,
        "temporal": temporal(start, end),
        "page_size": page_size,
        "sort_key": "start_date",
    }
    if bbox is not None:
        params["bounding_box"] = ",".join(f"{v:g}" for v in bbox)
    headers = {"Client-Id": CLIENT_ID, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    out: list[Granule] = []
    hits: int | None = None
    seen_after: set[str] = set()
    while True:
        page = _get_json(sess, url, params, headers, token, bo)
        body, resp_headers = page
        if hits is None:
            h = resp_headers.get("CMR-Hits", body.get("hits"))
            hits = int(h) if h is not None else None
        items = body.get("items")
        if not isinstance(items, list):
            raise FetchError(url, "CMR response has no 'items' list")
        out.extend(parse_item(it, url) for it in items)
        after = resp_headers.get("CMR-Search-After")
        if not items or not after or (hits is not None and len(out) >= hits):
            break
        if after in seen_after:
            raise FetchError(url, f"CMR paging repeats CMR-Search-After {after!r}")
        seen_after.add(after)
        headers = {**headers, "CMR-Search-After": after}
    if hits is not None and len(out) != hits:
        raise FetchError(url, f"CMR paging returned {len(out)} of {hits} granules")
    return out


def _get_json(
    sess: Any,
    url: str,
    params: Mapping[str, str | int],
    headers: Mapping[str, str],
    token: str | None,
    bo: Backoff,
) -> tuple[dict[str, Any], Mapping[str, str]]:
    import requests

    last = ""
    for attempt in range(bo.tries):
        retry_after = None
        try:
            r = sess.get(url, params=params, headers=headers, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if r.status_code == 200:
                try:
                    body = r.json()
                except ValueError as exc:
                    raise FetchError(url, f"CMR answered with non-JSON: {exc}") from exc
                if not isinstance(body, dict):
                    raise FetchError(url, "CMR answered with JSON that is not an object")
                return body, r.headers
            if r.status_code not in RETRY_STATUS:
                detail = ""
                try:
                    errs = r.json().get("errors")
                    detail = f": {errs[0]}" if errs else ""
                except (ValueError, AttributeError):
                    pass
                err = http_error(url, r.status_code, r.reason or "", token)
                raise FetchError(url, err.problem + detail)
            last = f"HTTP {r.status_code} {r.reason}"
            retry_after = r.headers.get("Retry-After")
        if attempt + 1 < bo.tries:
            bo.wait(attempt, retry_after)
    raise FetchError(url, f"CMR search failed after {bo.tries} tries: {last}")


# -- sinusoidal tiles -----------------------------------------------------------------------
SIN_R = 6371007.181
TILE_M = 1111950.5197665
SIN_X0, SIN_Y0 = -20015109.354, 10007554.677


def tiles_bbox(tiles: Iterable[str]) -> tuple[float, float, float, float]:
    """The lon/lat box (W, S, E, N) covering sinusoidal tiles ``hHHvVV``."""
    lons: list[float] = []
    lats: list[float] = []
    for t in tiles:
        h, v = int(t[1:3]), int(t[4:6])
        x0, x1 = SIN_X0 + h * TILE_M, SIN_X0 + (h + 1) * TILE_M
        y1, y0 = SIN_Y0 - v * TILE_M, SIN_Y0 - (v + 1) * TILE_M
        for y in (y0, y1):
            lat = math.degrees(y / SIN_R)
            lats.append(lat)
            c = math.cos(math.radians(lat))
            for x in (x0, x1):
                lons.append(180.0 if c < 1e-9 else math.degrees(x / (SIN_R * c)))
    if not lats:
        raise ValueError("no tile given")
    clamp = lambda v, lim: max(-lim, min(lim, v))  # noqa: E731
    return (
        round(clamp(min(lons), 180.0), 4),
        round(clamp(min(lats), 90.0), 4),
        round(clamp(max(lons), 180.0), 4),
        round(clamp(max(lats), 90.0), 4),
    )
