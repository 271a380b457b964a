"""Download products into the provider layout under the sources root (docs/data-layout.md).

- NASA products (``cmr.ARCHIVE``: MODIS Terra/Aqua collection 6.1, VIIRS collection 2 on
  Suomi NPP / NOAA-20 / NOAA-21, ``SPL3SMP_E``): granules found through NASA's CMR search
  (``pipeline.sources.cmr``: no directory listing is read), downloaded from their
  Earthdata Cloud HTTPS links with an Earthdata Login bearer token, or, inside AWS
  us-west-2, from their ``s3://`` links with the DAAC's temporary S3 credentials
  (``access="s3"``). Tiled products keep the newest production of each tile and day,
  ``SPL3SMP_E`` the newest release of each day. Stored as
  ``<root>/<MODIS|VIIRS|SMAP>/<SHORT>.<version>/YYYY.MM.DD/<file name>``.
- ``CHIRPS`` (2.0) and ``CHIRPS3`` (3.0, daily final ``rnl`` or ``sat``, GeoTIFF or COG):
  UCSB CHC plain HTTPS, the URL follows from the date.
- ``SoilGrids``, ``MERIT``, ``Koeppen``: ``ManualDownloadRequired`` with the steps.

The token: ``token=``, else ``$EARTHDATA_TOKEN``, else one made from the Earthdata Login
user and password of ``~/.netrc`` (``machine urs.earthdata.nasa.gov``; URS's
``find_or_create_token``). Without any, ``MissingTokenError`` names ``EARTHDATA_TOKEN``
before any network call.

A download is written under ``<name>.<pid>.part`` (two processes fetching one file do not
mix their bytes) and renamed only when complete: the byte
count the server announced, the size and checksum CMR lists for the file, and the file
format's signature (an HTML login page served with status 200 is refused). A broken or
truncated transfer and HTTP 408/429/5xx are retried with exponential backoff and full
jitter (``cmr.Backoff``; ``Retry-After`` honoured), resuming with a ``Range`` request from
the bytes already written; the ``.part`` is removed when the download finally fails, so
nothing half-written stays on disk. Redirects are followed by hand: the ``Authorization``
header goes only to the URL's own host and to Earthdata hosts over HTTPS, never to the
download host a DAAC redirects to (a pre-signed S3/CloudFront URL refuses a second
authentication). Existing complete files are skipped. Every failure raises
``FetchError`` naming the URL.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import netrc
import os
import re
import shutil
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from pipeline.errors import SourceError
from pipeline.sources import cmr
from pipeline.sources.cmr import (
    ARCHIVE,
    RETRY_STATUS,
    TIMEOUT_S,
    TOKEN_ENV,
    Backoff,
    FetchError,
    MissingTokenError,
    http_error,
    require_token,
)
from pipeline.sources.smap import parse_name as parse_smap_name

__all__ = [
    "ARCHIVE",
    "CHIRPS3_BASE",
    "CHIRPS_BASE",
    "CONUS_TILES",
    "MANUAL",
    "PRODUCTS",
    "REGISTRY_TO_FETCH",
    "FetchError",
    "ManualDownloadRequired",
    "MissingTokenError",
    "download",
    "download_s3",
    "fetch",
    "inputs_of",
    "resolve_token",
]

CHIRPS_BASE = "https://data.chc.ucsb.edu/products/CHIRPS-2.0/global_daily/tifs/p05"
CHIRPS3_BASE = "https://data.chc.ucsb.edu/products/CHIRPS/v3.0"
CHIRPS3_FLAVORS = ("rnl", "sat")
URS_URL = "https://urs.earthdata.nasa.gov"
URS_HOST = "urs.earthdata.nasa.gov"
CHUNK = 1 << 20
MAX_REDIRECTS = 10
YEARLY_LOOKBACK = 3  # years searched before the first day for a yearly product
S3_CREDENTIALS_TTL_S = 50 * 60  # the DAACs' temporary keys last one hour
AUTH_HOST_SUFFIXES = (".earthdatacloud.nasa.gov", ".earthdata.nasa.gov")
"""Hosts (over HTTPS) that may receive the bearer token after a redirect."""

CONUS_TILES = (
    "h08v04", "h08v05", "h08v06", "h09v04", "h09v05", "h09v06", "h10v04",
    "h10v05", "h10v06", "h11v04", "h11v05", "h12v04", "h12v05", "h13v04",
)  # fmt: skip
MANUAL = ("SoilGrids", "MERIT", "Koeppen")
CHIRPS_PRODUCTS = ("CHIRPS", "CHIRPS3")
PRODUCTS = (*ARCHIVE, *CHIRPS_PRODUCTS, *MANUAL)
REGISTRY_TO_FETCH: dict[str, str | None] = {
    "CHIRPS-2.0": "CHIRPS",
    "SoilGrids-2.0": "SoilGrids",
    "SoilGrids-2.0 (USDA triangle)": None,  # derived from SoilGrids sand and clay
    "MERIT-DEM": "MERIT",
    "Beck-KG-V1": "Koeppen",
}
"""The fetch name of each registry product (``models/variables.py``) whose name differs;
NASA products are fetched by their registry name (a short name of ``ARCHIVE``)."""

# File signatures: what a complete download must start with.
_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
MAGIC = {
    ".h5": (b"\x89HDF\r\n\x1a\n",),
    ".hdf": (b"\x0e\x03\x13\x01",),
    ".tif": _TIFF,
    ".cog": _TIFF,
    ".gz": (b"\x1f\x8b",),
}
# UMM-G checksum algorithms we can verify (the others are recorded as unchecked).
_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384",
           "SHA-512": "sha512"}  # fmt: skip
GRANULE_RE = re.compile(
    r"^(?P<short>[A-Z0-9]+)\.A(?P<year>\d{4})(?P<doy>\d{3})\.(?P<tile>h\d{2}v\d{2})\."
    r"(?P<version>\d{3})\.(?P<prod>\d{13})\.(?P<ext>hdf|h5)$"
)


class ManualDownloadRequired(SourceError):
    """The provider needs a manual step; the message lists it."""


def manual_steps(product: str, root: str | os.PathLike[str]) -> str:
    """How to get a product that cannot be fetched automatically, into ``root``."""
    r = Path(root)
    if product == "SoilGrids":
        lines = [
            "SoilGrids 2.0 (ISRIC) is a global 250 m VRT mosaic; crop it with GDAL, e.g. for "
            "CONUS:",
        ]
        for prop in ("sand", "clay", "phh2o"):
            out = r / "SoilGrids" / prop / f"{prop}_0-5cm_mean.tif"
            lines.append(
                "  gdal_translate -projwin -125 50 -66 24 -projwin_srs EPSG:4326 "
                "-co COMPRESS=DEFLATE -co TILED=YES "
                f"/vsicurl/https://files.isric.org/soilgrids/latest/data/{prop}/"
                f"{prop}_0-5cm_mean.vrt {out}"
            )
        return "\n".join(lines)
    if product == "MERIT":
        return "\n".join(
            [
                "MERIT DEM needs a registration form: "
                "https://hydro.iis.u-tokyo.ac.jp/~yamadai/MERIT_DEM/ (you receive a user name "
                "and password by e-mail).",
                "  Download the 30x30 degree packages covering the region (CONUS: "
                "dem_tif_n00w120, n00w090, n30w150, n30w120, n30w090),",
                f"  extract the 5x5 degree tiles (e.g. n30w100_dem.tif) into {r / 'MERIT_DEM'}/",
            ]
        )
    if product == "Koeppen":
        return "\n".join(
            [
                "Koeppen-Geiger (Beck et al. 2018): download Beck_KG_V1.zip from "
                "https://doi.org/10.6084/m9.figshare.6396959 (or www.gloh2o.org/koppen),",
                f"  extract Beck_KG_V1_present_0p0083.tif into {r / 'Koeppen'}/",
            ]
        )
    raise ValueError(product)


# -- token ----------------------------------------------------------------------------------
def _netrc_login(host: str) -> tuple[str, str] | None:
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    if not os.path.isfile(path):
        return None
    try:
        auth = netrc.netrc(path).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        raise FetchError(path, f"unreadable netrc: {exc}") from exc
    if auth is None or not auth[0] or not auth[2]:
        return None
    return auth[0], auth[2]


def resolve_token(
    token: str | None = None, *, session: Any = None, urs_url: str = URS_URL, what: str = ""
) -> str:
    """``token``, else ``$EARTHDATA_TOKEN``, else a token made from ``~/.netrc``'s login.

    The netrc path (``machine urs.earthdata.nasa.gov login U password P``; ``$NETRC``
    names another file) asks URS's ``POST /api/users/find_or_create_token`` with basic
    authentication. Nothing found: ``MissingTokenError`` before any network call.
    """
    if token:
        return token
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env
    login = _netrc_login(urlsplit(urs_url).hostname or URS_HOST)
    if login is None:
        return require_token(None, what or "NASA Earthdata")
    import requests

    sess = session if session is not None else requests.Session()
    url = urs_url.rstrip("/") + "/api/users/find_or_create_token"
    try:
        r = sess.post(url, auth=login, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise FetchError(url, f"cannot reach Earthdata Login: {exc}") from exc
    if r.status_code != 200:
        raise FetchError(
            url, f"HTTP {r.status_code} {r.reason}: the netrc login was refused by Earthdata Login"
        )
    try:
        tok = r.json().get("access_token")
    except (ValueError, AttributeError):
        tok = None
    if not isinstance(tok, str) or not tok:
        raise FetchError(url, "Earthdata Login answered without an access_token")
    return tok


# -- HTTP -----------------------------------------------------------------------------------
def _session(session: Any) -> Any:
    if session is not None:
        return session
    import requests

    return requests.Session()


def _auth_allowed(origin: str, target: str) -> bool:
    """May ``target`` (reached from ``origin`` by redirects) receive the bearer token?"""
    o, t = urlsplit(origin), urlsplit(target)
    if t.scheme == o.scheme and t.netloc == o.netloc:
        return True
    host = t.hostname or ""
    return t.scheme == "https" and (host.endswith(AUTH_HOST_SUFFIXES) or host == URS_HOST)


def _open(sess: Any, url: str, token: str | None, offset: int) -> Any:
    """GET ``url`` (from byte ``offset``), following redirects with the token policy."""
    base = {"Accept-Encoding": "identity"}  # byte offsets are of the stored file
    if offset:
        base["Range"] = f"bytes={offset}-"
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        headers = dict(base)
        if token and _auth_allowed(url, current):
            headers["Authorization"] = f"Bearer {token}"
        r = sess.get(current, headers=headers, stream=True, allow_redirects=False,
                     timeout=TIMEOUT_S)  # fmt: skip
        if r.status_code in (301, 302, 303, 307, 308) and r.headers.get("Location"):
            nxt = urljoin(current, r.headers["Location"])
            r.close()
            current = nxt
            continue
        return r
    raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")


class _Transient(Exception):
    """A failure worth another try (the message says what happened)."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _content_range_start(value: str | None) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-", value or "")
    return int(m[1]) if m else None


def _chunks(r: Any) -> Iterator[bytes]:
    """The body as it arrives: every byte received is written before a broken transfer
    raises (``iter_content`` drops the last partial chunk it was filling), so a resume
    starts exactly after them."""
    raw = r.raw
    if not hasattr(raw, "read1"):  # not urllib3 (a test double): whole chunks
        yield from r.iter_content(CHUNK)
        return
    raw.decode_content = True
    while chunk := raw.read1(CHUNK):
        yield chunk


def _attempt(sess: Any, url: str, part: Path, token: str | None) -> None:
    """One GET of ``url`` into ``part``, resuming after the bytes already there."""
    import requests
    import urllib3

    have = part.stat().st_size if part.exists() else 0
    try:
        r = _open(sess, url, token, have)
    except requests.RequestException as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    with r:
        if r.status_code == 416 and have:
            m = re.match(r"\s*bytes \*/(\d+)", r.headers.get("Content-Range", ""))
            if m is not None and int(m[1]) == have:  # every byte was there already
                return
            part.unlink()
            raise _Transient("range not satisfiable: restarting from the first byte")
        if r.status_code in RETRY_STATUS:
            raise _Transient(f"HTTP {r.status_code} {r.reason}", r.headers.get("Retry-After"))
        if r.status_code not in (200, 206):
            raise http_error(url, r.status_code, r.reason or "", token)
        mode = "wb"
        if r.status_code == 206:
            if _content_range_start(r.headers.get("Content-Range")) != have:
                part.unlink(missing_ok=True)
                raise _Transient(f"server resumed at {r.headers.get('Content-Range')!r}")
            mode = "ab"
        else:
            have = 0
        expected = r.headers.get("Content-Length")
        n = 0
        try:
            with open(part, mode) as f:
                for chunk in _chunks(r):
                    f.write(chunk)
                    n += len(chunk)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Transient(f"transfer broken after {have + n} bytes: {exc}") from exc
        if expected is not None and expected.isdigit() and n < int(expected):
            raise _Transient(f"transfer truncated at {have + n} of {have + int(expected)} bytes")


def _digest(path: Path, algorithm: str) -> str | None:
    """Hex digest of ``path`` by a UMM-G algorithm name, None when we cannot compute it."""
    name = algorithm.upper()
    if name == "ADLER-32":
        a = 1
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                a = zlib.adler32(block, a)
        return f"{a:08x}"
    if name not in _HASHES:
        return None
    h = hashlib.new(_HASHES[name])
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _check_magic(part: Path, suffix: str, url: str) -> None:
    sigs = MAGIC.get(suffix)
    if not sigs:
        return
    with open(part, "rb") as f:
        head = f.read(8)
    if not head.startswith(sigs):
        what = "an HTML page (a login form?)" if head.lstrip().startswith(b"<") else "other data"
        raise FetchError(url, f"server returned {what}, not a {suffix} file")


def _finish(
    part: Path,
    dest: Path,
    url: str,
    size: int | None,
    checksum: tuple[str, str] | None,
    gunzip: bool,
) -> None:
    """Check a complete ``part`` and move it to ``dest`` (decompressed when ``gunzip``)."""
    got = part.stat().st_size
    if size is not None and got != size:
        raise FetchError(url, f"downloaded {got} bytes, CMR lists {size}")
    if checksum is not None:
        digest = _digest(part, checksum[0])
        if digest is not None and digest != checksum[1].lower():
            raise FetchError(url, f"{checksum[0]} {digest} differs from CMR's {checksum[1]}")
    if not gunzip:
        _check_magic(part, dest.suffix, url)
        os.replace(part, dest)
        return
    _check_magic(part, ".gz", url)
    unzipped = part.with_name(part.name + "2")
    try:
        with gzip.open(part, "rb") as src, open(unzipped, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        _check_magic(unzipped, dest.suffix, url)
        os.replace(unzipped, dest)
    except (OSError, EOFError) as exc:
        raise FetchError(url, f"corrupt gzip: {exc}") from exc
    finally:
        unzipped.unlink(missing_ok=True)


def _part(dest: Path) -> Path:
    """This process's temporary name for ``dest`` (emptied: a leftover's bytes are unknown)."""
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    part.unlink(missing_ok=True)
    return part


def download(
    url: str,
    dest: Path,
    *,
    session: Any = None,
    token: str | None = None,
    gunzip: bool = False,
    size: int | None = None,
    checksum: tuple[str, str] | None = None,
    backoff: Backoff | None = None,
) -> bool:
    """Fetch ``url`` to ``dest`` atomically; False when ``dest`` already exists (skipped).

    ``size``/``checksum``: what CMR lists for the file (checked before the rename).
    """
    if dest.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part(dest)
    sess = _session(session)
    bo = backoff if backoff is not None else Backoff()
    try:
        for attempt in range(bo.tries):
            try:
                _attempt(sess, url, part, token)
                break
            except _Transient as exc:
                if attempt + 1 == bo.tries:
                    raise FetchError(url, f"failed after {bo.tries} tries: {exc}") from exc
                bo.wait(attempt, exc.retry_after)
        _finish(part, dest, url, size, checksum, gunzip)
    finally:
        part.unlink(missing_ok=True)
    return True


# -- direct S3 (inside us-west-2) -----------------------------------------------------------
def s3_credentials(
    endpoint: str, token: str, *, session: Any = None, backoff: Backoff | None = None
) -> dict[str, str]:
    """Temporary S3 keys from a DAAC's ``s3credentials`` endpoint (valid about one hour)."""
    import requests

    sess = _session(session)
    bo = backoff if backoff is not None else Backoff()
    last = ""
    for attempt in range(bo.tries):
        try:
            r = _open(sess, endpoint, token, 0)
        except requests.RequestException as exc:
            last = str(exc)
        else:
            with r:
                if r.status_code == 200:
                    try:
                        body = r.json()
                    except ValueError as exc:
                        raise FetchError(endpoint, "s3credentials answered non-JSON") from exc
                    keys = ("accessKeyId", "secretAccessKey", "sessionToken")
                    if not isinstance(body, dict) or not all(body.get(k) for k in keys):
                        raise FetchError(endpoint, f"s3credentials answer lacks {', '.join(keys)}")
                    return {k: str(body[k]) for k in (*keys, "expiration") if k in body}
                if r.status_code not in RETRY_STATUS:
                    raise http_error(endpoint, r.status_code, r.reason or "", token)
                last = f"HTTP {r.status_code} {r.reason}"
        if attempt + 1 < bo.tries:
            bo.wait(attempt)
    raise FetchError(endpoint, f"failed after {bo.tries} tries: {last}")


def download_s3(
    url: str,
    dest: Path,
    credentials: dict[str, str],
    *,
    endpoint_url: str | None = None,
    size: int | None = None,
    checksum: tuple[str, str] | None = None,
    backoff: Backoff | None = None,
) -> bool:
    """Copy ``s3://bucket/key`` to ``dest`` atomically with the DAAC's temporary keys.

    Works only inside us-west-2 for the real buckets; ``endpoint_url`` points at another
    S3-compatible server (tests). Retried and resumed like ``download``.
    """
    if dest.exists():
        return False
    try:
        import s3fs
    except ImportError as exc:
        raise FetchError(url, "direct S3 access needs s3fs: pip install 'smdown[cloud]'") from exc
    fs = s3fs.S3FileSystem(
        key=credentials["accessKeyId"],
        secret=credentials["secretAccessKey"],
        token=credentials.get("sessionToken"),
        endpoint_url=endpoint_url,
        client_kwargs={"region_name": "us-west-2"},
        skip_instance_cache=True,
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part(dest)
    bo = backoff if backoff is not None else Backoff()
    key = url.removeprefix("s3://")
    try:
        for attempt in range(bo.tries):
            have = part.stat().st_size if part.exists() else 0
            try:
                with fs.open(key, "rb", block_size=CHUNK) as src, open(part, "ab") as out:
                    src.seek(have)
                    shutil.copyfileobj(src, out, CHUNK)
                break
            except FileNotFoundError as exc:
                raise FetchError(url, "no such S3 object") from exc
            except PermissionError as exc:
                raise FetchError(
                    url, f"S3 refused the temporary credentials (outside us-west-2?): {exc}"
                ) from exc
            except OSError as exc:
                if attempt + 1 == bo.tries:
                    raise FetchError(url, f"failed after {bo.tries} tries: {exc}") from exc
                bo.wait(attempt)
        _finish(part, dest, url, size, checksum, False)
    finally:
        part.unlink(missing_ok=True)
    return True


# -- products -------------------------------------------------------------------------------
def inputs_of(family: str, mode: str) -> tuple[list[str], list[str]]:
    """What ``smdown fetch --inputs`` gets for ``family`` in ``mode``: (by date, manual).

    From the registry's products of that family and mode, in registry order, each once.
    """
    from models import variables

    dated: list[str] = []
    manual: list[str] = []
    for product in variables.products(mode, family).values():  # type: ignore[arg-type]
        name = REGISTRY_TO_FETCH.get(product, product)
        if name is None or product.startswith("derived:"):
            continue  # derived inputs (the extended set) are computed from fetched products
        if name not in PRODUCTS:
            raise ValueError(f"registry product {product!r} has no fetcher (fetch.PRODUCTS)")
        target = manual if name in MANUAL else dated
        if name not in target:
            target.append(name)
    return dated, manual


def _days(start: dt.date, end: dt.date) -> Iterable[dt.date]:
    for i in range((end - start).days + 1):
        yield start + dt.timedelta(days=i)


def _fetch_chirps(
    start: dt.date, end: dt.date, root: Path, base: str, sess: Any, bo: Backoff | None
) -> list[Path]:
    out = []
    for d in _days(start, end):
        name = f"chirps-v2.0.{d:%Y.%m.%d}.tif"
        dest = root / "CHIRPS/global_daily/tifs/p05" / f"{d:%Y}" / name
        if dest.with_name(name + ".gz").exists():
            out.append(dest.with_name(name + ".gz"))
            continue
        download(f"{base}/{d:%Y}/{name}.gz", dest, session=sess, gunzip=True, backoff=bo)
        out.append(dest)
    return out


def chirps3_url(
    day: dt.date, base: str = CHIRPS3_BASE, flavor: str = "rnl", cog: bool = False
) -> str:
    """URL of a CHIRPS v3 daily final file (``rnl``: ERA5-disaggregated, ``sat``: IMERG)."""
    name = f"chirps-v3.0.{flavor}.{day:%Y.%m.%d}.{'cog' if cog else 'tif'}"
    return f"{base.rstrip('/')}/daily/final/{flavor}/{'cogs/' if cog else ''}{day:%Y}/{name}"


def _fetch_chirps3(
    start: dt.date,
    end: dt.date,
    root: Path,
    base: str,
    sess: Any,
    bo: Backoff | None,
    flavor: str,
    cog: bool,
) -> list[Path]:
    if flavor not in CHIRPS3_FLAVORS:
        raise ValueError(f"CHIRPS v3 flavor {flavor!r}: one of {', '.join(CHIRPS3_FLAVORS)}")
    out = []
    for d in _days(start, end):
        url = chirps3_url(d, base, flavor, cog)
        name = url.rsplit("/", 1)[-1]
        dest = root / "CHIRPS/v3.0/daily/final" / flavor / f"{d:%Y}" / name
        download(url, dest, session=sess, backoff=bo)
        out.append(dest)
    return out


def _basename(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _pick(
    coll: cmr.Collection,
    granules: Iterable[cmr.Granule],
    start: dt.date,
    end: dt.date,
    wanted: set[str],
    s3: bool,
) -> list[tuple[dt.date, str, cmr.Granule]]:
    """The data link of the newest production per (day, tile), or per day for SMAP."""
    best: dict[tuple[dt.date, str], tuple[Any, str, cmr.Granule]] = {}
    first = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    for g in granules:
        if g.end is not None and g.end <= first:  # CMR's overlap includes touching ends
            continue
        for url in g.s3 if s3 else g.https:
            name = _basename(url)
            if not name.endswith(coll.extension):
                continue
            if coll.tiled:
                m = GRANULE_RE.match(name)
                if m is None or m["short"] != coll.short_name or m["tile"] not in wanted:
                    continue
                day = dt.date(int(m["year"]), 1, 1) + dt.timedelta(days=int(m["doy"]) - 1)
                key, rank = (day, m["tile"]), m["prod"]
                if day > end:
                    continue
            else:
                sg = parse_smap_name(name)
                if sg is None or not start <= sg.date <= end:
                    continue
                key, rank = (sg.date, ""), (sg.crid, sg.number)
            if key not in best or rank > best[key][0]:
                best[key] = (rank, url, g)
    return [(k[0], url, g) for k, (_r, url, g) in sorted(best.items())]


def _from_latest_year(
    picks: list[tuple[dt.date, str, cmr.Granule]], start: dt.date
) -> list[tuple[dt.date, str, cmr.Granule]]:
    """Per tile, the latest year on or before ``start``'s year and every year after it."""
    by_tile: dict[str, list[tuple[dt.date, str, cmr.Granule]]] = {}
    for p in picks:
        m = GRANULE_RE.match(_basename(p[1]))
        by_tile.setdefault(m["tile"] if m else "", []).append(p)
    keep = []
    for items in by_tile.values():
        floor = max((d for d, _u, _g in items if d.year <= start.year), default=None)
        keep += [p for p in items if floor is None or p[0] >= floor]
    return sorted(keep, key=lambda p: (p[0], p[1]))


def _fetch_nasa(
    short: str,
    start: dt.date,
    end: dt.date,
    root: Path,
    *,
    sess: Any,
    token: str | None,
    tiles: Iterable[str],
    cmr_url: str,
    urs_url: str,
    access: str,
    s3_endpoint_url: str | None,
    bo: Backoff | None,
) -> list[Path]:
    coll = ARCHIVE[short]
    tok = resolve_token(token, session=sess, urs_url=urs_url, what=f"{coll.label} (NASA Earthdata)")
    wanted = {t.lower() for t in tiles}
    bbox = cmr.tiles_bbox(sorted(wanted)) if coll.tiled else None
    # A yearly product (land cover) lags its year by more than a year: a day is served by
    # the latest year up to it, so look back a few years and keep that one per tile.
    first = dt.date(start.year - YEARLY_LOOKBACK, 1, 1) if coll.yearly else start
    granules = cmr.search(
        coll, first, end, bbox=bbox, token=tok, session=sess, url=cmr_url, backoff=bo
    )
    picks = _pick(coll, granules, first, end, wanted, access == "s3")
    if coll.yearly:
        picks = _from_latest_year(picks, start)
    if not picks:
        where = f" on tiles {', '.join(sorted(wanted))}" if coll.tiled else ""
        note = (
            f" ({short}: not confirmed as released when smdown's archive table was written)"
            if short in cmr.UNCONFIRMED
            else ""
        )
        link = "s3://" if access == "s3" else "HTTPS"
        raise FetchError(
            cmr_url,
            f"CMR lists no {coll.label} granule with an {link} data link for "
            f"{start}..{end}{where} ({len(granules)} granule(s) found){note}",
        )
    creds: dict[str, str] | None = None
    creds_at = 0.0
    out = []
    for day, url, g in picks:
        dest = root / coll.folder / coll.label / f"{day:%Y.%m.%d}" / _basename(url)
        info = g.file(url)
        size, checksum = (info.size, info.checksum) if info else (None, None)
        if access == "s3":
            stale = time.monotonic() - creds_at > S3_CREDENTIALS_TTL_S
            if (creds is None or stale) and not dest.exists():
                creds = s3_credentials(coll.s3_credentials, tok, session=sess, backoff=bo)
                creds_at = time.monotonic()
            if creds is not None:
                download_s3(url, dest, creds, endpoint_url=s3_endpoint_url, size=size,
                            checksum=checksum, backoff=bo)  # fmt: skip
        else:
            download(url, dest, session=sess, token=tok, size=size, checksum=checksum, backoff=bo)
        out.append(dest)
    return out


def fetch(
    product: str,
    start: dt.date,
    end: dt.date,
    root: str | os.PathLike[str],
    *,
    base_url: str | None = None,
    token: str | None = None,
    session: Any = None,
    tiles: Iterable[str] | None = None,
    cmr_url: str | None = None,
    urs_url: str = URS_URL,
    access: str = "https",
    s3_endpoint_url: str | None = None,
    flavor: str = "rnl",
    cog: bool = False,
    backoff: Backoff | None = None,
) -> list[Path]:
    """Download ``product`` for [start, end] under ``root``; the paths of the complete files.

    ``base_url`` replaces the CHIRPS address (a mirror, or a test server); ``cmr_url`` the
    CMR granule search of the NASA products; ``tiles`` the sinusoidal tiles (default
    ``CONUS_TILES``); ``access``: ``"https"`` (anywhere) or ``"s3"`` (inside us-west-2;
    ``s3_endpoint_url`` for another S3-compatible server); ``flavor``/``cog``: CHIRPS v3
    daily ``rnl`` or ``sat``, GeoTIFF or COG.
    """
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}; one of {', '.join(PRODUCTS)}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if access not in ("https", "s3"):
        raise ValueError(f"access {access!r}: 'https' or 's3'")
    r = Path(root)
    if product in MANUAL:
        raise ManualDownloadRequired(product, "manual download:\n" + manual_steps(product, r))
    sess = _session(session)
    if product == "CHIRPS":
        return _fetch_chirps(start, end, r, (base_url or CHIRPS_BASE).rstrip("/"), sess, backoff)
    if product == "CHIRPS3":
        base = (base_url or CHIRPS3_BASE).rstrip("/")
        return _fetch_chirps3(start, end, r, base, sess, backoff, flavor, cog)
    if base_url is not None:
        raise ValueError(f"{product} is found through CMR: give cmr_url, not base_url")
    return _fetch_nasa(
        product,
        start,
        end,
        r,
        sess=sess,
        token=token,
        tiles=tiles if tiles is not None else CONUS_TILES,
        cmr_url=cmr_url or cmr.CMR_URL,
        urs_url=urs_url,
        access=access,
        s3_endpoint_url=s3_endpoint_url,
        bo=backoff,
    )
