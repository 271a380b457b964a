"""The tiny world, tiny model and cluster helpers the reliability suite shares, and the
baseline it is judged against: a clean day maps, a day inside a SMAP swath gap is refused.

The world is a 0.2 x 0.2 degree synthetic world (``pipeline.synth``, real file formats,
seed 3, 2020-06-01..04) and the model a 3-tree-per-class random forest exported to ONNX
(``models.train``); both are made once per test process into a private temporary folder
and treated as read-only (tests that damage files copy the world first).
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from pipeline.config import Settings

cloudpickle.register_pickle_by_value(sys.modules[__name__])

REGION = (-97.7, 35.3, -97.5, 35.5)
START, END = dt.date(2020, 6, 1), dt.date(2020, 6, 4)
# SMAP of this world covers part of the region on these days (a swath) ...
GOOD_DAY, OTHER_GOOD_DAY = dt.date(2020, 6, 1), dt.date(2020, 6, 4)
# ... and none of it on this one (the region lies in a swath gap: SMAP all fill).
GAP_DAY = dt.date(2020, 6, 2)
# The 8-day LST composite (``--mode training``): the daily MOD21A1D of this world is cloudy
# over the region on the SMAP days, which would leave nothing to map.
MODE = "training"
# The files these tests damage are the MODIS Terra ones (MOD16A2 folders ...).
FAMILY = "modis-terra"
TODAY = dt.date(2020, 7, 1)  # "now" for the status rule: every day is old enough to be final
TILE, CHUNK = 128, 64  # 240 x 240 pixels: 2 x 2 tiles of 2 x 2 chunks
DATA_VARS = ("soil_moisture", "soil_moisture_sd", "member_spread", "quality_flag")
SRC = Path(__file__).resolve().parents[1]


@cache
def _root() -> Path:
    """This process's private folder (made on first use: Dask workers importing this module
    to unpickle a task make none)."""
    root = Path(tempfile.mkdtemp(prefix="smdown-reliability-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@cache
def world() -> Path:
    """The shared synthetic world (read-only): SMAP, MODIS, CHIRPS, SoilGrids, MERIT, ..."""
    from pipeline.synth import WorldSpec, write_world

    spec = WorldSpec(
        region=REGION,
        start=START,
        end=END,
        seed=3,
        n_stations=2,
        n_ameriflux=1,
        spinup_days=5,
        family=FAMILY,
    )
    out = _root() / "world"
    write_world(spec, out)
    return out


@cache
def model_dir() -> Path:
    """A real, tiny RF ensemble (3 trees per texture class, seed 0) in ``<dir>/rf``."""
    from models.synthetic import synthetic_table
    from models.train import train_ensemble

    out = _root() / "models" / "rf"
    table = synthetic_table(n_sites=12, n_days=20, seed=0)
    train_ensemble("rf", table, out, seed=0, n_estimators=3, threads=1, log=lambda _m: None)
    return out


def copy_world(dest: Path) -> Path:
    """A private copy of the world (for tests that damage files)."""
    target = dest / "world"
    shutil.copytree(world(), target)
    return target


def copy_model(dest: Path) -> Path:
    """A private copy of the model folder (``<dest>/models/rf``)."""
    target = dest / "models" / "rf"
    shutil.copytree(model_dir(), target)
    return target


def config(
    out: Path,
    *,
    world_dir: Path | None = None,
    models: Path | None = None,
    **sections: dict[str, Any],
) -> dict[str, Any]:
    """The configuration (as TOML-ready dict) of a run on the tiny world into ``out/cube``."""
    data: dict[str, Any] = {
        # SMAP of the day only: these tests make days in a swath gap (the fallback to
        # earlier retrievals is tested in test_run_fallback.py).
        "sources": {
            "root": str(world_dir or world()),
            "family": FAMILY,
            "smap_max_age_days": 0,
        },
        "grid": {"name": "conus-90m", "region": list(REGION), "tile_size": TILE},
        "models": {"dir": str(models or model_dir().parent), "arch": "rf"},
        "output": {"store": str(out / "cube"), "chunk_size": CHUNK, "first_year": 2020},
        "cluster": {"n_workers": 1, "dashboard": False, "connect_timeout_s": 20.0},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


def settings(out: Path, **kwargs: Any) -> Settings:
    return Settings(**config(out, **kwargs))


def toml_text(data: dict[str, Any]) -> str:
    """Render a two-level dict as TOML (strings, numbers, booleans, lists)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]", *(f"{kk} = {value(vv)}" for kk, vv in v.items())]
    return "\n".join(lines) + "\n"


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(toml_text(data), encoding="utf-8")
    return path


def cube_dir(out: Path) -> Path:
    """The one cube store under ``out/cube`` (``rf-<hash>.zarr``)."""
    (store,) = sorted((out / "cube").glob("rf-*.zarr"))
    return store


def chunk_digests(store: Path, date: dt.date) -> dict[str, str]:
    """sha256 of every stored chunk file of the four data variables on ``date``."""
    prefix = f"{(date - dt.date(2020, 1, 1)).days}."  # the time axis starts 2020-01-01
    out = {}
    for var in DATA_VARS:
        for p in sorted((store / var).iterdir()):
            if p.name.startswith(prefix):
                out[f"{var}/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def leftovers(root: Path) -> list[str]:
    """Lock files and temporary/partial files anywhere under ``root``."""
    bad = []
    for p in root.rglob("*"):
        name = p.name
        if name.endswith((".lock", ".partial", ".tmp", ".part")) or ".partial" in name:
            bad.append(str(p.relative_to(root)))
    return sorted(bad)


def env() -> dict[str, str]:
    """Environment of subprocesses: this checkout and tests/ importable, one BLAS thread."""
    path = os.pathsep.join([str(SRC), str(SRC / "tests"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def smdown(*args: str) -> list[str]:
    """The ``smdown`` command line run in a fresh interpreter."""
    code = "import sys; from pipeline.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


@contextmanager
def dask_cluster(log_path: Path, n_workers: int = 2) -> Iterator[str]:
    """``dask scheduler`` + ``dask worker`` processes on 127.0.0.1; yields the address.

    Always torn down (terminate, then kill after 20 s).
    """
    dask = str(Path(sys.executable).parent / "dask")
    sched_file = log_path.with_suffix(".scheduler.json")
    procs: list[subprocess.Popen[bytes]] = []
    log = open(log_path, "ab")
    try:
        procs.append(
            subprocess.Popen(
                [
                    *(dask, "scheduler", "--host", "127.0.0.1", "--port", "0"),
                    *("--no-dashboard", "--scheduler-file", str(sched_file)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env(),
            )
        )
        deadline = time.monotonic() + 90
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), "dask scheduler did not start within 90 s"
        time.sleep(0.2)
        address = str(json.loads(sched_file.read_text())["address"])
        for _ in range(n_workers):
            procs.append(
                subprocess.Popen(
                    [
                        *(dask, "worker", address, "--nthreads", "1", "--no-dashboard"),
                        *("--host", "127.0.0.1", "--memory-limit", "2GB", "--death-timeout", "60"),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env(),
                )
            )
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        log.close()


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started with ``start_new_session=True`` and everything it spawned."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def threaded_client() -> Iterator[Any]:
    """An in-process Dask cluster (2 threads): enough for bad-input cases."""
    from distributed import Client

    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c:
        yield c


# -- baseline ---------------------------------------------------------------------------------
def test_a_clean_day_maps_and_a_swath_gap_day_is_refused(
    tmp_path: Path, threaded_client: Any
) -> None:
    import numpy as np

    from pipeline.cube import DAY_ABSENT, DAY_FINAL, FLAG_BITS, Cube, open_cube
    from pipeline.errors import RunError
    from pipeline.run import build_plan, run_day

    s = settings(tmp_path)
    plan = build_plan(s, mode=MODE)
    res = run_day(s, GOOD_DAY, client=threaded_client, plan=plan, today=TODAY)
    assert res.status == DAY_FINAL and res.n_tiles == 4
    assert 0.8 < res.coverage < 1.0  # SMAP quality flags and NDVI/ET fill remove a few
    sm = open_cube(plan.cube.url).soil_moisture.sel(time=str(GOOD_DAY)).values
    assert np.nanmin(sm) > 0.0 and np.nanmax(sm) < 0.7
    # The whole region in a swath gap: never an all-fill day published, status stays absent.
    with pytest.raises(RunError, match=r"2020-06-02: no land pixel .* SMAP has no valid") as err:
        run_day(s, GAP_DAY, client=threaded_client, plan=plan, today=TODAY)
    assert "SMAP_L3_SM_P_E_20200602" in str(err.value)
    cube = Cube(plan.cube, plan.layout)
    assert cube.day_status(GAP_DAY) == DAY_ABSENT
    assert cube.day_status(GOOD_DAY) == DAY_FINAL
    flags = open_cube(plan.cube.url).quality_flag.sel(time=str(GOOD_DAY)).values
    assert ((flags.astype(int) & FLAG_BITS["smap_missing"]) == 0).any()
