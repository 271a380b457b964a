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
from _writers_sources import REGION, write_chirps, write_smap

from pipeline.sources.chirps import ChirpsSource
from pipeline.sources.fetch import FetchError, ManualDownloadRequired, download, fetch
from pipeline.sources.smap import SmapSource

TOKEN = "test-token-123"
HDF4_MAGIC = b"\x0e\x03\x13\x01"


class _Handler(SimpleHTTPRequestHandler):
    """Static files; /SMAP and /MOLT need the bearer token; /broken/* lies about its length."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith(("/SMAP", "/MOLT")):
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_error(401, "Unauthorized")
                return
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


def test_smap_fetch_newest_release_with_token(server: tuple[str, Path], tmp_path: Path) -> None:
    url, served = server
    made = tmp_path / "made"
    old = write_smap(made, DAYS[0], 0.1, 0.1, crid=19240, number=1)
    new = write_smap(made, DAYS[0], 0.2, 0.2, crid=19240, number=2)
    folder = served / "SMAP/SPL3SMP_E.006/2020.06.01"
    folder.mkdir(parents=True)
    for f in (old, new):
        (folder / f.name).write_bytes(f.read_bytes())
    root = tmp_path / "root"
    base = f"{url}/SMAP/SPL3SMP_E.006"
    with pytest.raises(FetchError) as err:
        fetch("SPL3SMP_E", DAYS[0], DAYS[0], root, base_url=base, token="")
    assert "401" in str(err.value) and "EARTHDATA_TOKEN" in str(err.value)
    assert f"{base}/2020.06.01/" in str(err.value)
    (got,) = fetch("SPL3SMP_E", DAYS[0], DAYS[0], root, base_url=base, token=TOKEN)
    assert got.name == new.name and got.parent.name == "2020.06.01"
    nr = SmapSource(root / "SMAP").native(DAYS[0], REGION)
    assert np.nanmax(nr.data) == pytest.approx(0.2)


def test_token_from_environment(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, served = server
    folder = served / "MOLT/MOD11A2.061/2020.06.01"
    folder.mkdir(parents=True)
    names = [
        "MOD11A2.A2020153.h10v05.061.2020162045356.hdf",
        "MOD11A2.A2020153.h10v05.061.2020170000000.hdf",  # reprocessed: newer
        "MOD11A2.A2020153.h30v10.061.2020162045356.hdf",  # not a wanted tile
    ]
    for n in names:
        (folder / n).write_bytes(HDF4_MAGIC + n.encode())
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    got = fetch(
        "MOD11A2",
        DAYS[0],
        DAYS[0] + dt.timedelta(days=3),
        tmp_path / "root",
        base_url=url,
        tiles=["h10v05", "h11v05"],
    )
    assert [g.name for g in got] == [names[1]]
    assert got[0].relative_to(tmp_path / "root").parts[:3] == ("MODIS", "MOD11A2.061", "2020.06.01")


def test_failed_download_leaves_nothing(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    dest = tmp_path / "out" / "chirps-v2.0.2020.06.01.tif"
    with pytest.raises(FetchError) as err:
        download(f"{url}/broken/x.tif.gz", dest, gunzip=True)
    assert f"{url}/broken/x.tif.gz" in str(err.value)
    assert not dest.exists() and not list(dest.parent.iterdir())


def test_login_page_is_not_saved_as_data(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    dest = tmp_path / "out" / "SMAP_L3_SM_P_E_20200601_R19240_001.h5"
    with pytest.raises(FetchError) as err:
        download(f"{url}/html/granule.h5", dest)
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
