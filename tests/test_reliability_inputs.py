"""Bad inputs through the user-facing paths: each case is a clear error naming the file or
key and the problem, or a documented flagged output; never a silently wrong map.

Covariate cases damage a private copy of the tiny synthetic world
(tests/test_reliability_world.py) and make the day with ``run_day`` on an in-process Dask
cluster (the same tile task as production); afterwards the day's status must still be 0
(absent) unless the case documents a flagged, published result. Model, configuration,
scheduler and output cases go through ``smdown`` (``pipeline.cli.main``): exit code 1 and
a single stderr line. The RELIABILITY.md table names every test here.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import rasterio
from test_reliability_world import (
    GOOD_DAY,
    MODE,
    TODAY,
    config,
    copy_model,
    copy_world,
    cube_dir,
    leftovers,
    settings,
    write_config,
)

from pipeline.cli import main
from pipeline.cube import DAY_ABSENT, DAY_FINAL, FLAG_BITS, Cube, open_cube
from pipeline.errors import RunError, SmdownError
from pipeline.run import build_plan, run_day
from pipeline.sources import (
    CorruptFileError,
    DateMismatchError,
    MissingInputError,
    OutOfRangeError,
    SchemaError,
    WrongCRSError,
)

SMAP_AM = "Soil_Moisture_Retrieval_Data_AM"
SMAP_PM = "Soil_Moisture_Retrieval_Data_PM"
# EASE-Grid 2.0 M09 rows/columns around the region (it covers rows 340-342, cols 881-883).
SMAP_ROWS, SMAP_COLS = slice(330, 352), slice(870, 895)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """An in-process Dask cluster listening on TCP (2 threads): ``client`` and ``address``."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            processes=False,
            n_workers=1,
            threads_per_worker=2,
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address=None,
        ) as lc,
        Client(lc, set_as_default=False) as c,
    ):
        yield {"client": c, "address": lc.scheduler_address}


# -- helpers ---------------------------------------------------------------------------------
def _one(world: Path, pattern: str) -> Path:
    (path,) = sorted(world.rglob(pattern))
    return path


def _smap(world: Path, day: dt.date = GOOD_DAY) -> Path:
    return _one(world, f"SMAP_L3_SM_P_E_{day:%Y%m%d}_R19240_*.h5")


def _rewrite_tif(path: Path, func: Callable[[np.ndarray], np.ndarray], **profile: Any) -> None:
    """Rewrite a single-band GeoTIFF with ``func(data)`` and profile overrides."""
    with rasterio.open(path) as src:
        data = src.read(1)
        prof = src.profile
    prof.update(profile)
    out = func(data)
    prof["dtype"] = str(out.dtype)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(out, 1)


def _run(tmp_path: Path, world: Path, client: Any, **sections: Any) -> Any:
    s = settings(tmp_path, world_dir=world, **sections)
    return run_day(s, GOOD_DAY, client=client, plan=build_plan(s, mode=MODE), today=TODAY)


def _status(tmp_path: Path) -> int:
    stores = list((tmp_path / "cube").glob("rf-*.zarr"))
    if not stores:
        return DAY_ABSENT  # not even created
    from pipeline.cube import read_layout
    from pipeline.cube.layout import StoreSpec

    spec = StoreSpec(str(stores[0]))
    return Cube(spec, read_layout(spec)).day_status(GOOD_DAY)


def _fails_naming(
    tmp_path: Path,
    client: Any,
    damage: Callable[[Path], Path],
    error: type[BaseException],
    problem: str,
    **sections: Any,
) -> SmdownError:
    """Damage a world copy, make the day: ``error`` naming the damaged file and ``problem``;
    the day stays absent and no lock or temporary file is left."""
    world = copy_world(tmp_path)
    bad = damage(world)
    with pytest.raises(error) as err:
        _run(tmp_path, world, client, **sections)
    msg = str(err.value)
    assert str(bad) in msg, msg
    assert problem.lower() in msg.lower(), msg
    assert "\n" not in msg
    assert _status(tmp_path) == DAY_ABSENT
    assert leftovers(tmp_path) == []
    assert isinstance(err.value, SmdownError)
    return err.value


def _cli_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``smdown -q ARGS``: exit code 1 and exactly one stderr line; returns it."""
    code = main(["-q", *args])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1, err
    assert len(lines) == 1, err
    assert lines[0].startswith("smdown: error: ")
    return lines[0]


# -- corrupt files ---------------------------------------------------------------------------
def test_truncated_smap_hdf5_fails_the_day_naming_the_file(tmp_path: Path, cluster: Any) -> None:
    def damage(world: Path) -> Path:
        path = _smap(world)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    _fails_naming(tmp_path, cluster["client"], damage, CorruptFileError, "HDF5")


def test_corrupt_chirps_geotiff_fails_the_day_naming_the_file(tmp_path: Path, cluster: Any) -> None:
    def damage(world: Path) -> Path:
        path = _one(world, f"chirps-v2.0.{GOOD_DAY:%Y.%m.%d}.tif")
        data = bytearray(path.read_bytes())
        rng = np.random.default_rng(0)
        data[400:] = rng.bytes(len(data) - 400)  # header kept, image data garbage
        path.write_bytes(bytes(data))
        return path

    _fails_naming(tmp_path, cluster["client"], damage, CorruptFileError, "")


# -- schema ----------------------------------------------------------------------------------
def test_smap_without_the_pm_group_fails_naming_the_group(tmp_path: Path, cluster: Any) -> None:
    def damage(world: Path) -> Path:
        path = _smap(world)
        with h5py.File(path, "r+") as f:
            del f[SMAP_PM]
        return path

    _fails_naming(tmp_path, cluster["client"], damage, SchemaError, SMAP_PM)


def test_smap_without_soil_moisture_fails_naming_the_variable(tmp_path: Path, cluster: Any) -> None:
    def damage(world: Path) -> Path:
        path = _smap(world)
        with h5py.File(path, "r+") as f:
            del f[f"{SMAP_AM}/soil_moisture"]
        return path

    _fails_naming(tmp_path, cluster["client"], damage, SchemaError, "soil_moisture")


# -- georeferencing and dates ----------------------------------------------------------------
def test_soilgrids_in_the_wrong_crs_fails_naming_the_file(tmp_path: Path, cluster: Any) -> None:
    def damage(world: Path) -> Path:
        path = _one(world, "sand_0-5cm_mean.tif")
        _rewrite_tif(path, lambda a: a, crs="EPSG:3857")  # same numbers, Web Mercator
        return path

    _fails_naming(tmp_path, cluster["client"], damage, WrongCRSError, "CRS")


def test_smap_file_name_date_disagreeing_with_metadata_fails(tmp_path: Path, cluster: Any) -> None:
    def damage(world: Path) -> Path:
        path = _smap(world)
        with h5py.File(path, "r+") as f:
            f["Metadata/Extent"].attrs["rangeBeginningDateTime"] = "2020-05-31T00:00:00.000Z"
        return path

    err = _fails_naming(tmp_path, cluster["client"], damage, DateMismatchError, "2020-05-31")
    assert "2020-06-01" in str(err)


# -- values ----------------------------------------------------------------------------------
def test_all_fill_smap_day_is_refused_not_published(tmp_path: Path, cluster: Any) -> None:
    def damage(world: Path) -> Path:
        path = _smap(world)
        with h5py.File(path, "r+") as f:
            for name in (f"{SMAP_AM}/soil_moisture", f"{SMAP_PM}/soil_moisture_pm"):
                f[name][SMAP_ROWS, SMAP_COLS] = np.float32(-9999.0)  # every cell near the region
        return path

    err = _fails_naming(tmp_path, cluster["client"], damage, RunError, "no land pixel")
    assert "SMAP has no valid retrieval" in str(err) and "not published" in str(err)


def test_smap_above_one_fails_as_out_of_range(tmp_path: Path, cluster: Any) -> None:
    def damage(world: Path) -> Path:
        path = _smap(world)
        with h5py.File(path, "r+") as f:
            for name in (f"{SMAP_AM}/soil_moisture", f"{SMAP_PM}/soil_moisture_pm"):
                sm = f[name][SMAP_ROWS, SMAP_COLS]
                # percent instead of m3 m-3
                f[name][SMAP_ROWS, SMAP_COLS] = np.where(sm > 0, sm * 100.0, sm)
        return path

    err = _fails_naming(tmp_path, cluster["client"], damage, OutOfRangeError, "physical range")
    assert "[0, 1]" in str(err)


def test_sand_above_100_percent_fails_as_out_of_range(tmp_path: Path, cluster: Any) -> None:
    def damage(world: Path) -> Path:
        path = _one(world, "sand_0-5cm_mean.tif")
        # g/kg * 3: most values above 1000 g/kg = 100 %
        _rewrite_tif(path, lambda a: np.where(a > 0, a * 3, a).astype(np.int16))
        return path

    err = _fails_naming(tmp_path, cluster["client"], damage, OutOfRangeError, "physical range")
    assert "sand" in str(err) and "[0, 100]" in str(err)


def test_nan_and_inf_in_a_covariate_are_flagged_missing_never_predicted(
    tmp_path: Path, cluster: Any
) -> None:
    """Documented flagged output: pixels whose DEM is NaN or +inf get no prediction and carry
    ``input_missing``; the rest of the day is published normally."""
    world = copy_world(tmp_path)
    dem = _one(world, "*_dem.tif")
    with rasterio.open(dem) as src:
        rows, cols = src.index(-97.62, 35.42)  # a patch inside the region (MERIT 3")

    def poison(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[rows : rows + 30, cols : cols + 30] = np.nan
        a[rows + 30 : rows + 60, cols : cols + 30] = np.inf
        return a

    _rewrite_tif(dem, poison)
    res = _run(tmp_path, world, cluster["client"])
    assert res.status == DAY_FINAL
    ds = open_cube(str(cube_dir(tmp_path))).sel(time=str(GOOD_DAY))
    lat, lon = ds.lat.values, ds.lon.values
    # The poisoned DEM cells (3 arc-seconds, the same lattice as the map) on the map.
    top = 35.42 + 1 / 2400
    r0 = int(np.argmin(np.abs(lat - (top - 1 / 2400))))
    c0 = int(np.argmin(np.abs(lon - (-97.62 + 1 / 2400))))
    patch = (slice(r0 + 2, r0 + 58), slice(c0 + 2, c0 + 28))
    flags = ds.quality_flag.values[patch].astype(np.int64)
    assert ((flags & FLAG_BITS["input_missing"]) != 0).all()
    assert np.isnan(ds.soil_moisture.values[patch]).all()
    # Elsewhere the map is made.
    assert np.isfinite(ds.soil_moisture.values).mean() > 0.5


def test_missing_static_layer_fails_naming_the_path(tmp_path: Path, cluster: Any) -> None:
    def damage(world: Path) -> Path:
        path = _one(world, "clay_0-5cm_mean.tif")
        path.unlink()
        return path.parent

    _fails_naming(tmp_path, cluster["client"], damage, MissingInputError, "clay")


def test_missing_smap_file_of_the_day_fails_naming_what_was_looked_for(
    tmp_path: Path, cluster: Any
) -> None:
    def damage(world: Path) -> Path:
        for p in world.rglob(f"SMAP_L3_SM_P_E_{GOOD_DAY:%Y%m%d}_*.h5"):
            p.unlink()
        return world / "SMAP"

    err = _fails_naming(tmp_path, cluster["client"], damage, MissingInputError, "no SPL3SMP_E")
    assert f"SMAP_L3_SM_P_E_{GOOD_DAY:%Y%m%d}" in str(err)


def test_composite_staler_than_the_padding_limit_fails(tmp_path: Path, cluster: Any) -> None:
    """The only ET composite is the one of 16-23 May: 9 days stale on 1 June, above the
    7-day padding; with the limit raised it is used and the day is flagged ``et_padded``."""
    world = copy_world(tmp_path)
    old = world / "MODIS" / "MOD16A2.061" / "2020.05.16"
    for p in sorted((world / "MODIS" / "MOD16A2.061" / "2020.06.01").iterdir()):
        old.mkdir(exist_ok=True)
        p.rename(old / p.name.replace("A2020153", "A2020137"))
    shutil.rmtree(world / "MODIS" / "MOD16A2.061" / "2020.06.01")
    with pytest.raises(MissingInputError) as err:
        _run(tmp_path, world, cluster["client"])
    msg = str(err.value)
    assert "et" in msg and "MOD16A2" in msg and "7" in msg, msg
    assert _status(tmp_path) == DAY_ABSENT
    res = _run(tmp_path, world, cluster["client"], sources={"et_padding_days": 9})
    assert res.status == DAY_FINAL
    flags = open_cube(str(cube_dir(tmp_path))).quality_flag.sel(time=str(GOOD_DAY)).values
    land = (flags.astype(np.int64) & (FLAG_BITS["water"] | FLAG_BITS["urban"])) == 0
    # The padded bit is per pixel: every land pixel the (padded) composite served.
    served = land & ((flags.astype(np.int64) & FLAG_BITS["input_missing"]) == 0)
    assert served.mean() > 0.5
    assert ((flags[served].astype(np.int64) & FLAG_BITS["et_padded"]) != 0).all()


# -- errors keep their type across processes ---------------------------------------------------
def test_source_errors_cross_process_boundaries_with_their_type_and_file(tmp_path: Path) -> None:
    """Dask pickles a task's error and its cause chain (tblib); a rasterio cause must not
    turn a ``CorruptFileError`` into a bare ``Exception`` on the driver."""
    import pickle

    from distributed.core import error_message
    from distributed.protocol import pickle as dask_pickle

    from pipeline.sources.chirps import read_chirps_tif

    world = copy_world(tmp_path)
    path = _one(world, f"chirps-v2.0.{GOOD_DAY:%Y.%m.%d}.tif")
    data = bytearray(path.read_bytes())
    data[400:] = np.random.default_rng(0).bytes(len(data) - 400)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError) as err:
        read_chirps_tif(path, (-97.7, 35.3, -97.5, 35.5))
    msg = error_message(err.value)
    back = dask_pickle.loads(msg["exception"].data)
    assert type(back) is CorruptFileError
    assert back.path == str(path) and str(back) == str(err.value)
    lock = pickle.loads(pickle.dumps(MissingInputError(path, "gone", variable="et", date=GOOD_DAY)))
    assert (lock.variable, lock.date, lock.path) == ("et", GOOD_DAY, str(path))


# -- model -----------------------------------------------------------------------------------
def _run_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str, **cfg: Any) -> str:
    path = write_config(tmp_path / "smdown.toml", config(tmp_path, **cfg))
    return _cli_error(
        capsys, "--config", str(path), "run", "--date", str(GOOD_DAY), "--mode", MODE, *extra
    )


def _onnx_entry(models: Path, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest entry of the ONNX file the runtime opens first (fused, else member 0)."""
    manifest = manifest or json.loads((models / "manifest.json").read_text())
    entry = manifest.get("fused") or manifest["members"][0]["onnx"]
    assert isinstance(entry, dict)
    return entry


def test_corrupted_onnx_file_is_refused_by_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = copy_model(tmp_path)
    onnx_file = models / _onnx_entry(models)["file"]
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    line = _run_cli(tmp_path, capsys, models=models.parent)
    assert str(onnx_file) in line and "does not match the manifest" in line
    assert not (tmp_path / "cube").exists()


def test_corrupted_onnx_file_with_a_matching_hash_is_refused_by_onnxruntime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    models = copy_model(tmp_path)
    manifest = json.loads((models / "manifest.json").read_text())
    entry = _onnx_entry(models, manifest)
    onnx_file = models / entry["file"]
    onnx_file.write_bytes(onnx_file.read_bytes()[:200])  # truncated, manifest re-hashed
    entry["sha256"] = hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    (models / "manifest.json").write_text(json.dumps(manifest))
    line = _run_cli(tmp_path, capsys, models=models.parent)
    assert str(onnx_file) in line and "onnxruntime cannot open it" in line


def test_manifest_that_is_not_json_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = copy_model(tmp_path)
    path = models / "manifest.json"
    path.write_text(path.read_text()[:100])
    line = _run_cli(tmp_path, capsys, models=models.parent)
    assert str(path) in line and "not readable JSON" in line


def test_manifest_with_another_feature_order_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = copy_model(tmp_path)
    path = models / "manifest.json"
    manifest = json.loads(path.read_text())
    names = manifest["feature_names"]
    names[1], names[2] = names[2], names[1]  # ndvi <-> lst
    path.write_text(json.dumps(manifest))
    line = _run_cli(tmp_path, capsys, models=models.parent)
    assert str(path) in line and "feature_names" in line and "another feature order" in line


# -- configuration ---------------------------------------------------------------------------
def test_config_with_a_misspelt_key_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = config(tmp_path)
    data["output"]["chunk_sise"] = data["output"].pop("chunk_size")
    path = write_config(tmp_path / "smdown.toml", data)
    line = _cli_error(capsys, "--config", str(path), "run", "--date", str(GOOD_DAY))
    assert str(path) in line and "'output.chunk_sise'" in line and "unknown key" in line


def test_config_with_a_wrong_value_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = config(tmp_path)
    data["grid"]["tile_size"] = "big"
    path = write_config(tmp_path / "smdown.toml", data)
    line = _cli_error(capsys, "--config", str(path), "run", "--date", str(GOOD_DAY))
    assert str(path) in line and "'grid.tile_size'" in line and "integer" in line


def test_config_that_is_not_toml_names_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "smdown.toml"
    path.write_text('[output]\nstore = "cube\n')
    line = _cli_error(capsys, "--config", str(path), "run", "--date", str(GOOD_DAY))
    assert str(path) in line and "not valid TOML" in line and "line 2" in line


def test_bad_environment_override_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path / "smdown.toml", config(tmp_path))
    monkeypatch.setenv("SMDOWN__CLUSTER__N_WORKERS", "0")
    line = _cli_error(capsys, "--config", str(path), "run", "--date", str(GOOD_DAY))
    assert "'cluster.n_workers'" in line and "greater than or equal to 1" in line


# -- cluster and output ----------------------------------------------------------------------
def test_unreachable_scheduler_is_one_line_naming_the_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _run_cli(
        tmp_path, capsys, "--scheduler", "tcp://127.0.0.1:9", cluster={"connect_timeout_s": 2.0}
    )
    assert "tcp://127.0.0.1:9" in line and "no Dask scheduler reachable within 2 s" in line
    assert not (tmp_path / "cube").exists()


def test_output_path_under_a_regular_file_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cluster: Any
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output folder should be")
    line = _run_cli(
        tmp_path,
        capsys,
        "--scheduler",
        cluster["address"],
        output={"store": str(blocker / "cube")},
    )
    assert str(blocker) in line and "Not a directory" in line
    assert blocker.read_text().startswith("a file")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 192 KiB tmpfs: room for the cube's metadata, not for a day of chunks."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_fails_the_day_naming_the_store_and_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cluster: Any, tiny_disk: Path
) -> None:
    line = _run_cli(
        tmp_path,
        capsys,
        "--scheduler",
        cluster["address"],
        output={"store": str(tiny_disk)},
    )
    assert "No space left on device" in line and str(tiny_disk) in line
    for store in tiny_disk.glob("rf-*.zarr"):
        from pipeline.cube import read_layout
        from pipeline.cube.layout import StoreSpec

        spec = StoreSpec(str(store))
        assert Cube(spec, read_layout(spec)).day_status(GOOD_DAY) == DAY_ABSENT
    assert leftovers(tiny_disk) == []


# -- in-situ files -----------------------------------------------------------------------------
def _insitu(
    tmp_path: Path, world: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    path = write_config(tmp_path / "smdown.toml", config(tmp_path, world_dir=world))
    code = main(["-q", "--config", str(path), "insitu", "--out", str(tmp_path / "insitu"), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_malformed_ismn_file_is_skipped_and_reported_or_fails_strictly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = copy_world(tmp_path)
    bad = _one(world, "ARM_ARM_ARM-001_sm_*.stm")
    lines = bad.read_text().splitlines()
    lines[5] = "2020/06/01 05:00   zero.three G M"  # a value that is not a number
    bad.write_text("\n".join(lines) + "\n")
    code, out, _ = _insitu(tmp_path, world, capsys)
    assert code == 0 and "skipped files (1)" in out and str(bad) in out
    line = _cli_error(
        capsys,
        "--config",
        str(tmp_path / "smdown.toml"),
        "insitu",
        "--out",
        str(tmp_path / "strict"),
        "--strict",
    )
    assert str(bad) in line and "line 6: value is not a number" in line


def _rewrite_ameriflux(world: Path, edit: Callable[[str], str]) -> Path:
    (zpath,) = sorted((world / "AmeriFlux").glob("*.zip"))
    with zipfile.ZipFile(zpath) as z:
        members = {n: z.read(n) for n in z.namelist()}
    name = next(n for n in members if n.endswith(".csv"))
    members[name] = edit(members[name].decode("utf-8")).encode("utf-8")
    with zipfile.ZipFile(zpath, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return zpath


def test_malformed_ameriflux_file_fails_strictly_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = copy_world(tmp_path)
    zpath = _rewrite_ameriflux(world, lambda t: t.replace("TIMESTAMP_START", "TIME_BEGIN", 1))
    line = _cli_error(
        capsys,
        "--config",
        str(write_config(tmp_path / "smdown.toml", config(tmp_path, world_dir=world))),
        "insitu",
        "--out",
        str(tmp_path / "strict"),
        "--strict",
    )
    assert zpath.name in line and "TIMESTAMP_START" in line


def test_ameriflux_swc_as_a_fraction_is_a_unit_error_dropped_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Documented flagged output: SWC columns holding fractions (max <= 1) instead of percent
    are dropped, counted in the QC table and named in the QC notes; never used as percent."""

    def to_fraction(text: str) -> str:
        rows = [r.split(",") for r in text.splitlines()]
        head = next(i for i, r in enumerate(rows) if r[0] == "TIMESTAMP_START")
        col = rows[head].index("SWC")
        for r in rows[head + 1 :]:
            if r[col] != "-9999":
                r[col] = f"{float(r[col]) / 100:.4f}"
        return "\n".join(",".join(r) for r in rows) + "\n"

    world = copy_world(tmp_path)
    _rewrite_ameriflux(world, to_fraction)
    code, out, _ = _insitu(tmp_path, world, capsys)
    assert code == 0
    rule = next(ln for ln in out.splitlines() if "SWC in percent" in ln)
    kept, dropped = (int(v) for v in rule.split()[-3:-1])
    assert kept == 0 and dropped > 100
    qc = json.loads((tmp_path / "insitu_qc.json").read_text())
    assert any("US-X01" in n and "SWC" in n and "unit error" in n for n in qc["notes"])
