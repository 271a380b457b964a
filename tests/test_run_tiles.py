"""Daily production on Dask with a fake world: tiles, workers, status, guards, parity.

The fake catalog serves analytic fields on coarse lattices through the real
``NativeRaster``/``sample``/``build_feature_block`` path; the fake ensemble is a
fixed float32 formula. Both are pickled by value, so Dask workers (local
processes or ``dask worker`` subprocesses) need not import this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest

from grids import Grid
from pipeline.cluster import ClusterError, open_client
from pipeline.config import ClusterConfig, Settings
from pipeline.cube import (
    DAY_ABSENT,
    DAY_FINAL,
    DAY_PROVISIONAL,
    FLAG_BITS,
    Cube,
    LockHeldError,
    hold_lock,
    lock_path,
    open_cube,
    pack_u16,
)
from pipeline.errors import ConfigError, PublishGuardError
from pipeline.run import build_plan, latest_available_date, run_day, tile_features
from pipeline.run.day import backfill
from pipeline.run.static import read_static
from pipeline.sources.base import NativeRaster, Provenance, window_rows_cols

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ARCSEC3 = 1.0 / 1200.0
# 240 x 300 pixels of the conus-90m lattice (Oklahoma); tiles of 128 -> 2 x 3 tiles.
GRID = Grid("EPSG:4326", (ARCSEC3, 0.0, -97.6, 0.0, -ARCSEC3, 36.0), (240, 300))
DAY = dt.date(2020, 6, 1)
TODAY = dt.date(2020, 7, 1)  # "now" for the status rule: DAY is 30 days old
LAST_AVAILABLE = dt.date(2020, 6, 3)
SMAP_LATTICE = Grid("EPSG:4326", (0.05, 0.0, -180.0, 0.0, -0.05, 50.0), (2000, 7200))
KM_LATTICE = Grid("EPSG:4326", (0.01, 0.0, -98.0, 0.0, -0.01, 37.0), (200, 200))
SOIL_LATTICE = Grid("EPSG:4326", (1 / 240, 0.0, -98.0, 0.0, -1 / 240, 37.0), (960, 960))


# -- fake world ------------------------------------------------------------------------------
def _field(var: str, x: np.ndarray, y: np.ndarray, doy: int) -> np.ndarray:
    u, v = x + 97.5, y - 35.9
    if var == "smap":
        out = 0.25 + 0.1 * np.sin(8 * u + doy) + 0.05 * v
        out[(u + 0.5 * v > 0.02) & (u + 0.5 * v < 0.08)] = np.nan  # a swath gap
        return out
    if var == "ndvi":
        return 0.3 + 0.2 * np.cos(20 * v)
    if var == "lst":
        return 25.0 + 5.0 * u + 0.1 * doy
    if var == "precip":
        return np.maximum(0.0, 3.0 * np.sin(30 * u * v + doy))
    if var == "et":
        return 1.0 + 0.5 * np.cos(10 * u)
    if var == "sand":
        return 40.0 + 20.0 * np.sin(15 * u)
    if var == "clay":
        return 20.0 + 10.0 * np.cos(12 * v)
    if var == "ph":
        return 6.5 + 0.5 * u
    if var == "elevation":
        return 300.0 + 100.0 * v
    if var == "landcover":
        lc = np.full(x.shape, 12.0)
        lc[(u - 0.1) ** 2 + (v + 0.05) ** 2 < 0.03**2] = 17.0  # a lake
        lc[(np.abs(u + 0.05) < 0.02) & (np.abs(v - 0.05) < 0.02)] = 13.0  # a town
        return lc
    if var == "koppen":
        return np.full(x.shape, 14.0)
    raise KeyError(var)


@dataclass(frozen=True)
class FakeSource:
    variable: str
    lattice: Grid
    static: bool = False
    days_stale: int = 0
    until: dt.date = LAST_AVAILABLE

    def available(self, date: dt.date | None) -> Provenance | None:
        if self.static:
            return Provenance(self.variable, (f"fake/{self.variable}.tif",), "FAKE")
        assert date is not None
        if date > self.until:
            return None
        start = dt.date(date.year, 1, 1) if self.variable == "landcover" else date
        return Provenance(
            self.variable,
            (f"fake/{self.variable}/{start}.tif",),
            "FAKE",
            composite_start=start,
            days_stale=self.days_stale,
        )

    def native(self, date: dt.date | None, bounds: tuple[float, float, float, float]) -> Any:
        prov = self.available(date if not self.static else None)
        if prov is None:
            from pipeline.sources.base import MissingInputError

            raise MissingInputError(f"fake/{self.variable}", "absent", variable=self.variable)
        rc = window_rows_cols(self.lattice, bounds, 2)
        assert rc is not None
        win = self.lattice.window(*rc)
        x, y = win.pixel_centres()
        doy = 0 if date is None else date.timetuple().tm_yday
        data = _field(self.variable, x, y, doy).astype(np.float32)
        return NativeRaster(win, data, prov, lattice=self.lattice, offset=(rc[0], rc[2]))


class FakeCatalog:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def sources(self, mode: str = "maps") -> dict[str, FakeSource]:
        out = {
            "smap": FakeSource("smap", SMAP_LATTICE),
            "ndvi": FakeSource("ndvi", KM_LATTICE),
            "lst": FakeSource("lst", KM_LATTICE, days_stale=2),
            "precip": FakeSource("precip", KM_LATTICE),
            "et": FakeSource("et", KM_LATTICE),
            "landcover": FakeSource("landcover", SOIL_LATTICE, until=dt.date(2100, 1, 1)),
        }
        for var in ("sand", "clay", "ph", "elevation", "koppen"):
            out[var] = FakeSource(var, SOIL_LATTICE, static=True)
        return out


@dataclass(frozen=True)
class _Pred:
    mean: np.ndarray
    sd: np.ndarray
    spread: np.ndarray


class FakeEnsemble:
    """A fixed float32 formula of the nine features (m3 m-3)."""

    manifest_hash = "f0" * 32
    needs_categoricals = False

    def predict(self, x: np.ndarray, cats: np.ndarray | None = None) -> _Pred:
        x = np.asarray(x, dtype=np.float32)
        mean = (
            np.float32(0.02)
            + np.float32(0.8) * x[:, 0]
            + np.float32(0.001) * x[:, 2]
            + np.float32(0.002) * x[:, 3]
            - np.float32(0.0005) * x[:, 4]
        )
        sd = np.float32(0.01) + np.float32(0.05) * x[:, 1] ** 2
        spread = np.float32(0.002) + np.float32(1e-5) * x[:, 8]
        return _Pred(mean.astype(np.float32), sd.astype(np.float32), spread.astype(np.float32))


def fake_loader(model_dir: str) -> FakeEnsemble:
    return FakeEnsemble()


# -- helpers ---------------------------------------------------------------------------------
def _settings(root: Path, **output: Any) -> Settings:
    return Settings(
        grid={"name": "conus-90m", "tile_size": 128},
        output={"store": str(root), "chunk_size": 64, "first_year": 2020, **output},
        models={"dir": str(root / "models"), "arch": "dense"},
        # The fake SMAP's swath gap is the same band every day; these tests keep it a gap
        # (no nearest-pixel fill; the fallback chains are tested in test_run_fallback.py).
        sources={"neighbour_fill_pixels": 0},
    )


def _plan(settings: Settings, grid: Grid = GRID) -> Any:
    return build_plan(
        settings,
        model_dir=str(Path(settings.models.dir) / "dense"),
        catalog_factory=FakeCatalog,
        model_loader=fake_loader,
        grid=grid,
    )


def _chunk_digests(store: str, date: dt.date = DAY) -> dict[str, str]:
    """sha256 of every stored chunk file of the four data variables on ``date``."""
    root = Path(store)
    prefix = f"{(date - dt.date(2020, 1, 1)).days}."  # time index: the axis starts 2020-01-01
    out = {}
    for var in ("soil_moisture", "soil_moisture_sd", "member_spread", "quality_flag"):
        for p in sorted((root / var).iterdir()):
            if not p.name.startswith(prefix):
                continue
            out[f"{var}/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def client() -> Any:
    with open_client(ClusterConfig(n_workers=2, dashboard=False)) as c:
        yield c


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, client: Any) -> dict[str, Any]:
    """One day made on the 2-worker LocalCluster: the reference cube of this module."""
    root = tmp_path_factory.mktemp("ref")
    settings = _settings(root)
    plan = _plan(settings)
    res = run_day(settings, DAY, client=client, plan=plan, today=TODAY)
    return {"root": root, "settings": settings, "plan": plan, "result": res}


# -- tests -----------------------------------------------------------------------------------
def test_plan_refuses_chunks_that_do_not_divide_tiles(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"chunk_size 48 must divide grid\.tile_size 128"):
        _plan(_settings(tmp_path, chunk_size=48))


def test_plan_tiles_and_chunks(tmp_path: Path) -> None:
    plan = _plan(_settings(tmp_path))
    assert plan.layout.chunks == (1, 64, 64)
    assert [t.window for t in plan.tiles()][:2] == [(0, 128, 0, 128), (0, 128, 128, 256)]
    assert len(plan.tiles()) == 6
    assert plan.cube.url.endswith(f"dense-{'f0' * 6}.zarr")


def test_day_is_published_with_status_flags_and_provenance(reference: dict[str, Any]) -> None:
    res = reference["result"]
    plan = reference["plan"]
    assert not res.skipped and res.n_tiles == 6
    assert 0.5 < res.coverage < 1.0  # the swath gap removes part of the land
    assert res.status == DAY_FINAL
    cube = Cube(plan.cube, plan.layout)
    assert cube.day_status(DAY) == DAY_FINAL
    prov = cube.read_provenance(DAY)
    assert prov is not None
    assert prov["model_manifest_hash"] == FakeEnsemble.manifest_hash
    assert prov["inputs"]["smap"] == [f"fake/smap/{DAY}.tif"]
    assert prov["days_stale"]["lst"] == 2
    ds = open_cube(plan.cube.url).sel(time=str(DAY))
    flags = ds.quality_flag.values.astype(np.int64)
    sm = ds.soil_moisture.values
    water = (flags & FLAG_BITS["water"]) != 0
    urban = (flags & FLAG_BITS["urban"]) != 0
    gap = (flags & FLAG_BITS["smap_missing"]) != 0
    assert water.any() and urban.any() and gap.any()
    assert np.isnan(sm[water | urban | gap]).all()
    assert np.isfinite(sm[~(water | urban | gap)]).all()
    assert ((flags & FLAG_BITS["lst_padded"]) != 0).all()  # the LST composite was padded
    assert ((flags & FLAG_BITS["et_padded"]) == 0).all()
    latest = json.loads((reference["root"] / "latest.json").read_text())
    assert latest["store"] == plan.store_name
    # GDAL reads the same day with the grid's georeferencing.
    import rasterio

    idx = plan.layout.time_index(DAY)
    with rasterio.open(f'ZARR:"{plan.cube.url}":/soil_moisture:{idx}') as src:
        assert src.crs.to_epsg() == 4326
        assert tuple(src.transform)[:6] == pytest.approx(GRID.transform, abs=1e-12)
        band = src.read(1)
    np.testing.assert_allclose(
        np.where(band == 65535, np.nan, band * 1e-4), sm, atol=1e-9, equal_nan=True
    )


def test_station_pixel_holds_its_own_prediction(reference: dict[str, Any]) -> None:
    plan = reference["plan"]
    ds = open_cube(plan.cube.url).sel(time=str(DAY))
    # A "station" at 35.93 N, 97.41 W: its pixel on the grid by the floor rule.
    row, col = (int(v) for v in GRID.xy_to_rowcol(-97.41, 35.93))
    tile = plan.tile(row // 128, col // 128)
    splan = plan.static_for(2020, DAY)
    feat = tile_features(splan, tile, DAY)
    r, c = row - tile.row0, col - tile.col0
    pred = FakeEnsemble().predict(feat.x[:, r, c][None, :])
    assert read_static(splan, tile)["surface"][r, c] == 0  # land
    want = pack_u16(pred.mean)[0] * 1e-4
    assert ds.soil_moisture.values[row, col] == pytest.approx(want, abs=1e-9)
    assert ds.lat.values[row] == pytest.approx(36.0 - (row + 0.5) * ARCSEC3, abs=1e-12)
    assert ds.lon.values[col] == pytest.approx(-97.6 + (col + 0.5) * ARCSEC3, abs=1e-12)


def test_final_day_skipped_unless_forced_and_rewrite_is_identical(
    reference: dict[str, Any], client: Any
) -> None:
    settings, plan = reference["settings"], reference["plan"]
    before = _chunk_digests(plan.cube.url)
    again = run_day(settings, DAY, client=client, plan=plan, today=TODAY)
    assert again.skipped and again.status == DAY_FINAL
    forced = run_day(settings, DAY, client=client, plan=plan, today=TODAY, force=True)
    assert not forced.skipped and forced.status == DAY_FINAL
    assert _chunk_digests(plan.cube.url) == before


def test_recent_or_sparse_day_is_provisional(tmp_path: Path, client: Any) -> None:
    settings = _settings(tmp_path, final_after_days=3)
    plan = _plan(settings)
    recent = run_day(settings, DAY, client=client, plan=plan, today=DAY + dt.timedelta(days=1))
    assert recent.status == DAY_PROVISIONAL
    # The rule is the plan's (``plan.publish``, built from [output]), never re-read elsewhere.
    assert plan.publish.final_after_days == 3 and plan.publish.min_coverage_final == 0.5
    strict = replace(plan, publish=replace(plan.publish, min_coverage_final=0.99))
    res = run_day(settings, DAY, client=client, plan=strict, today=TODAY)
    assert res.coverage < 0.99 and res.status == DAY_PROVISIONAL
    assert Cube(plan.cube, plan.layout).day_status(DAY) == DAY_PROVISIONAL


def test_single_process_and_two_worker_processes_are_bit_identical(
    reference: dict[str, Any], tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    plan = _plan(settings)
    run_day(settings, DAY, client=None, plan=plan, today=TODAY)  # every task in this process
    got = _chunk_digests(plan.cube.url)
    want = _chunk_digests(reference["plan"].cube.url)
    assert got and got == want


def test_structure_guard_refuses_a_different_chunking_before_writing(
    reference: dict[str, Any], client: Any
) -> None:
    root = reference["root"]
    other = _settings(root, chunk_size=32)
    before = _chunk_digests(reference["plan"].cube.url)
    with pytest.raises(PublishGuardError, match=r"dense-f0f0f0f0f0f0\.zarr.*chunks"):
        run_day(other, dt.date(2020, 6, 2), client=client, plan=_plan(other), today=TODAY)
    assert _chunk_digests(reference["plan"].cube.url) == before
    cube = Cube(reference["plan"].cube, reference["plan"].layout)
    assert cube.day_status(dt.date(2020, 6, 2)) == DAY_ABSENT


def test_second_run_of_the_same_day_is_refused_by_the_lock(
    reference: dict[str, Any], client: Any
) -> None:
    settings, plan = reference["settings"], reference["plan"]
    day = dt.date(2020, 6, 2)
    with hold_lock(lock_path(plan.root, plan.store_name, day.isoformat()), "test"):
        with pytest.raises(LockHeldError, match=f"pid {os.getpid()}"):
            run_day(settings, day, client=client, plan=plan, today=TODAY)


def test_backfill_and_latest_available(reference: dict[str, Any], client: Any) -> None:
    settings, plan = reference["settings"], reference["plan"]
    assert latest_available_date(FakeCatalog(None), today=TODAY) == LAST_AVAILABLE
    results = backfill(
        settings, DAY, LAST_AVAILABLE + dt.timedelta(days=1), client=client, plan=plan, today=TODAY
    )
    by_day = {r.date: r for r in results}
    assert by_day[DAY].skipped  # final already
    assert by_day[dt.date(2020, 6, 2)].status == DAY_FINAL
    assert by_day[LAST_AVAILABLE].status == DAY_FINAL
    missing = by_day[LAST_AVAILABLE + dt.timedelta(days=1)]
    assert missing.skipped and "absent" in missing.reason
    # an input that has not landed yet is "waiting", not a failure (backfill exits 0)
    assert missing.reason.startswith("waiting for inputs"), missing.reason
    statuses = Cube(plan.cube, plan.layout).statuses()
    assert statuses[dt.date(2020, 6, 2)] == DAY_FINAL
    assert LAST_AVAILABLE + dt.timedelta(days=1) not in statuses


@pytest.mark.parametrize("kind", ["gateway", "kubernetes"])
def test_cluster_kinds_without_their_extra_say_what_to_install(kind: str) -> None:
    import importlib.util

    module = "dask_gateway" if kind == "gateway" else "dask_kubernetes"
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    with pytest.raises(ClusterError, match=f"cluster.kind={kind}: dask-{kind} is not installed"):
        with open_client(ClusterConfig(kind=kind)):
            pass


def test_unreachable_scheduler_is_one_clear_error() -> None:
    cfg = ClusterConfig(connect_timeout_s=2.0)
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=r"tcp://127\.0\.0\.1:9.*no Dask scheduler"):
        with open_client(cfg, scheduler="tcp://127.0.0.1:9"):
            pass
    assert time.monotonic() - t0 < 60  # bounded: never hangs


@pytest.mark.cluster
def test_dask_scheduler_and_two_worker_processes_make_the_same_cube(
    reference: dict[str, Any], tmp_path: Path
) -> None:
    dask = str(Path(sys.executable).parent / "dask")
    with socket.socket() as sock:  # a free loopback port for the scheduler
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    # The scheduler unpickles the graph, which names this module's fakes by reference.
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "PYTHONPATH": path}
    procs: list[subprocess.Popen[bytes]] = []
    log = open(tmp_path / "dask.log", "wb")
    try:
        # Scheduler and workers start together; workers retry until the scheduler listens.
        commands = [
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
        ]
        commands += [
            [
                *(dask, "worker", address, "--nthreads", "1", "--no-dashboard"),
                *("--host", "127.0.0.1", "--memory-limit", "2GB", "--death-timeout", "90"),
            ]
        ] * 2
        for cmd in commands:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
        settings = _settings(tmp_path)
        plan = _plan(settings)
        with open_client(ClusterConfig(connect_timeout_s=90), scheduler=address) as c:
            c.wait_for_workers(2, timeout=90)
            assert len(c.scheduler_info(n_workers=-1)["workers"]) == 2
            res = run_day(settings, DAY, client=c, plan=plan, today=TODAY)
            pids = set(c.run(os.getpid).values())
        assert res.status == DAY_FINAL and len(pids) == 2  # two worker processes did work
        assert _chunk_digests(plan.cube.url) == _chunk_digests(reference["plan"].cube.url)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        log.close()


# -- integration: the real readers on a tiny synthetic world, a real tiny Dense ensemble ------
@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 0.2 x 0.2 degree synthetic world (1 day, 6 ISMN stations) and a 1-member Dense
    ensemble trained for 2 epochs on models.synthetic's table (seeded)."""
    from models.synthetic import synthetic_table
    from models.train import train_ensemble
    from pipeline.synth import WorldSpec, write_world

    root = tmp_path_factory.mktemp("synth")
    spec = WorldSpec(
        region=(-97.7, 35.3, -97.5, 35.5),
        start=DAY,
        end=DAY,
        seed=3,
        n_stations=6,
        n_ameriflux=1,
        spinup_days=5,
    )
    write_world(spec, root / "world")
    model_dir = root / "models" / "dense"
    train_ensemble(
        "dense",
        synthetic_table(n_sites=20, n_days=30, seed=0),
        model_dir,
        seed=0,
        epochs=2,
        batch_size=256,
        patience=2,
        threads=1,
        weight_variables=("none",),
        log=lambda _m: None,
    )
    settings = Settings(
        sources={"root": str(root / "world")},
        grid={"name": "conus-90m", "region": spec.region, "tile_size": 128},
        output={"store": str(root / "cube"), "chunk_size": 64, "first_year": 2020},
        models={"dir": str(root / "models"), "arch": "dense"},
    )
    return {"root": root, "settings": settings, "world": root / "world"}


@pytest.mark.slow
def test_station_pixels_hold_the_real_ensemble_prediction_of_their_own_row(
    synth: dict[str, Any], client: Any
) -> None:
    from models.runtime import Ensemble

    settings = synth["settings"]
    plan = build_plan(settings, mode="training")  # 8-day LST: the training table's inputs
    res = run_day(settings, DAY, client=client, plan=plan, today=TODAY)
    assert res.n_tiles == 4 and res.coverage > 0.5
    ds = open_cube(plan.cube.url).sel(time=str(DAY))
    prov = Cube(plan.cube, plan.layout).read_provenance(DAY)
    assert prov is not None and prov["inputs"]["smap"][0].endswith("_001.h5")
    assert prov["static_inputs"]["sand"][0].endswith("sand_0-5cm_mean.tif")
    assert "sand" not in prov["inputs"]  # static layers come from the stack, listed above
    ens = Ensemble.load(plan.model_dir)
    splan = plan.static_for(2020, DAY)
    stations = json.loads((synth["world"] / "world.json").read_text())["stations"]
    checked = 0
    for st in stations:
        row, col = (int(v) for v in plan.grid.xy_to_rowcol(st["lon"], st["lat"]))
        if not plan.grid.contains_rowcol(np.array(row), np.array(col)):
            continue
        # The pixel centre the world put the station in is the cube's coordinate there.
        assert ds.lat.values[row] == pytest.approx(st["pixel_lat"], abs=1e-9)
        assert ds.lon.values[col] == pytest.approx(st["pixel_lon"], abs=1e-9)
        tile = plan.tile(row // plan.tile_size, col // plan.tile_size)
        feat = tile_features(splan, tile, DAY)
        r, c = row - tile.row0, col - tile.col0
        got = float(ds.soil_moisture.values[row, col])
        if feat.missing[r, c] or feat.surface[r, c] != 0:
            assert np.isnan(got)
            continue
        pred = ens.predict(feat.x[:, r, c][None, :])
        # One packed count (1e-4 m3 m-3): a single row and a whole tile may differ in the
        # last float32 bit inside onnxruntime, which can flip one rounding step.
        assert got == pytest.approx(float(pred.mean[0]), abs=1.01e-4)
        sd = float(ds.soil_moisture_sd.values[row, col])
        assert sd == pytest.approx(float(pred.sd[0]), abs=1.01e-4)
        checked += 1
    assert checked >= 3


@pytest.mark.slow
def test_cli_run_latest_then_export_on_the_synthetic_world(
    synth: dict[str, Any], client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    root = synth["root"]
    cfg = root / "cli.toml"
    cfg.write_text(
        f'[sources]\nroot = "{synth["world"]}"\n'
        f"[grid]\nregion = [-97.7, 35.3, -97.5, 35.5]\ntile_size = 128\n"
        f'[output]\nstore = "{root / "cli-cube"}"\nchunk_size = 64\nfirst_year = 2020\n'
        f'[models]\ndir = "{root / "models"}"\n'
    )
    address = client.scheduler.address
    base = ["--config", str(cfg)]
    code = main([*base, "run", "--date", "latest", "--mode", "training", "--scheduler", address])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"latest day with every input: {DAY}" in out  # the world holds one day
    assert "4 tiles" in out and "cube: " in out
    png = root / "day.png"
    assert main([*base, "export", "--date", str(DAY), "--format", "png", "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    # 2020 is long past and training-mode coverage is high: the day is final, so a second
    # run without --force is skipped.
    again = [*base, "run", "--date", str(DAY), "--mode", "training", "--scheduler", address]
    assert main(again) == 0
    assert "skipped (final already)" in capsys.readouterr().out
