"""Faults a daily service survives, on a real multi-process Dask cluster (``dask scheduler`` +
two ``dask worker`` processes with nannies on 127.0.0.1) and real ``smdown run`` processes:
a worker killed inside a task, the whole job SIGKILLed mid-day, two runs of one day at once,
and the structure, retraction and overwrite guards. World and model: the tiny synthetic
world of tests/test_reliability_world.py. The RELIABILITY.md table names every test here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import h5py
import numpy as np
import pytest
from test_reliability_world import (
    GAP_DAY,
    GOOD_DAY,
    MODE,
    OTHER_GOOD_DAY,
    TODAY,
    chunk_digests,
    config,
    copy_world,
    cube_dir,
    dask_cluster,
    env,
    kill_group,
    leftovers,
    settings,
    smdown,
    write_config,
)

from pipeline.cluster import open_client
from pipeline.config import ClusterConfig, SourcesConfig
from pipeline.cube import (
    DAY_ABSENT,
    DAY_FINAL,
    DAY_PROVISIONAL,
    FLAG_BITS,
    Cube,
    open_cube,
    read_layout,
)
from pipeline.cube.layout import StoreSpec
from pipeline.errors import PublishGuardError
from pipeline.run import backfill, build_plan, run_day

cloudpickle.register_pickle_by_value(sys.modules[__name__])
pytestmark = pytest.mark.cluster

# Small tiles (5 x 5 = 25 tile tasks) so a day lasts long enough to be interrupted.
SMALL_TILES: dict[str, dict[str, Any]] = {"grid": {"tile_size": 48}, "output": {"chunk_size": 48}}
JOB_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def dask(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The module's cluster: its address and a client on it."""
    log = tmp_path_factory.mktemp("dask") / "dask.log"
    with dask_cluster(log, n_workers=2) as address:
        with open_client(ClusterConfig(connect_timeout_s=60), scheduler=address) as c:
            c.wait_for_workers(2, timeout=120)
            yield {"address": address, "client": c, "log": log}


def _make(out: Path, client: Any, day: dt.date, **kwargs: Any) -> Any:
    s = settings(out, **kwargs)
    return run_day(s, day, client=client, plan=build_plan(s, mode=MODE), today=TODAY)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, dask: dict[str, Any]) -> dict[str, Any]:
    """A clean run of GOOD_DAY with small tiles: the reference bytes."""
    small = tmp_path_factory.mktemp("clean-small")
    assert _make(small, dask["client"], GOOD_DAY, **SMALL_TILES).status == DAY_FINAL
    return {"small": chunk_digests(cube_dir(small), GOOD_DAY)}


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    """(sha256, mtime_ns) of every file under ``root``."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _cube(out: Path) -> Cube:
    spec = StoreSpec(str(cube_dir(out)))
    return Cube(spec, read_layout(spec))


# -- a worker process dies inside a task -------------------------------------------------------
@dataclass(frozen=True)
class KillOnce:
    """A catalog factory whose SMAP read kills its worker process (os._exit) exactly once:
    the first task to rename the marker file away dies."""

    marker: str

    def __call__(self, cfg: SourcesConfig) -> Any:
        from pipeline.run.plan import default_catalog

        return _KillingCatalog(default_catalog(cfg), self.marker)


class _KillingCatalog:
    def __init__(self, inner: Any, marker: str) -> None:
        self.inner = inner
        self.marker = marker

    def sources(self, mode: str = "maps") -> dict[str, Any]:
        srcs = dict(self.inner.sources(mode))
        srcs["smap"] = _KillingSource(srcs["smap"], self.marker)
        return srcs


class _KillingSource:
    def __init__(self, inner: Any, marker: str) -> None:
        self.inner = inner
        self.marker = marker
        self.variable = inner.variable

    def available(self, date: dt.date | None) -> Any:
        return self.inner.available(date)

    def native(self, date: dt.date | None, bounds: tuple[float, float, float, float]) -> Any:
        try:
            os.rename(self.marker, self.marker + ".fired")  # atomic: one task wins
        except FileNotFoundError:
            return self.inner.native(date, bounds)
        os._exit(17)


def test_worker_killed_inside_a_task_day_completes_identical(
    tmp_path: Path, dask: dict[str, Any], clean: dict[str, Any]
) -> None:
    client = dask["client"]
    marker = tmp_path / "kill-a-worker"
    marker.write_text("the first SMAP read of a tile task kills its worker process")
    pids_before = set(client.run(os.getpid).values())
    s = settings(tmp_path, **SMALL_TILES)
    plan = build_plan(s, mode=MODE, catalog_factory=KillOnce(str(marker)))
    res = run_day(s, GOOD_DAY, client=client, plan=plan, today=TODAY)
    assert (tmp_path / "kill-a-worker.fired").exists() and not marker.exists()
    assert res.status == DAY_FINAL and res.n_tiles == 25
    assert chunk_digests(cube_dir(tmp_path), GOOD_DAY) == clean["small"]
    client.wait_for_workers(2, timeout=120)  # the nanny restarted the dead worker
    pids_after = set(client.run(os.getpid).values())
    assert len(pids_before - pids_after) == 1  # exactly one worker process died
    assert leftovers(tmp_path) == []


# -- the whole job is SIGKILLed mid-day --------------------------------------------------------
def _wait_for(cond: Any, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (code {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _day_chunks(out: Path, day: dt.date) -> list[Path]:
    prefix = f"{(day - dt.date(2020, 1, 1)).days}."
    return [p for p in out.glob("cube/rf-*.zarr/quality_flag/*") if p.name.startswith(prefix)]


def _start(args: list[str], out: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        smdown(*args),
        stdout=open(out / f"{name}.out", "wb"),
        stderr=open(out / f"{name}.err", "wb"),
        env=env(),
        start_new_session=True,  # its own process group: the kill takes its cluster too
    )


def test_job_sigkilled_mid_day_leaves_previous_state_and_rerun_repairs(
    tmp_path: Path, dask: dict[str, Any], clean: dict[str, Any]
) -> None:
    cfg = write_config(tmp_path / "smdown.toml", config(tmp_path, **SMALL_TILES))
    # Another day is already published in the cube.
    assert _make(tmp_path, dask["client"], OTHER_GOOD_DAY, **SMALL_TILES).status == DAY_FINAL
    cube = _cube(tmp_path)
    other_files = {
        k: v for k, v in _tree(cube_dir(tmp_path)).items() if k.split("/")[-1].startswith("155.")
    }
    other_prov = cube.read_provenance(OTHER_GOOD_DAY)
    assert other_files and other_prov is not None

    args = ["-q", "--config", str(cfg), "run", "--date", str(GOOD_DAY), "--mode", MODE]
    job = _start(args, tmp_path, "killed")  # its own LocalCluster (1 worker process)
    try:
        _wait_for(lambda: _day_chunks(tmp_path, GOOD_DAY), "the first tile of the day", job)
    finally:
        kill_group(job)
    assert job.returncode == -9
    n_written = len(_day_chunks(tmp_path, GOOD_DAY))
    n_chunks = sum(k.startswith("quality_flag/") for k in clean["small"])  # 5 x 5 in a day
    assert 0 < n_written < n_chunks, n_written  # killed mid-day
    # Readers see the previous state: the day absent, the other day untouched.
    assert cube.day_status(GOOD_DAY) == DAY_ABSENT
    assert cube.day_status(OTHER_GOOD_DAY) == DAY_FINAL
    ds = open_cube(str(cube_dir(tmp_path)))
    assert int(ds.day_status.sel(time=str(GOOD_DAY))) == DAY_ABSENT
    stale = leftovers(tmp_path)
    assert all(p.endswith(".lock") for p in stale), stale  # only the dead run's locks

    # A re-run (on the long-lived cluster) takes over the stale lock and repairs the day.
    rerun = subprocess.run(
        smdown(*args, "--scheduler", dask["address"]),
        capture_output=True,
        env=env(),
        timeout=JOB_TIMEOUT_S,
    )
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert cube.day_status(GOOD_DAY) == DAY_FINAL
    assert chunk_digests(cube_dir(tmp_path), GOOD_DAY) == clean["small"]
    after = _tree(cube_dir(tmp_path))
    assert {k: after[k] for k in other_files} == other_files  # bytes and mtimes
    assert cube.read_provenance(OTHER_GOOD_DAY) == other_prov
    assert leftovers(tmp_path) == []


# -- two runs of the same day at once ----------------------------------------------------------
def test_two_runs_of_one_day_one_works_one_waits_one_refused(
    tmp_path: Path, dask: dict[str, Any], clean: dict[str, Any]
) -> None:
    lock_dir = tmp_path / "cube" / ".locks"

    def run_args(name: str, **output: Any) -> list[str]:
        data = config(tmp_path, **SMALL_TILES)
        data["output"].update(output)
        cfg = write_config(tmp_path / f"{name}.toml", data)
        return [
            *("-q", "--config", str(cfg), "run", "--date", str(GOOD_DAY), "--mode", MODE),
            *("--scheduler", dask["address"]),
        ]

    first = _start(run_args("first"), tmp_path, "first")
    procs = [first]
    try:
        _wait_for(lambda: any(lock_dir.glob(f"*.{GOOD_DAY}.lock")), "the day's lock", first)
        refused = _start(run_args("refused", lock_timeout_s=0.0), tmp_path, "refused")
        waiter = _start(run_args("waiter", lock_timeout_s=float(JOB_TIMEOUT_S)), tmp_path, "waiter")
        procs += [refused, waiter]
        codes = [p.wait(timeout=JOB_TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                kill_group(p)
    out = {n: (tmp_path / f"{n}.out").read_text() for n in ("first", "refused", "waiter")}
    err = {n: (tmp_path / f"{n}.err").read_text() for n in ("first", "refused", "waiter")}
    assert codes == [0, 1, 0], err
    assert f"{GOOD_DAY}: final" in out["first"]
    lines = err["refused"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smdown: error: "), err["refused"]
    assert f"is being written by pid {first.pid}" in lines[0] and str(GOOD_DAY) in lines[0]
    assert f"{GOOD_DAY}: skipped (final" in out["waiter"]  # waited, then found it final
    assert _cube(tmp_path).day_status(GOOD_DAY) == DAY_FINAL
    assert chunk_digests(cube_dir(tmp_path), GOOD_DAY) == clean["small"]
    assert leftovers(tmp_path) == []


# -- guards ------------------------------------------------------------------------------------
def test_structure_guard_refuses_other_grid_chunks_or_dtype_before_writing(
    tmp_path: Path, dask: dict[str, Any]
) -> None:
    client = dask["client"]
    assert _make(tmp_path, client, GOOD_DAY).status == DAY_FINAL
    store = cube_dir(tmp_path)
    before = _tree(tmp_path)
    other_grid = {"grid": {"region": [-97.72, 35.3, -97.5, 35.5]}}  # another origin
    cases: list[tuple[dict[str, Any], str]] = [
        ({"output": {"chunk_size": 32}}, "chunks"),
        (other_grid, "GeoTransform"),
    ]
    for sections, problem in cases:
        with pytest.raises(PublishGuardError) as err:
            _make(tmp_path, client, OTHER_GOOD_DAY, **sections)
        assert str(store) in str(err.value) and problem in str(err.value), str(err.value)
        assert _tree(tmp_path) == before  # nothing written, not even a lock
    # A store whose data type differs (made by another version): refused too.
    zarray = store / "soil_moisture" / ".zarray"
    zarray.write_text(zarray.read_text().replace('"<u2"', '"<f4"'))
    before = _tree(tmp_path)
    with pytest.raises(PublishGuardError) as err:
        _make(tmp_path, client, OTHER_GOOD_DAY)
    assert str(store) in str(err.value) and "dtype" in str(err.value), str(err.value)
    assert _tree(tmp_path) == before


def test_outage_day_is_published_provisional_not_final(
    tmp_path: Path, dask: dict[str, Any]
) -> None:
    """SMAP lost over the west of the region (an outage): the affected pixels are flagged, the
    day's coverage falls below ``min_coverage_final`` and it is provisional, not final."""
    world = copy_world(tmp_path)
    (smap,) = sorted(world.rglob(f"SMAP_L3_SM_P_E_{GOOD_DAY:%Y%m%d}_R19240_*.h5"))
    with h5py.File(smap, "r+") as f:
        for name in (
            "Soil_Moisture_Retrieval_Data_AM/soil_moisture",
            "Soil_Moisture_Retrieval_Data_PM/soil_moisture_pm",
        ):
            f[name][330:352, 870:883] = np.float32(-9999.0)  # 2 of the region's 3 columns
    res = _make(tmp_path, dask["client"], GOOD_DAY, world_dir=world)
    normal = _make(tmp_path / "normal", dask["client"], GOOD_DAY)
    assert normal.status == DAY_FINAL and normal.coverage > 0.8
    assert res.status == DAY_PROVISIONAL
    assert res.coverage < 0.5 <= normal.coverage
    flags = open_cube(str(cube_dir(tmp_path))).quality_flag.sel(time=str(GOOD_DAY)).values
    lost = (flags.astype(np.int64) & FLAG_BITS["smap_missing"]) != 0
    assert lost.mean() > 0.5 and lost[:, 0].all()  # the west of the region
    prov = _cube(tmp_path).read_provenance(GOOD_DAY)
    assert prov is not None and prov["status"] == DAY_PROVISIONAL
    assert prov["coverage"] == pytest.approx(res.coverage)


def test_backfill_never_rewrites_final_days_unless_forced(
    tmp_path: Path, dask: dict[str, Any]
) -> None:
    client = dask["client"]
    s = settings(tmp_path)
    plan = build_plan(s, mode=MODE)
    # GOOD_DAY made "yesterday": provisional; OTHER_GOOD_DAY final.
    young = run_day(s, GOOD_DAY, client=client, plan=plan, today=GOOD_DAY + dt.timedelta(days=1))
    assert young.status == DAY_PROVISIONAL
    assert run_day(s, OTHER_GOOD_DAY, client=client, plan=plan, today=TODAY).status == DAY_FINAL
    store = cube_dir(tmp_path)
    final_files = {k: v for k, v in _tree(store).items() if k.split("/")[-1].startswith("155.")}
    final_files[f"provenance/{OTHER_GOOD_DAY}.json"] = _tree(store)[
        f"provenance/{OTHER_GOOD_DAY}.json"
    ]
    results = backfill(s, GOOD_DAY, OTHER_GOOD_DAY, client=client, plan=plan, today=TODAY)
    by_day = {r.date: r for r in results}
    assert by_day[GOOD_DAY].status == DAY_FINAL and not by_day[GOOD_DAY].skipped  # re-made
    assert by_day[OTHER_GOOD_DAY].skipped and "final" in by_day[OTHER_GOOD_DAY].reason
    gap = by_day[GAP_DAY]  # the region in a SMAP swath gap: reported, never published
    assert gap.skipped and gap.reason.startswith("no data") and "no land pixel" in gap.reason
    after = _tree(store)
    assert {k: after[k] for k in final_files} == final_files  # not rewritten: bytes and mtimes
    cube = _cube(tmp_path)
    assert cube.day_status(GAP_DAY) == DAY_ABSENT
    forced = backfill(
        s, OTHER_GOOD_DAY, OTHER_GOOD_DAY, client=client, plan=plan, today=TODAY, force=True
    )
    assert not forced[0].skipped and forced[0].status == DAY_FINAL
    again = _tree(store)
    prov_key = f"provenance/{OTHER_GOOD_DAY}.json"
    assert again[prov_key][1] > final_files[prov_key][1]  # rewritten when forced
    chunks = [k for k in final_files if k != prov_key]
    assert all(again[k][0] == final_files[k][0] for k in chunks)  # same bytes (deterministic)
