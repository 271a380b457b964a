"""CMR discovery and Earthdata Cloud downloads against the local emulator (tests/_earthdata.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _earthdata import TOKEN, Earthdata, serve, tile_bbox
from _writers_sources import REGION, write_chirps, write_smap

from models import variables
from pipeline.cli import main
from pipeline.sources import cmr
from pipeline.sources import fetch as fetch_mod
from pipeline.sources.fetch import (
    ARCHIVE,
    FetchError,
    MissingTokenError,
    download,
    fetch,
    resolve_token,
)
from pipeline.sources.smap import SmapSource

HDF4 = b"\x0e\x03\x13\x01"
HDF5 = b"\x89HDF\r\n\x1a\n"
DAY = dt.date(2024, 6, 1)


def _no_wait(tries: int = 4) -> cmr.Backoff:
    """Backoff that records its waits instead of sleeping (rng 1.0: the full exponential)."""
    return cmr.Backoff(tries=tries, sleep=lambda s: None, rng=lambda: 1.0)


@pytest.fixture
def ed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Earthdata]:
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with serve() as state:
        yield state


def _cmr(ed: Earthdata) -> str:
    return f"{ed.data_url}/search/granules.umm_json"


def _tiled(short: str, version: str, day: dt.date, tile: str, prod: str) -> str:
    ext = "hdf" if version == "061" else "h5"
    return f"{short}.A{day:%Y%j}.{tile}.{version}.{prod}.{ext}"


def _payload(name: str) -> bytes:
    magic = HDF4 if name.endswith(".hdf") else HDF5
    return magic + hashlib.sha256(name.encode()).digest() * 64


def _publish(ed: Earthdata, short: str, day: dt.date, tile: str, prod: str, days: int = 1) -> str:
    coll = ARCHIVE[short]
    name = _tiled(short, coll.version, day, tile, prod)
    ed.add(short, coll.version, name, day, _payload(name), bbox=tile_bbox(tile), days=days)
    return name


# -- discovery ------------------------------------------------------------------------------
def test_search_pages_with_cmr_search_after(ed: Earthdata) -> None:
    names = [_publish(ed, "VNP21A1D", DAY + dt.timedelta(days=i), "h10v05", "2024170000000")
             for i in range(5)]  # fmt: skip
    got = cmr.search(
        ARCHIVE["VNP21A1D"], DAY, DAY + dt.timedelta(days=9), token=TOKEN,
        url=_cmr(ed), page_size=2, backoff=_no_wait(),
    )  # fmt: skip
    assert [g.https[0].rsplit("/", 1)[-1] for g in got] == names
    searches = [r for r in ed.log if r.path.startswith("/search/")]
    assert len(searches) == 3  # 2 + 2 + 1: the hits are reached, no empty fourth page
    assert "CMR-Search-After" not in searches[0].headers
    assert all("CMR-Search-After" in r.headers for r in searches[1:])
    assert all("page_num" not in r.path for r in searches)
    q = searches[0].path
    assert "short_name=VNP21A1D" in q and "version=002" in q and "provider=LPCLOUD" in q
    assert "temporal=2024-06-01T00%3A00%3A00Z%2C2024-06-10T23%3A59%3A59Z" in q
    g = got[0]
    assert g.s3[0].startswith("s3://lp-prod-protected/VNP21A1D.002/")
    assert len(g.https) == 2  # the .h5 and the .qa GET DATA links; the rest ignored
    info = g.file(g.https[0])
    assert info is not None and info.size == len(_payload(names[0]))
    assert info.checksum == ("MD5", hashlib.md5(_payload(names[0])).hexdigest())


def test_search_temporal_and_bbox_filters(ed: Earthdata) -> None:
    may24, jun9 = dt.date(2024, 5, 24), dt.date(2024, 6, 9)
    _publish(ed, "MOD11A2", may24, "h10v05", "2024160000000", days=8)  # to May 31: overlaps
    _publish(ed, "MOD11A2", jun9, "h10v05", "2024170000000", days=8)  # after the range
    _publish(ed, "MOD11A2", may24, "h30v10", "2024160000000", days=8)  # Australia
    bbox = cmr.tiles_bbox(["h10v05"])
    got = cmr.search(ARCHIVE["MOD11A2"], dt.date(2024, 5, 30), DAY, bbox=bbox,
                     url=_cmr(ed), backoff=_no_wait())  # fmt: skip
    assert [g.ur for g in got] == ["MOD11A2.A2024145.h10v05.061.2024160000000"]


def test_tiles_bbox_known_values() -> None:
    # h10v05 spans 30..40 N; its west edge is at 104.4 W (40 N), its east at 80.8 W (30 N).
    w, s, e, n = cmr.tiles_bbox(["h10v05"])
    assert (s, n) == (30.0, 40.0)
    assert w == pytest.approx(-104.4326, abs=1e-3) and e == pytest.approx(-80.8290, abs=1e-3)
    assert cmr.tiles_bbox(["h10v05", "h11v05"])[2] == pytest.approx(-69.282, abs=1e-3)


def test_search_empty_and_cmr_errors(ed: Earthdata) -> None:
    assert cmr.search(ARCHIVE["VJ113A1"], DAY, DAY, url=_cmr(ed), backoff=_no_wait()) == []
    with pytest.raises(FetchError) as err:
        cmr.search(ARCHIVE["VJ113A1"], DAY, DAY, url=_cmr(ed), page_size=5000,
                   backoff=_no_wait())  # fmt: skip
    msg = str(err.value)
    assert "HTTP 400" in msg and "between 0 and 2000" in msg and "\n" not in msg


def test_search_retries_a_503_with_backoff(ed: Earthdata, monkeypatch: pytest.MonkeyPatch) -> None:
    _publish(ed, "VNP13A1", DAY, "h10v05", "2024170000000")
    real = ed.search
    calls: list[int] = []

    def flaky(query: str, headers: dict[str, str]) -> tuple[int, dict[str, str], object]:
        calls.append(1)
        if len(calls) < 3:
            return 503, {}, {"errors": ["overloaded"]}
        return real(query, headers)

    monkeypatch.setattr(ed, "search", flaky)
    bo = _no_wait()
    (g,) = cmr.search(ARCHIVE["VNP13A1"], DAY, DAY, url=_cmr(ed), backoff=bo)
    assert g.ur.startswith("VNP13A1.A2024153.h10v05") and bo.waits == [1.0, 2.0]
    bo = _no_wait(tries=2)
    calls.clear()
    with pytest.raises(FetchError, match="failed after 2 tries: HTTP 503"):
        cmr.search(ARCHIVE["VNP13A1"], DAY, DAY, url=_cmr(ed), backoff=bo)


def test_backoff_has_full_jitter_and_a_cap() -> None:
    bo = cmr.Backoff(base=1.0, cap=10.0, rng=lambda: 0.5)
    assert [bo.delay(i) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert bo.delay(0, "7") == 7.0 and bo.delay(0, "120") == 10.0


# -- downloads ------------------------------------------------------------------------------
def test_fetch_tiles_newest_production_and_the_token_policy(ed: Earthdata, tmp_path: Path) -> None:
    old = _publish(ed, "MOD11A2", DAY, "h10v05", "2024160000000")
    new = _publish(ed, "MOD11A2", DAY, "h10v05", "2024170000000")  # reprocessed: newer
    _publish(ed, "MOD11A2", DAY, "h30v10", "2024160000000")  # not a wanted tile
    root = tmp_path / "root"
    (got,) = fetch("MOD11A2", DAY, DAY + dt.timedelta(days=3), root, token=TOKEN,
                   cmr_url=_cmr(ed), tiles=["h10v05", "h11v05"], backoff=_no_wait())  # fmt: skip
    assert got == root / "MODIS/MOD11A2.061/2024.06.01" / new and old != new
    assert got.read_bytes() == _payload(new)
    protected = [r for r in ed.log if r.server == "data" and "/lp-prod-protected/" in r.path]
    dl = [r for r in ed.log if r.server == "dl"]
    assert len(protected) == len(dl) == 1
    assert protected[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in dl[0].headers  # the redirect host never sees the token
    assert "bounding_box=" in next(r.path for r in ed.log if r.path.startswith("/search/"))
    # Present files are skipped: no further download.
    n = len(ed.log)
    assert fetch("MOD11A2", DAY, DAY, root, token=TOKEN, cmr_url=_cmr(ed),
                 tiles=["h10v05"], backoff=_no_wait()) == [got]  # fmt: skip
    assert not [r for r in ed.log[n:] if r.server == "dl"]


@pytest.mark.parametrize("short", sorted(ARCHIVE))
def test_every_nasa_product_is_fetched_through_cmr(
    short: str, ed: Earthdata, tmp_path: Path
) -> None:
    coll = ARCHIVE[short]
    if coll.tiled:
        name = _publish(ed, short, DAY, "h10v05", "2024170000000")
        tiles = ["h10v05"]
    else:
        name = f"SMAP_L3_SM_P_E_{DAY:%Y%m%d}_R19240_001.h5"
        ed.add(short, coll.version, name, DAY, _payload(name), provider=coll.provider)
        tiles = []
    (got,) = fetch(short, DAY, DAY, tmp_path, token=TOKEN, cmr_url=_cmr(ed), tiles=tiles,
                   backoff=_no_wait())  # fmt: skip
    assert got == tmp_path / coll.folder / f"{short}.{coll.version}" / "2024.06.01" / name
    assert got.read_bytes() == _payload(name)


def test_smap_newest_release_of_each_day_reads_back(ed: Earthdata, tmp_path: Path) -> None:
    made = tmp_path / "made"
    coll = ARCHIVE["SPL3SMP_E"]
    files = [write_smap(made, DAY, 0.1, 0.1, crid=19240, number=1),
             write_smap(made, DAY, 0.2, 0.2, crid=19240, number=2)]  # fmt: skip
    for f in files:
        ed.add("SPL3SMP_E", "006", f.name, DAY, f.read_bytes(), provider="NSIDC_CPRD",
               checksum="SHA-256")  # fmt: skip
    (got,) = fetch("SPL3SMP_E", DAY, DAY, tmp_path / "root", token=TOKEN, cmr_url=_cmr(ed),
                   backoff=_no_wait())  # fmt: skip
    assert got.name == files[1].name and coll.provider in next(
        r.path for r in ed.log if r.path.startswith("/search/")
    )
    assert "/nsidc-cumulus-prod-protected/" in next(r.path for r in ed.log if r.server == "dl")
    nr = SmapSource(tmp_path / "root" / "SMAP").native(DAY, REGION)
    assert np.nanmax(nr.data) == pytest.approx(0.2)


def test_a_granule_ending_at_the_first_midnight_is_not_taken() -> None:
    def granule(day: dt.date, end: dt.datetime) -> cmr.Granule:
        name = _tiled("VNP21A1D", "002", day, "h10v05", "2024170000000")
        begin = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        return cmr.Granule(name, begin, end, (f"https://x/{name}",), ())

    before = DAY - dt.timedelta(days=1)
    midnight = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    picks = fetch_mod._pick(
        ARCHIVE["VNP21A1D"],
        [granule(before, midnight), granule(DAY, midnight + dt.timedelta(days=1))],
        DAY, DAY, {"h10v05"}, s3=False,
    )  # fmt: skip
    assert [p[0] for p in picks] == [DAY]


def test_land_cover_comes_from_the_latest_year_up_to_the_day(ed: Earthdata, tmp_path: Path) -> None:
    for year in (2021, 2022, 2023):
        _publish(ed, "MCD12Q1", dt.date(year, 1, 1), "h10v05", f"{year + 1}169161011", days=365)
    got = fetch("MCD12Q1", dt.date(2025, 6, 1), dt.date(2025, 6, 2), tmp_path, token=TOKEN,
                cmr_url=_cmr(ed), tiles=["h10v05"], backoff=_no_wait())  # fmt: skip
    assert [p.parent.name for p in got] == ["2023.01.01"]
    got = fetch("MCD12Q1", dt.date(2022, 6, 1), dt.date(2023, 6, 2), tmp_path, token=TOKEN,
                cmr_url=_cmr(ed), tiles=["h10v05"], backoff=_no_wait())  # fmt: skip
    assert [p.parent.name for p in got] == ["2022.01.01", "2023.01.01"]
    search = next(r.path for r in ed.log if r.path.startswith("/search/"))
    assert "temporal=2022-01-01T00" in search  # three years looked back


def test_missing_token_is_one_line_before_any_network_call(ed: Earthdata, tmp_path: Path) -> None:
    with pytest.raises(MissingTokenError) as err:
        fetch("VNP21A1D", DAY, DAY, tmp_path, cmr_url=_cmr(ed), backoff=_no_wait())
    assert "EARTHDATA_TOKEN" in str(err.value) and "\n" not in str(err.value)
    assert ed.log == []


def test_cli_fetch_and_missing_token(
    ed: Earthdata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    name = _publish(ed, "VJ121A1D", DAY, "h10v05", "2024170000000")
    args = ["fetch", "-p", "VJ121A1D", "--start", "2024-06-01", "--end", "2024-06-01",
            "--root", str(tmp_path), "--cmr-url", _cmr(ed), "--tile", "h10v05",
            "--tries", "1"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "EARTHDATA_TOKEN" in err and ed.log == []
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "VIIRS/VJ121A1D.002/2024.06.01" / name) in out
    assert "1 file(s) of VJ121A1D" in out


def test_token_from_netrc_through_earthdata_login(
    ed: Earthdata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rc = tmp_path / "netrc"
    rc.write_text("machine 127.0.0.1 login tester password secret\n")
    rc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(rc))
    assert resolve_token(urs_url=ed.data_url) == TOKEN
    rc.write_text("machine 127.0.0.1 login tester password wrong\n")
    with pytest.raises(FetchError, match="netrc login was refused"):
        resolve_token(urs_url=ed.data_url)


def test_wrong_token_is_401_naming_the_url(ed: Earthdata, tmp_path: Path) -> None:
    name = _publish(ed, "VNP16A2", DAY, "h10v05", "2024170000000")
    with pytest.raises(FetchError) as err:
        fetch("VNP16A2", DAY, DAY, tmp_path, token="expired", cmr_url=_cmr(ed),
              tiles=["h10v05"], backoff=_no_wait())  # fmt: skip
    msg = str(err.value)
    assert "HTTP 401" in msg and "refused" in msg and name in msg
    assert not list(tmp_path.rglob("*.h5*"))


def test_no_token_on_a_protected_url_is_401_naming_the_variable(
    ed: Earthdata, tmp_path: Path
) -> None:
    name, url, _ = _one_file(ed)
    with pytest.raises(FetchError) as err:
        download(url, tmp_path / name, backoff=_no_wait())
    assert "HTTP 401" in str(err.value) and "EARTHDATA_TOKEN" in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("https://data.lpdaac.earthdatacloud.nasa.gov/lp-prod-protected/b.h5", True),
        ("https://urs.earthdata.nasa.gov/oauth/authorize?client_id=x", True),
        ("https://lp-prod-protected.s3.us-west-2.amazonaws.com/b.h5?X-Amz-Signature=s", False),
        ("https://d1abcd.cloudfront.net/b.h5?Signature=s", False),
        ("http://data.lpdaac.earthdatacloud.nasa.gov/lp-prod-protected/b.h5", False),
        ("https://earthdatacloud.nasa.gov.evil.example/b.h5", False),
    ],
)
def test_which_redirect_targets_receive_the_token(target: str, allowed: bool) -> None:
    origin = "https://data.lpdaac.earthdatacloud.nasa.gov/lp-prod-protected/a.h5"
    assert fetch_mod._auth_allowed(origin, target) is allowed


def _one_file(ed: Earthdata) -> tuple[str, str, bytes]:
    name = _publish(ed, "VNP21A2", DAY, "h10v05", "2024170000000")
    path = next(p for p in ed.files if p.endswith(name))
    return name, f"{ed.data_url}{path}", ed.files[path]


def test_truncated_transfer_resumes_with_a_range_request(ed: Earthdata, tmp_path: Path) -> None:
    name, url, data = _one_file(ed)
    key = url.removeprefix(ed.data_url)
    ed.faults[f"dl:{key}"] = ["truncate"]
    bo = _no_wait()
    dest = tmp_path / name
    assert download(url, dest, token=TOKEN, size=len(data), backoff=bo)
    assert dest.read_bytes() == data and bo.waits == [1.0]
    dl = [r for r in ed.log if r.server == "dl"]
    assert "Range" not in dl[0].headers
    assert dl[1].headers["Range"] == f"bytes={len(data) // 2}-"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_a_server_ignoring_range_restarts_cleanly(ed: Earthdata, tmp_path: Path) -> None:
    name, url, data = _one_file(ed)
    key = url.removeprefix(ed.data_url)
    ed.faults[f"dl:{key}"] = ["truncate", "ignore-range"]
    dest = tmp_path / name
    assert download(url, dest, token=TOKEN, size=len(data), backoff=_no_wait())
    assert dest.read_bytes() == data


def test_a_body_broken_after_its_last_byte_is_complete(
    ed: Earthdata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry's Range starts at the end: the server's 416 says the part is whole."""
    name, url, data = _one_file(ed)
    real = fetch_mod._chunks

    def then_reset(r: object) -> Iterator[bytes]:
        yield from real(r)
        if not any("Range" in x.headers for x in ed.log if x.server == "dl"):
            raise ConnectionResetError("reset after the last byte")

    monkeypatch.setattr(fetch_mod, "_chunks", then_reset)
    bo = _no_wait()
    assert download(url, tmp_path / name, token=TOKEN, size=len(data), backoff=bo)
    assert (tmp_path / name).read_bytes() == data and bo.waits == [1.0]
    dl = [x for x in ed.log if x.server == "dl"]
    assert len(dl) == 2 and dl[1].headers["Range"] == f"bytes={len(data)}-"


def test_503_then_success_honours_retry_after(ed: Earthdata, tmp_path: Path) -> None:
    name, url, data = _one_file(ed)
    key = url.removeprefix(ed.data_url)
    ed.faults[f"data:{key}"] = ["503"]
    ed.faults[f"dl:{key}"] = ["503"]
    bo = _no_wait()
    assert download(url, tmp_path / name, token=TOKEN, backoff=bo)
    assert (tmp_path / name).read_bytes() == data and bo.waits == [7.0, 7.0]


def test_giving_up_leaves_nothing(ed: Earthdata, tmp_path: Path) -> None:
    name, url, _ = _one_file(ed)
    key = url.removeprefix(ed.data_url)
    ed.faults[f"dl:{key}"] = ["truncate"] * 3
    with pytest.raises(FetchError) as err:
        download(url, tmp_path / "out" / name, token=TOKEN, backoff=_no_wait(tries=3))
    assert url in str(err.value) and "failed after 3 tries" in str(err.value)
    assert "truncated" in str(err.value) or "broken" in str(err.value)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("bad", ["size", "checksum"])
def test_size_or_checksum_mismatch_leaves_nothing(bad: str, ed: Earthdata, tmp_path: Path) -> None:
    name, url, data = _one_file(ed)
    kwargs: dict[str, object] = (
        {"size": len(data) + 1} if bad == "size" else {"checksum": ("MD5", "0" * 32)}
    )
    with pytest.raises(FetchError, match="CMR") as err:
        download(url, tmp_path / name, token=TOKEN, backoff=_no_wait(), **kwargs)  # type: ignore[arg-type]
    assert url in str(err.value) and list(tmp_path.iterdir()) == []


def test_empty_search_names_the_search(ed: Earthdata, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as err:
        fetch("VJ216A2", DAY, DAY, tmp_path, token=TOKEN, cmr_url=_cmr(ed),
              tiles=["h10v05"], backoff=_no_wait())  # fmt: skip
    msg = str(err.value)
    assert _cmr(ed) in msg and "no VJ216A2.002 granule" in msg and "not confirmed" in msg


def test_direct_s3_access_with_the_daac_credentials(
    ed: Earthdata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    name = _publish(ed, "VNP21A1D", DAY, "h10v05", "2024170000000")
    path = next(p for p in ed.files if p.endswith(name))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-west-2")  # fmt: skip
        bucket, key = path.lstrip("/").split("/", 1)
        s3.create_bucket(Bucket=bucket,
                         CreateBucketConfiguration={"LocationConstraint": "us-west-2"})  # fmt: skip
        s3.put_object(Bucket=bucket, Key=key, Body=ed.files[path])
        creds_url = f"{ed.data_url}/s3credentials"
        monkeypatch.setitem(
            ARCHIVE, "VNP21A1D", dataclasses.replace(ARCHIVE["VNP21A1D"], s3_credentials=creds_url)
        )
        (got,) = fetch("VNP21A1D", DAY, DAY, tmp_path, token=TOKEN, cmr_url=_cmr(ed),
                       tiles=["h10v05"], access="s3", s3_endpoint_url=endpoint,
                       backoff=_no_wait())  # fmt: skip
    finally:
        server.stop()
    assert got.read_bytes() == ed.files[path]
    creds = [r for r in ed.log if r.path == "/s3credentials"]
    assert len(creds) == 1 and creds[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert not [r for r in ed.log if r.server == "dl"]  # no HTTPS download


def test_registry_products_have_their_archive_facts_here() -> None:
    """Every NASA product the registry names (any family, mode) is in ``ARCHIVE``."""
    nasa = re.compile(r"^(MOD|MYD|MCD|VNP|VJ1|VJ2|SPL)")
    named = {
        p
        for fam in variables.FAMILIES
        for mode in variables.MODES
        for p in variables.products(mode, fam).values()
    }
    missing = sorted(p for p in named if nasa.match(p) and p not in ARCHIVE)
    assert missing == []
    for fam in variables.FAMILIES:  # and every registry product has a fetcher
        for mode in variables.MODES:
            dated, manual = fetch_mod.inputs_of(fam, mode)
            assert dated and manual


def test_a_real_viirs_granule_found_through_cmr_reads_as_the_original(
    ed: Earthdata, tmp_path: Path, realdata: Path
) -> None:
    """The real VNP21A1D tile of ../shared/realdata, published in the emulated archive:
    CMR finds it, the download checks its size and MD5, and the VIIRS reader gives the
    same values from the fetched file as from the original."""
    from pipeline.sources import viirs

    src = realdata / "ET-Toolbox_VNP21A1D-002/VNP21A1D.002/2025-01-17"
    src = src / "VNP21A1D.A2025017.h08v05.002.2025022014218.h5"
    day = dt.date(2025, 1, 17)
    ed.add("VNP21A1D", "002", src.name, day, src.read_bytes(), bbox=tile_bbox("h08v05"))
    _publish(ed, "VNP21A1D", day, "h09v05", "2025022014218")  # a tile not asked for
    (got,) = fetch("VNP21A1D", day, day, tmp_path, token=TOKEN, cmr_url=_cmr(ed),
                   tiles=["h08v05"], backoff=_no_wait())  # fmt: skip
    assert got == tmp_path / "VIIRS/VNP21A1D.002/2025.01.17" / src.name
    a = viirs.read_viirs_file(src, "VNP21A1D", qc="good")
    b = viirs.read_viirs_file(got, "VNP21A1D", qc="good")
    np.testing.assert_array_equal(a.data, b.data)
    assert int(np.isfinite(b.data).sum()) == 970844  # realdata README: QC 00 pixels


def test_cli_fetches_every_input_of_the_family(
    ed: Earthdata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """`smdown fetch --inputs`: the registry's products of viirs-snpp (maps); one missing
    product is one line on stderr, the others are fetched, the exit code says it."""
    dated, manual = fetch_mod.inputs_of("viirs-snpp", "maps")
    assert "VNP21A1D" in dated and "CHIRPS" in dated and "SPL3SMP_E" in dated
    assert manual == ["SoilGrids", "MERIT", "Koeppen"]
    for short in dated:
        if short in ("CHIRPS", "SPL3SMP_E", "VNP16A2"):  # VNP16A2: not in the archive here
            continue
        _publish(ed, short, DAY, "h10v05", "2024170000000")
    smap = f"SMAP_L3_SM_P_E_{DAY:%Y%m%d}_R19240_001.h5"
    ed.add("SPL3SMP_E", "006", smap, DAY, _payload(smap), provider="NSIDC_CPRD")
    tif = write_chirps(tmp_path / "made", DAY, 1.0)
    ed.public[f"/chirps/{DAY:%Y}/{tif.name}.gz"] = gzip.compress(tif.read_bytes())
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    root = tmp_path / "root"
    args = ["fetch", "--inputs", "--family", "viirs-snpp", "--start", "2024-06-01",
            "--end", "2024-06-01", "--root", str(root), "--cmr-url", _cmr(ed),
            "--base-url", f"{ed.data_url}/chirps", "--tile", "h10v05", "--tries", "1"]  # fmt: skip
    code = main(args)
    cap = capsys.readouterr()
    assert code == 1
    err = cap.err.strip().splitlines()
    assert err[0].startswith("VNP16A2: ") and "no VNP16A2.002 granule" in err[0]
    assert err[-1] == "1 of 6 product(s) failed: VNP16A2"
    assert (root / "SMAP/SPL3SMP_E.006/2024.06.01" / smap).is_file()
    assert (root / "CHIRPS/global_daily/tifs/p05/2024" / tif.name).read_bytes() == tif.read_bytes()
    for short in ("VNP13A1", "VNP21A1D", "MCD12Q1"):
        assert len(list((root / ARCHIVE[short].folder).glob(f"{short}.*/2024.06.01/*"))) == 1
    assert "smdown fetch --product SoilGrids" in cap.out
