"""A cube written by the previous smdown (zarr-python 2.18) is read and extended as it is.

``tests/data/cube-zarr2-smdown0.1.zarr`` was written by smdown at commit 7ead9f8
(zarr 2.18.7, numcodecs 0.15, the year-sized time axis): 70 x 100 pixels, 32-pixel
chunks, 2020-06-01 published final from one 64 x 64 tile of ``default_rng(7)`` values.
The store format is unchanged (Zarr format 2) and zarr-python 3 reads it as it is; the
layers added since (``smap_age_days``, ``input_fallback``, issue 17) are added by
``smdown migrate`` (metadata only: every stored chunk stays byte-identical), after which
new days are written beside the old ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from grids import Grid
from pipeline.cube import (
    DAY_FINAL,
    FLAG_BITS,
    Cube,
    CubeLayout,
    ModelInfo,
    StoreSpec,
    encode_tile,
    open_cube,
    pack_u16,
    read_layout,
    structure_differences,
    write_region,
)
from pipeline.errors import PublishGuardError

OLD = Path(__file__).parent / "data" / "cube-zarr2-smdown0.1.zarr"
ARCSEC3 = 1.0 / 1200.0
GRID = Grid("EPSG:4326", (ARCSEC3, 0.0, -98.0, 0.0, -ARCSEC3, 36.0), (70, 100))
LAYOUT = CubeLayout(GRID, 32, 2020)
MODEL = ModelInfo("dense", "ab" * 32, "0.1.0", "test-grid")
DAY = dt.date(2020, 6, 1)


def _old_tile() -> tuple[np.ndarray, np.ndarray]:
    mean = np.random.default_rng(7).uniform(0.02, 0.5, (64, 64)).astype(np.float32)
    mean[0, 0] = np.nan
    flags = np.zeros((64, 64), np.uint8)
    flags[0, 0] = FLAG_BITS["input_missing"]
    return mean, flags


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".z")
    }


@pytest.fixture
def old_cube(tmp_path: Path) -> Cube:
    path = tmp_path / "cube.zarr"
    shutil.copytree(OLD, path)
    return Cube(StoreSpec(str(path)), LAYOUT)


def _migrate(cube: Cube, capsys: pytest.CaptureFixture[str]) -> str:
    from pipeline.cli import main

    assert main(["migrate", "--store", cube.spec.url]) == 0
    return capsys.readouterr().out


def test_smdown_migrate_adds_the_new_layers_and_rewrites_nothing(
    old_cube: Cube, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = old_cube.spec
    assert structure_differences(spec, LAYOUT, MODEL) == [
        "variables missing: input_fallback, smap_age_days"
    ]
    with pytest.raises(PublishGuardError, match="smdown migrate --store"):
        old_cube.guard_structure(MODEL)
    before = _digests(Path(spec.url))
    out = _migrate(old_cube, capsys)
    assert "added smap_age_days, input_fallback" in out
    assert structure_differences(spec, LAYOUT, MODEL) == []
    after = _digests(Path(spec.url))
    assert {k: after[k] for k in before} == before  # every stored file as it was
    assert sorted(set(after) - set(before)) == []  # the new layers have no chunks yet
    assert "already current" in _migrate(old_cube, capsys)
    ds = open_cube(spec.url).sel(time=str(DAY))
    assert (ds.input_fallback.values == 255).all() and ds.input_fallback.dtype == np.uint8
    assert (ds.smap_age_days.values == 255).all()  # 255 fill: no age known


def test_previous_cube_matches_this_layout_and_reads_the_same_values(
    old_cube: Cube, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = old_cube.spec
    assert read_layout(spec) == LAYOUT
    _migrate(old_cube, capsys)
    assert old_cube.n_times() == 366 and old_cube.statuses() == {DAY: DAY_FINAL}
    assert old_cube.read_provenance(DAY) == {
        "inputs": {"smap": ["SMAP_L3_SM_P_E_20200601_R19240_001.h5"]}
    }
    mean, flags = _old_tile()
    ds = open_cube(spec.url).sel(time=str(DAY))
    stored = np.rint(ds.soil_moisture.values[0:64, 32:96] / 1e-4)
    want = pack_u16(mean).astype(np.float64)
    want[want == 65535] = np.nan
    np.testing.assert_array_equal(stored, want)
    q = ds.quality_flag.values
    assert q.dtype == np.uint8
    np.testing.assert_array_equal(q[0:64, 32:96], flags)
    assert (q[:, :32] == 255).all() and (q[64:, :] == 255).all()


def test_previous_cube_takes_new_days_and_keeps_its_chunks(
    old_cube: Cube, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(old_cube.spec.url)
    before = _digests(root)
    _migrate(old_cube, capsys)
    new_day = dt.date(2021, 1, 5)
    assert old_cube.ensure_day(new_day) is True
    mean, flags = _old_tile()
    write_region(old_cube.spec, LAYOUT, new_day, 0, 0, encode_tile(mean, mean, mean, flags))
    old_cube.set_day_status(new_day, DAY_FINAL)
    old_cube.consolidate()
    after = _digests(root)
    # The time vectors grow (their one chunk is rewritten); every data chunk stays.
    kept = {k: v for k, v in before.items() if k.split("/")[0] not in ("day_status", "time")}
    assert {k: after[k] for k in kept} == kept
    ds = open_cube(old_cube.spec.url)
    assert ds.sizes["time"] == LAYOUT.time_index(new_day) + 1
    assert int(ds.day_status.sel(time=str(DAY))) == DAY_FINAL
    np.testing.assert_array_equal(ds.quality_flag.sel(time=str(new_day)).values[0:64, 0:64], flags)


def test_gdal_reads_the_previous_cube_with_its_crs(old_cube: Cube) -> None:
    rasterio = pytest.importorskip("rasterio")
    t = LAYOUT.time_index(DAY)
    with rasterio.open(f'ZARR:"{os.path.abspath(old_cube.spec.url)}":/soil_moisture:{t}') as src:
        assert src.crs.to_epsg() == 4326
        band = src.read(1)
    np.testing.assert_array_equal(band[0:64, 32:96], pack_u16(_old_tile()[0]))
