"""The cube on object storage: a day written to s3:// through s3fs equals the same day on disk.

A local S3-compatible server (moto in server mode on 127.0.0.1, a free port) is
started by the tests; nothing leaves the machine. The day is made by the real
``run_day`` on a 2-worker LocalCluster (the workers write their chunks to the
bucket themselves) with the fake world and fake ensemble of ``test_run_tiles``,
then read back with ``xarray.open_zarr("s3://...")``, exported with
``smdown export``, re-made provisional -> final, and locked with exclusive creates.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_run_tiles import ARCSEC3, DAY, TODAY, _plan

from grids import Grid
from pipeline.cluster import open_client
from pipeline.config import ClusterConfig, Settings
from pipeline.cube import (
    DAY_FINAL,
    DAY_PROVISIONAL,
    Cube,
    LockHeldError,
    StoreSpec,
    hold_lock,
    lock_path,
    open_cube,
)
from pipeline.cube.lock import LockInfo, _try_create
from pipeline.run import run_day
from pipeline.run.day import backfill

# 128 x 256 pixels of the conus-90m lattice in Oklahoma: two 128-pixel tiles, 64-pixel chunks.
GRID = Grid("EPSG:4326", (ARCSEC3, 0.0, -97.6, 0.0, -ARCSEC3, 36.0), (128, 256))
BUCKET = "smdown-test"
DATA_VARS = ("soil_moisture", "soil_moisture_sd", "member_spread", "quality_flag")


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """A moto S3 server on loopback with one bucket; yields the fsspec storage options."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    opts = {
        "endpoint_url": endpoint,
        "key": "test",
        "secret": "test",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    try:
        yield opts
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with open_client(ClusterConfig(n_workers=2, dashboard=False)) as c:
        yield c


def _settings(store: str, storage_options: dict[str, Any], models: Path) -> Settings:
    return Settings(
        grid={"name": "conus-90m", "tile_size": 128},
        output={
            "store": store,
            "chunk_size": 64,
            "first_year": 2020,
            "storage_options": storage_options,
        },
        models={"dir": str(models), "arch": "dense"},
    )


@pytest.fixture(scope="module")
def made(s3: dict[str, Any], client: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """DAY made into s3://bucket/cube and into a local folder, same plan otherwise."""
    tmp = tmp_path_factory.mktemp("s3cube")
    remote = _settings(f"s3://{BUCKET}/cube", s3, tmp / "models")
    local = _settings(str(tmp / "cube"), {}, tmp / "models")
    out = {"tmp": tmp, "s3": s3}
    for name, settings in (("remote", remote), ("local", local)):
        plan = _plan(settings, GRID)
        res = run_day(settings, DAY, client=client, plan=plan, today=TODAY)
        out[name] = {"settings": settings, "plan": plan, "result": res}
    return out


def test_plan_points_at_the_bucket(made: Any) -> None:
    plan = made["remote"]["plan"]
    assert plan.cube.url == f"s3://{BUCKET}/cube/dense-{'f0' * 6}.zarr"
    assert not plan.cube.is_local
    res = made["remote"]["result"]
    assert res.status == DAY_FINAL and res.n_tiles == 2 and 0.5 < res.coverage <= 1.0


def test_s3_cube_reread_with_xarray_equals_the_local_cube(made: Any) -> None:
    import xarray as xr

    remote, local = made["remote"]["plan"], made["local"]["plan"]
    ds_s3 = xr.open_zarr(
        remote.cube.url,
        storage_options=made["s3"],
        consolidated=True,
        mask_and_scale={"quality_flag": False},  # flags stay integer, as open_cube reads them
    )
    ds_local = open_cube(local.cube.url)
    day_s3 = ds_s3.sel(time=str(DAY))
    day_local = ds_local.sel(time=str(DAY))
    for name in DATA_VARS:
        a, b = day_s3[name].values, day_local[name].values
        assert a.shape == GRID.shape
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(day_s3.soil_moisture.values).mean() > 0.5
    np.testing.assert_array_equal(ds_s3.lat.values, ds_local.lat.values)
    np.testing.assert_array_equal(ds_s3.lon.values, ds_local.lon.values)
    assert int(day_s3.day_status) == DAY_FINAL
    assert ds_s3.attrs["model_manifest_hash"] == ds_local.attrs["model_manifest_hash"]
    assert "crs_wkt" in ds_s3.spatial_ref.attrs


def test_opening_the_s3_cube_fetches_no_data_chunk(
    made: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``open_cube`` is lazy: metadata and coordinates only, until values are asked for."""
    from zarr.storage import FsspecStore

    fetched: list[str] = []
    get, get_partial = FsspecStore.get, FsspecStore.get_partial_values

    async def spy_get(self: Any, key: str, *args: Any, **kw: Any) -> Any:
        fetched.append(key)
        return await get(self, key, *args, **kw)

    async def spy_get_partial(self: Any, prototype: Any, key_ranges: Any) -> Any:
        key_ranges = list(key_ranges)
        fetched.extend(k for k, _ in key_ranges)
        return await get_partial(self, prototype, key_ranges)

    monkeypatch.setattr(FsspecStore, "get", spy_get)
    monkeypatch.setattr(FsspecStore, "get_partial_values", spy_get_partial)
    remote = made["remote"]["plan"]
    ds = open_cube(remote.cube.url, made["s3"])
    assert not [k for k in fetched if k.split("/")[0] in DATA_VARS and "/.z" not in k]
    t = remote.layout.time_index(DAY)
    value = float(ds.soil_moisture.isel(time=t, lat=0, lon=0))  # one value: one chunk
    chunks = [k for k in fetched if k.split("/")[0] in DATA_VARS and "/.z" not in k]
    assert chunks == [f"soil_moisture/{t}.0.0"] and np.isfinite(value)


def test_s3_chunks_are_byte_identical_to_the_local_chunks(made: Any) -> None:
    """Packing and compression are deterministic, so the stored objects equal the files."""
    remote, local = made["remote"]["plan"], made["local"]["plan"]
    fs, root = remote.cube.filesystem()
    t = remote.layout.time_index(DAY)
    keys = sorted(
        p[len(root) + 1 :]
        for name in DATA_VARS
        for p in fs.find(f"{root}/{name}")
        if p.rsplit("/", 1)[-1].startswith(f"{t}.")
    )
    local_keys = sorted(
        f"{name}/{p.name}"
        for name in DATA_VARS
        for p in (Path(local.cube.url) / name).iterdir()
        if p.name.startswith(f"{t}.")
    )
    assert keys and keys == local_keys
    for key in keys:
        assert fs.cat_file(f"{root}/{key}") == (Path(local.cube.url) / key).read_bytes(), key


def test_provenance_status_and_latest_json_live_in_the_bucket(made: Any) -> None:
    remote, local = made["remote"]["plan"], made["local"]["plan"]
    cube_s3 = Cube(remote.cube, remote.layout)
    prov_s3 = cube_s3.read_provenance(DAY)
    prov_local = Cube(local.cube, local.layout).read_provenance(DAY)
    assert prov_s3 is not None and prov_local is not None
    assert prov_s3["static_stack"].startswith(f"s3://{BUCKET}/cube/static-")
    for key in ("inputs", "days_stale", "model_manifest_hash", "status", "n_predicted"):
        assert prov_s3[key] == prov_local[key], key
    assert cube_s3.statuses() == {DAY: DAY_FINAL}
    fs, _ = remote.root.filesystem()
    latest = json.loads(fs.cat_file(f"{BUCKET}/cube/latest.json"))
    assert latest["store"] == remote.store_name
    assert fs.find(f"{BUCKET}/cube/.locks") == []  # every lock was released


def test_smdown_export_reads_the_s3_cube(made: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import rasterio

    from pipeline.cli import main

    tmp, opts = made["tmp"], made["s3"]
    inline = (
        ", ".join(f'{k} = "{v}"' for k, v in opts.items() if isinstance(v, str))
        + ', client_kwargs = {region_name = "us-east-1"}'
    )
    cfg = tmp / "s3.toml"
    cfg.write_text(
        f'[output]\nstore = "s3://{BUCKET}/cube"\nstorage_options = {{{inline}}}\n',
        encoding="utf-8",
    )
    out = tmp / "day-s3.tif"
    code = main(["--config", str(cfg), "export", "--date", str(DAY), "-f", "cog", "-o", str(out)])
    assert code == 0, capsys.readouterr()
    ref = tmp / "day-local.tif"
    from pipeline.export import export_day

    export_day(made["local"]["plan"].cube.url, DAY, "cog", ref)
    with rasterio.open(out) as a, rasterio.open(ref) as b:
        assert a.crs == b.crs and a.transform == b.transform
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.tags()["source_store"].startswith(f"s3://{BUCKET}/cube/")


def test_provisional_day_is_remade_final_by_backfill_on_s3(made: Any, client: Any) -> None:
    """SMAP just landed: the day is provisional; a later backfill re-makes it final."""
    settings, plan = made["remote"]["settings"], made["remote"]["plan"]
    day = DAY + dt.timedelta(days=1)
    first = run_day(settings, day, client=client, plan=plan, today=day)  # 0 days old
    assert first.status == DAY_PROVISIONAL
    cube = Cube(plan.cube, plan.layout)
    assert cube.day_status(day) == DAY_PROVISIONAL
    made_again = backfill(settings, DAY, day, client=client, plan=plan, today=TODAY)
    results = {r.date: r for r in made_again}
    assert results[DAY].skipped and results[DAY].reason == "final already"
    assert not results[day].skipped and results[day].status == DAY_FINAL
    assert cube.statuses() == {DAY: DAY_FINAL, day: DAY_FINAL}
    prov = cube.read_provenance(day)
    assert prov is not None and prov["status"] == DAY_FINAL


def test_s3_lock_is_an_exclusive_create(s3: dict[str, Any]) -> None:
    """Eight threads race for one lock object: exactly one wins (conditional PUT)."""
    root = StoreSpec(f"s3://{BUCKET}/locks-race", s3)
    spec = lock_path(root, "dense-x.zarr", "2020-06-01")
    barrier = threading.Barrier(8)
    wins: list[str] = []

    def attempt(k: int) -> None:
        info = LockInfo("host", 1000 + k, 0.0, f"token{k}", "race")
        barrier.wait()
        if _try_create(spec, info):
            wins.append(info.token)

    threads = [threading.Thread(target=attempt, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    fs, path = spec.filesystem()
    assert json.loads(fs.cat_file(path))["token"] == wins[0]


def test_s3_lock_is_never_overwritten_after_a_stale_existence_check(
    s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check-then-write race, made deterministic: the existence check answers "absent"
    (as it would just before another run's lock lands). The create must still fail and
    leave the holder's lock as it was."""
    spec = lock_path(StoreSpec(f"s3://{BUCKET}/locks-stale", s3), "dense-x.zarr", "metadata")
    first = LockInfo("host-a", 1, 0.0, "token-a", "cube metadata")
    assert _try_create(spec, first)
    fs, path = spec.filesystem()
    monkeypatch.setattr(fs, "exists", lambda p, **kw: False)  # the cached instance
    second = LockInfo("host-b", 2, 0.0, "token-b", "cube metadata")
    assert not _try_create(spec, second)
    assert json.loads(fs.cat_file(path))["token"] == "token-a"


def test_store_without_conditional_writes_fails_with_one_line(
    s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An S3-compatible server that rejects If-None-Match: LockError naming the lock."""
    from pipeline.cube.lock import LockError

    spec = lock_path(StoreSpec(f"s3://{BUCKET}/locks-plain", s3), "dense-x.zarr", "2020-06-01")
    fs, path = spec.filesystem()  # fsspec's cached instance: the one the lock code gets
    original = fs.pipe_file

    def no_conditional_puts(p: str, data: bytes, **kw: Any) -> Any:
        if kw.get("mode") == "create":
            raise OSError(95, "NotImplemented: A header you provided implies functionality")
        return original(p, data, **kw)

    monkeypatch.setattr(fs, "pipe_file", no_conditional_puts)
    assert spec.filesystem()[0].pipe_file is no_conditional_puts
    with pytest.raises(LockError, match=r"locks-plain/\.locks/.*support exclusive creates"):
        with hold_lock(spec, "day 2020-06-01"):
            pass
    assert not fs.exists(path)


def test_s3_lock_held_is_refused_then_released(s3: dict[str, Any]) -> None:
    root = StoreSpec(f"s3://{BUCKET}/locks-held", s3)
    spec = lock_path(root, "dense-x.zarr", "metadata")
    fs, path = spec.filesystem()
    with hold_lock(spec, "cube metadata") as info:
        assert json.loads(fs.cat_file(path))["token"] == info.token
        with pytest.raises(LockHeldError, match=r"s3://.*metadata\.lock: cube metadata"):
            with hold_lock(spec, "cube metadata"):
                pass
    assert not fs.exists(path)


def test_denied_read_raises_instead_of_reading_fill_values(
    s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials that may not read the bucket give an error, never a map of fill values."""
    import moto.settings
    import zarr

    spec = StoreSpec(f"s3://{BUCKET}/denied.zarr", s3)
    arr = zarr.open_array(
        spec.zarr_store(),
        mode="w",
        shape=(4, 4),
        chunks=(2, 2),
        dtype="u2",
        fill_value=65535,
        zarr_format=2,
    )
    arr[:] = np.arange(16, dtype="u2").reshape(4, 4)
    ours = zarr.open_array(spec.zarr_store(), mode="r")
    assert int(ours[3, 3]) == 15
    # From here the server checks credentials (e.g. they expired during a long read);
    # "test" is no known access key: 403. Only a missing object reads as fill values.
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    with pytest.raises(PermissionError):
        ours[:]
