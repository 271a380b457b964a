"""Fetchers against a local HTTP server on 127.0.0.1 serving fixture files (never the internet)."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from _writers_sources import REGION, write_chirps

from pipeline.sources.chirps import ChirpsSource, index_files, product_of
from pipeline.sources.cmr import Backoff
from pipeline.sources.fetch import FetchError, ManualDownloadRequired, chirps3_url, download, fetch

NO_WAIT = Backoff(tries=2, sleep=lambda s: None)


class _Handler(SimpleHTTPRequestHandler):
    """Static files; /broken/* lies about its length; /html/* is a login page."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/broken/"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"x" * 1000)  # then the connection closes
            return
        if self.path.startswith("/html/"):
            body = b"<html><body>Earthdata Login</body></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_Handler, directory=str(served))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


DAYS = [dt.date(2020, 6, 1), dt.date(2020, 6, 2)]


def _gz(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(gzip.compress(src.read_bytes()))


def test_chirps_fetch_layout_and_skip(server: tuple[str, Path], tmp_path: Path) -> None:
    url, served = server
    made = tmp_path / "made"
    for i, d in enumerate(DAYS):
        tif = write_chirps(made, d, float(i + 1))
        _gz(tif, served / "chirps" / f"{d:%Y}" / f"{tif.name}.gz")
    root = tmp_path / "root"
    got = fetch("CHIRPS", DAYS[0], DAYS[1], root, base_url=f"{url}/chirps")
    expect = root / "CHIRPS/global_daily/tifs/p05/2020/chirps-v2.0.2020.06.02.tif"
    assert (
        got[1] == expect and expect.read_bytes() == (made / expect.relative_to(root)).read_bytes()
    )
    nr = ChirpsSource(root / "CHIRPS").native(DAYS[1], REGION)
    assert np.nanmax(nr.data) == 2.0
    # Existing complete files are skipped: the server can go away for them.
    (served / "chirps").rename(served / "gone")
    assert fetch("CHIRPS", DAYS[0], DAYS[1], root, base_url=f"{url}/chirps") == got
    with pytest.raises(FetchError) as err:
        fetch("CHIRPS", DAYS[0], DAYS[1] + dt.timedelta(days=1), root, base_url=f"{url}/chirps")
    assert f"{url}/chirps/2020/chirps-v2.0.2020.06.03.tif.gz" in str(err.value)
    assert "404" in str(err.value)
    assert not list(root.rglob("*.part*"))


def _v3(made: Path, day: dt.date, mm: float, name: str) -> bytes:
    """A CHIRPS v3 daily file: the same GeoTIFF format as 2.0 under the v3 name."""
    return write_chirps(made / name, day, mm).read_bytes()


def test_chirps3_fetch_layout_cog_and_reader(server: tuple[str, Path], tmp_path: Path) -> None:
    url, served = server
    d = DAYS[0]
    tif = served / "v3/daily/final/rnl/2020/chirps-v3.0.rnl.2020.06.01.tif"
    cog = served / "v3/daily/final/rnl/cogs/2020/chirps-v3.0.rnl.2020.06.01.cog"
    for path, mm in ((tif, 3.0), (cog, 4.0)):
        path.parent.mkdir(parents=True)
        path.write_bytes(_v3(tmp_path / "made", d, mm, path.name))
    root = tmp_path / "root"
    (got,) = fetch("CHIRPS3", d, d, root, base_url=f"{url}/v3", backoff=NO_WAIT)
    assert got == root / "CHIRPS/v3.0/daily/final/rnl/2020/chirps-v3.0.rnl.2020.06.01.tif"
    nr = ChirpsSource(root / "CHIRPS").native(d, REGION)
    assert np.nanmax(nr.data) == 3.0 and nr.provenance.product == "CHIRPS-3.0-rnl"
    (got,) = fetch("CHIRPS3", d, d, root / "c", base_url=f"{url}/v3", cog=True, backoff=NO_WAIT)
    assert got.name.endswith(".cog") and got.read_bytes() == cog.read_bytes()
    assert np.nanmax(ChirpsSource(root / "c").native(d, REGION).data) == 4.0
    with pytest.raises(FetchError) as err:  # sat files are not served here
        fetch("CHIRPS3", d, d, root, base_url=f"{url}/v3", flavor="sat", backoff=NO_WAIT)
    assert f"{url}/v3/daily/final/sat/2020/chirps-v3.0.sat.2020.06.01.tif" in str(err.value)


def test_chirps3_urls_follow_the_chc_layout() -> None:
    base = "https://data.chc.ucsb.edu/products/CHIRPS/v3.0/daily/final"
    assert chirps3_url(dt.date(2026, 1, 31)) == (f"{base}/rnl/2026/chirps-v3.0.rnl.2026.01.31.tif")
    assert chirps3_url(dt.date(2025, 1, 1), cog=True) == (
        f"{base}/rnl/cogs/2025/chirps-v3.0.rnl.2025.01.01.cog"
    )
    assert chirps3_url(dt.date(2020, 1, 5), flavor="sat").endswith(
        "/sat/2020/chirps-v3.0.sat.2020.01.05.tif"
    )


def test_chirps_versions_one_file_per_day() -> None:
    day = dt.date(2020, 6, 1)
    v2 = "/a/chirps-v2.0.2020.06.01.tif"
    rnl = "/b/chirps-v3.0.rnl.2020.06.01.tif"
    sat = "/b/chirps-v3.0.sat.2020.06.01.cog"
    nc3 = "/b/chirps-v3.0.rnl.2020.days_p05.nc"
    files = [sat, rnl, v2, nc3]
    assert index_files(files).daily[day] == v2  # 2.0 first: what the models were trained on
    assert index_files(files, "3.0").daily[day] == rnl
    assert index_files([sat], "3.0").daily[day] == sat
    assert index_files(files, "2.0").yearly == {}
    assert index_files(files).yearly[2020] == nc3
    assert [product_of(p) for p in (v2, rnl, sat, nc3)] == [
        "CHIRPS-2.0", "CHIRPS-3.0-rnl", "CHIRPS-3.0-sat", "CHIRPS-3.0-rnl"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="version"):
        index_files(files, "4.0")


def test_failed_download_leaves_nothing(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    dest = tmp_path / "out" / "chirps-v2.0.2020.06.01.tif"
    with pytest.raises(FetchError) as err:
        download(f"{url}/broken/x.tif.gz", dest, gunzip=True, backoff=NO_WAIT)
    assert f"{url}/broken/x.tif.gz" in str(err.value)
    assert not dest.exists() and not list(dest.parent.iterdir())


def test_login_page_is_not_saved_as_data(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    dest = tmp_path / "out" / "SMAP_L3_SM_P_E_20200601_R19240_001.h5"
    with pytest.raises(FetchError) as err:
        download(f"{url}/html/granule.h5", dest, backoff=NO_WAIT)
    assert "HTML" in str(err.value) and not dest.exists()
    assert not list(dest.parent.iterdir())


@pytest.mark.parametrize("product", ["SoilGrids", "MERIT", "Koeppen"])
def test_manual_products_explain_the_steps(product: str, tmp_path: Path) -> None:
    with pytest.raises(ManualDownloadRequired) as err:
        fetch(product, DAYS[0], DAYS[0], tmp_path)
    text = str(err.value)
    assert "http" in text and str(tmp_path) in text
    if product == "MERIT":
        assert "registration" in text and "MERIT_DEM" in text


def test_unknown_product() -> None:
    with pytest.raises(ValueError, match="unknown product"):
        fetch("MOD99", DAYS[0], DAYS[0], ".")
