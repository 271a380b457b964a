"""Download products into the provider layout under the sources root (docs/data-layout.md).

- ``SPL3SMP_E``: NSIDC DAAC HTTPS (``<base>/YYYY.MM.DD/`` listing), newest release of
  each day, Earthdata bearer token from ``token`` or ``$EARTHDATA_TOKEN``.
- MODIS (``MOD11A2``, ``MOD21A1D``, ``MOD13A1``, ``MOD13Q1``, ``MOD16A2``, ``MCD12Q1``):
  LP DAAC HTTPS (``<base>/MOLT|MOTA/<SHORT>.061/YYYY.MM.DD/``), HDF4 granules of the
  configured tiles, the same token.
- ``CHIRPS``: UCSB plain HTTP, one ``.tif.gz`` per day, stored decompressed.
- ``SoilGrids``, ``MERIT``, ``Koeppen``: ``ManualDownloadRequired`` with the steps
  (MERIT needs a registration form; the others are large global mosaics best cropped
  with GDAL).

A file is written under a temporary ``.part`` name and renamed only when complete
and of the right format (an HTML login page served with status 200 is refused), so
a failed download leaves nothing half-written; existing complete files are skipped.
Every HTTP problem raises ``FetchError`` naming the URL. The optional ``earthaccess``
package is not needed: plain HTTPS with a bearer token is what it does underneath.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import shutil
from collections.abc import Iterable
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pipeline.errors import SourceError
from pipeline.sources import modis as modis_mod
from pipeline.sources.padding import YEARLY, composite_starts
from pipeline.sources.smap import parse_name as parse_smap_name

NSIDC_BASE = "https://n5eil01u.ecs.nsidc.org/SMAP/SPL3SMP_E.006"
LPDAAC_BASE = "https://e4ftl01.cr.usgs.gov"
CHIRPS_BASE = "https://data.chc.ucsb.edu/products/CHIRPS-2.0/global_daily/tifs/p05"
TOKEN_ENV = "EARTHDATA_TOKEN"
TIMEOUT_S = 120.0
CHUNK = 1 << 20

MODIS_FOLDER = {
    "MOD11A2": "MOLT",
    "MOD21A1D": "MOLT",
    "MOD13A1": "MOLT",
    "MOD13Q1": "MOLT",
    "MOD16A2": "MOLT",
    "MCD12Q1": "MOTA",
}
CONUS_TILES = (
    "h08v04", "h08v05", "h08v06", "h09v04", "h09v05", "h09v06", "h10v04",
    "h10v05", "h10v06", "h11v04", "h11v05", "h12v04", "h12v05", "h13v04",
)  # fmt: skip
MANUAL = ("SoilGrids", "MERIT", "Koeppen")
PRODUCTS = ("SPL3SMP_E", *MODIS_FOLDER, "CHIRPS", *MANUAL)

# File signatures: what a complete download must start with.
MAGIC = {
    ".h5": (b"\x89HDF\r\n\x1a\n",),
    ".hdf": (b"\x0e\x03\x13\x01",),
    ".tif": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    ".gz": (b"\x1f\x8b",),
}


class FetchError(SourceError):
    """A download failed; ``path`` is the URL."""


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


# -- HTTP -----------------------------------------------------------------------------------
def _session(session: Any) -> Any:
    if session is not None:
        return session
    import requests

    return requests.Session()


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _http_error(url: str, status: int, reason: str, token: str | None) -> FetchError:
    hint = ""
    if status in (401, 403):
        hint = (
            f"; set ${TOKEN_ENV} to an Earthdata Login token (urs.earthdata.nasa.gov, "
            "'Generate Token')"
            if not token
            else "; the Earthdata token was refused (expired?)"
        )
    return FetchError(url, f"HTTP {status} {reason}{hint}")


def _listing(session: Any, url: str, token: str | None) -> list[str]:
    """File names linked from an HTML directory listing."""
    import requests

    try:
        r = session.get(url, headers=_headers(token), timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise FetchError(url, f"cannot list directory: {exc}") from exc
    if r.status_code != 200:
        raise _http_error(url, r.status_code, r.reason, token)
    names = []
    for href in re.findall(r'href\s*=\s*"([^"]+)"', r.text, flags=re.I):
        name = unquote(unescape(href)).rstrip("/").rsplit("/", 1)[-1]
        if name and name not in names:
            names.append(name)
    return names


def _check_magic(part: Path, suffix: str, url: str) -> None:
    sigs = MAGIC.get(suffix)
    if not sigs:
        return
    with open(part, "rb") as f:
        head = f.read(8)
    if not head.startswith(sigs):
        what = "an HTML page (a login form?)" if head.lstrip().startswith(b"<") else "other data"
        raise FetchError(url, f"server returned {what}, not a {suffix} file")


def download(
    url: str,
    dest: Path,
    *,
    session: Any = None,
    token: str | None = None,
    gunzip: bool = False,
) -> bool:
    """Fetch ``url`` to ``dest`` atomically; False when ``dest`` already exists (skipped)."""
    import requests

    if dest.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    unzipped = dest.with_name(dest.name + ".part2")
    sess = _session(session)
    try:
        try:
            with sess.get(url, headers=_headers(token), stream=True, timeout=TIMEOUT_S) as r:
                if r.status_code != 200:
                    raise _http_error(url, r.status_code, r.reason, token)
                expected = r.headers.get("Content-Length")
                n = 0
                with open(part, "wb") as f:
                    for chunk in r.iter_content(CHUNK):
                        f.write(chunk)
                        n += len(chunk)
            if expected is not None and n != int(expected):
                raise FetchError(url, f"incomplete download: {n} of {expected} bytes")
        except requests.RequestException as exc:
            raise FetchError(url, f"download failed: {exc}") from exc
        if gunzip:
            _check_magic(part, ".gz", url)
            try:
                with gzip.open(part, "rb") as src, open(unzipped, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
            except (OSError, EOFError) as exc:
                raise FetchError(url, f"corrupt gzip: {exc}") from exc
            _check_magic(unzipped, dest.suffix, url)
            os.replace(unzipped, dest)
        else:
            _check_magic(part, dest.suffix, url)
            os.replace(part, dest)
    finally:
        for p in (part, unzipped):
            if p.exists():
                p.unlink()
    return True


# -- products -------------------------------------------------------------------------------
def _days(start: dt.date, end: dt.date) -> Iterable[dt.date]:
    for i in range((end - start).days + 1):
        yield start + dt.timedelta(days=i)


def _fetch_chirps(start: dt.date, end: dt.date, root: Path, base: str, sess: Any) -> list[Path]:
    out = []
    for d in _days(start, end):
        name = f"chirps-v2.0.{d:%Y.%m.%d}.tif"
        dest = root / "CHIRPS/global_daily/tifs/p05" / f"{d:%Y}" / name
        if dest.with_name(name + ".gz").exists():
            out.append(dest.with_name(name + ".gz"))
            continue
        download(f"{base}/{d:%Y}/{name}.gz", dest, session=sess, gunzip=True)
        out.append(dest)
    return out


def _fetch_smap(
    start: dt.date, end: dt.date, root: Path, base: str, sess: Any, token: str | None
) -> list[Path]:
    out = []
    for d in _days(start, end):
        folder = f"{base}/{d:%Y.%m.%d}/"
        granules = [g for n in _listing(sess, folder, token) if (g := parse_smap_name(n))]
        granules = [g for g in granules if g.date == d]
        if not granules:
            raise FetchError(folder, f"no SPL3SMP_E granule listed for {d}")
        best = max(granules)
        dest = root / "SMAP" / "SPL3SMP_E.006" / f"{d:%Y.%m.%d}" / best.path
        download(folder + best.path, dest, session=sess, token=token)
        out.append(dest)
    return out


def _fetch_modis(
    short: str,
    start: dt.date,
    end: dt.date,
    root: Path,
    base: str,
    sess: Any,
    token: str | None,
    tiles: Iterable[str],
) -> list[Path]:
    prod = modis_mod.PRODUCTS[short]
    wanted = {t.lower() for t in tiles}
    if prod.period_days >= YEARLY:
        starts = [dt.date(y, 1, 1) for y in range(start.year, end.year + 1)]
    else:
        starts = composite_starts(start, end, prod.period_days)
    out = []
    for s in starts:
        folder = f"{base}/{MODIS_FOLDER[short]}/{short}.061/{s:%Y.%m.%d}/"
        newest: dict[str, tuple[str, str]] = {}
        for name in _listing(sess, folder, token):
            m = modis_mod.FILENAME_RE.match(name)
            if m is None or m["ext"] != "hdf" or m["short"] != short or m["layer"]:
                continue
            tile = f"h{m['h']}v{m['v']}"
            if tile in wanted and (tile not in newest or m["prod"] > newest[tile][0]):
                newest[tile] = (m["prod"], name)
        if not newest:
            raise FetchError(folder, f"none of the tiles {sorted(wanted)} is listed")
        for _prod, name in sorted(newest.values()):
            dest = root / "MODIS" / f"{short}.061" / f"{s:%Y.%m.%d}" / name
            download(folder + name, dest, session=sess, token=token)
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
) -> list[Path]:
    """Download ``product`` for [start, end] under ``root``; the paths of the complete files.

    ``base_url`` replaces the provider's address (a mirror, or a test server);
    ``tiles`` the MODIS tiles (default ``CONUS_TILES``).
    """
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}; one of {', '.join(PRODUCTS)}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    r = Path(root)
    if product in MANUAL:
        raise ManualDownloadRequired(product, "manual download:\n" + manual_steps(product, r))
    sess = _session(session)
    tok = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    if product == "CHIRPS":
        return _fetch_chirps(start, end, r, (base_url or CHIRPS_BASE).rstrip("/"), sess)
    if product == "SPL3SMP_E":
        return _fetch_smap(start, end, r, (base_url or NSIDC_BASE).rstrip("/"), sess, tok)
    return _fetch_modis(
        product,
        start,
        end,
        r,
        (base_url or LPDAAC_BASE).rstrip("/"),
        sess,
        tok,
        tiles if tiles is not None else CONUS_TILES,
    )
