"""The output cube as a reader meets it: template, chunk ownership, status, guards, CF, GDAL."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from grids import Grid
from pipeline.cube import (
    DAY_FINAL,
    DAY_PROVISIONAL,
    FLAG_BITS,
    ChunkAlignmentError,
    Cube,
    CubeLayout,
    LockHeldError,
    ModelInfo,
    StoreSpec,
    assert_disjoint_chunks,
    encode_tile,
    hold_lock,
    open_cube,
    pack_u16,
    read_layout,
    unpack_u16,
    write_region,
)
from pipeline.errors import PublishGuardError

# A small geographic grid on the conus-90m lattice (3 arc-seconds, edges on whole degrees
# offsets): 70 rows x 100 cols starting at 98 W, 36 N.
ARCSEC3 = 1.0 / 1200.0
GRID = Grid("EPSG:4326", (ARCSEC3, 0.0, -98.0, 0.0, -ARCSEC3, 36.0), (70, 100))
MODEL = ModelInfo("dense", "ab" * 32, "0.1.0", "test-grid")
DAY = dt.date(2020, 6, 1)


def _make(tmp_path: Path, chunk: int = 32, grid: Grid = GRID) -> Cube:
    cube = Cube(StoreSpec(str(tmp_path / "cube.zarr")), CubeLayout(grid, chunk, 2020))
    cube.create(MODEL, 2020)
    return cube


def _tile_values(h: int, w: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = rng.uniform(0.02, 0.5, (h, w)).astype(np.float32)
    mean[0, 0] = np.nan
    flags = np.zeros((h, w), np.uint8)
    flags[0, 0] = FLAG_BITS["input_missing"]
    return encode_tile(mean, mean * 0.1, mean * 0.05, flags)


def _files_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_packing_round_trips_to_one_count() -> None:
    v = np.array([0.0, 0.12344, 0.5, np.nan, -0.1, 7.0, 0.12346], np.float32)
    p = pack_u16(v)
    assert p.dtype == np.uint16
    assert p.tolist() == [0, 1234, 5000, 65535, 0, 65534, 1235]
    back = unpack_u16(p)
    assert np.isnan(back[3]) and abs(back[1] - 0.1234) < 1e-7


def test_template_sized_per_year_and_extends(tmp_path: Path) -> None:
    cube = _make(tmp_path)
    assert cube.n_times() == 366  # 2020 is a leap year
    ds = open_cube(cube.spec.url)
    assert ds.sizes["time"] == 366
    assert str(ds.time.values[0])[:10] == "2020-01-01"
    assert str(ds.time.values[-1])[:10] == "2020-12-31"
    assert cube.ensure_year(2021) is True
    assert cube.ensure_year(2021) is False
    assert cube.n_times() == 366 + 365
    ds = open_cube(cube.spec.url)
    assert str(ds.time.values[-1])[:10] == "2021-12-31"
    assert int(ds.day_status.sum()) == 0


def test_time_axis_grows_through_the_days_run(tmp_path: Path) -> None:
    """The driver sizes the axis through the day it runs: no years allocated ahead."""
    cube = Cube(StoreSpec(str(tmp_path / "cube.zarr")), CubeLayout(GRID, 32, 2020))
    cube.create(MODEL, dt.date(2020, 3, 1))
    assert cube.n_times() == 61
    assert cube.ensure_day(dt.date(2020, 3, 5)) is True
    assert cube.ensure_day(dt.date(2020, 2, 1)) is False
    ds = open_cube(cube.spec.url)
    assert ds.sizes["time"] == 65 and str(ds.time.values[-1])[:10] == "2020-03-05"
    assert (ds.time.diff("time").values == np.timedelta64(1, "D")).all()


def test_opening_the_cube_reports_what_is_stored(tmp_path: Path) -> None:
    """``open_cube`` (xarray.open_zarr): honest size and dtypes, integer flags, CF tidy."""
    cube = Cube(StoreSpec(str(tmp_path / "cube.zarr")), CubeLayout(GRID, 32, 2020))
    cube.create(MODEL, DAY)
    write_region(cube.spec, cube.layout, DAY, 0, 0, _tile_values(64, 64, 3))
    ds = open_cube(cube.spec.url)
    n_t = cube.layout.time_index(DAY) + 1
    assert ds.sizes == {"time": n_t, "lat": 70, "lon": 100}
    q = ds.quality_flag
    assert q.dtype == np.uint8 and q.encoding["_FillValue"] == 255 and "_FillValue" not in q.attrs
    day = ds.sel(time=str(DAY))
    assert int(day.quality_flag.values[0, 0]) == FLAG_BITS["input_missing"]
    assert int(day.quality_flag.values[69, 99]) == 255  # a chunk no task wrote
    assert ds.soil_moisture.dtype.kind == "f" and np.isnan(float(day.soil_moisture[0, 0]))
    for name in ("smap_age_days", "input_fallback"):
        assert ds[name].dtype == np.uint8 and ds[name].encoding["_FillValue"] == 255, name
    # Size: three float64 decoded layers, three uint8 layers (flags, SMAP age, fallback
    # bits), the status bytes, coordinates.
    assert ds.nbytes == n_t * 70 * 100 * (3 * 8 + 3) + n_t * (1 + 8) + (70 + 100) * 8 + 4
    for name, coord in ds.coords.items():
        assert "_FillValue" not in coord.attrs and coord.encoding.get("_FillValue") is None, name
    for name, var in ds.data_vars.items():
        if name != "spatial_ref":
            assert "long_name" in var.attrs or "standard_name" in var.attrs, name
    assert ds.soil_moisture.encoding["chunks"] == (1, 32, 32)


def test_the_template_renders_lazily_and_is_what_is_stored(tmp_path: Path) -> None:
    """One declaration (``cube_template``): the lazy dataset and the store agree with it."""
    import zarr

    from pipeline.cube import encoding as enc
    from pipeline.cube.store import cube_template

    layout = CubeLayout(GRID, 32, 2020)
    template = cube_template(layout, MODEL, 10)
    ds = template.to_dataset()
    assert ds.soil_moisture.chunks is not None  # dask: nothing computed
    assert set(ds.data_vars) == {*enc.DATA_VARS, "day_status", "spatial_ref"}
    cube = Cube(StoreSpec(str(tmp_path / "cube.zarr")), layout)
    cube.create(MODEL, dt.date(2020, 1, 10))
    root = zarr.open_group(str(tmp_path / "cube.zarr"), mode="r")
    for a in template.arrays:
        arr = root[a.name]
        assert arr.shape == a.shape and arr.dtype == a.dtype, a.name
        assert tuple(arr.chunks) == a.chunks and arr.fill_value == a.fill, a.name
        assert arr.attrs["_ARRAY_DIMENSIONS"] == list(a.dims), a.name
        if a.values is not None:
            np.testing.assert_array_equal(arr[...], a.values)
    assert not (tmp_path / "cube.zarr" / "soil_moisture" / "0.0.0").exists()


def test_chunk_alignment_is_asserted(tmp_path: Path) -> None:
    lay = CubeLayout(GRID, 32, 2020)
    lay.check_region(0, 64, 32, 96)
    lay.check_region(64, 70, 96, 100)  # edge chunks end at the grid edge
    with pytest.raises(ChunkAlignmentError, match="not a multiple"):
        lay.check_region(16, 48, 0, 32)
    with pytest.raises(ChunkAlignmentError, match="row end"):
        lay.check_region(0, 40, 0, 32)
    with pytest.raises(ChunkAlignmentError, match="written by region"):
        assert_disjoint_chunks(lay, [(0, 64, 0, 64), (32, 64, 32, 96)])
    assert_disjoint_chunks(lay, [(0, 64, 0, 64), (0, 64, 64, 100), (64, 70, 0, 100)])
    cube = _make(tmp_path)
    with pytest.raises(ChunkAlignmentError):
        write_region(cube.spec, cube.layout, DAY, 0, 16, _tile_values(32, 32, 0))


def test_day_written_then_read_back_in_xarray_with_coordinates(tmp_path: Path) -> None:
    cube = _make(tmp_path)
    vals = _tile_values(64, 64, 1)
    keys = write_region(cube.spec, cube.layout, DAY, 0, 32, vals)
    assert keys == [f"{cube.layout.time_index(DAY)}.{i}.{j}" for i in (0, 1) for j in (1, 2)]
    cube.set_day_status(DAY, DAY_FINAL)
    cube.consolidate()
    ds = open_cube(cube.spec.url)
    day = ds.sel(time="2020-06-01")
    assert int(day.day_status) == DAY_FINAL
    # pixel centre of (row 5, col 40) on the lattice: 36 - 5.5/1200, -98 + 40.5/1200
    assert day.lat.values[5] == pytest.approx(36.0 - 5.5 * ARCSEC3, abs=1e-12)
    assert day.lon.values[40] == pytest.approx(-98.0 + 40.5 * ARCSEC3, abs=1e-12)
    got = day.soil_moisture.values
    want = unpack_u16(vals["soil_moisture"])
    np.testing.assert_allclose(got[0:64, 32:96], want, atol=1e-7, equal_nan=True)
    assert np.isnan(got[:, :32]).all()  # never written: fill
    assert day.soil_moisture.attrs["units"] == "m3 m-3"
    assert day.soil_moisture.attrs["grid_mapping"] == "spatial_ref"
    assert ds.attrs["Conventions"] == "CF-1.8"
    assert ds.attrs["model_manifest_hash"] == MODEL.manifest_hash
    assert ds.attrs["software_version"] == "0.1.0"
    assert "history" in ds.attrs
    qf = ds.quality_flag.attrs
    assert qf["flag_meanings"].split() == list(FLAG_BITS)
    assert qf["flag_masks"] == list(FLAG_BITS.values())
    assert "crs_wkt" in ds.spatial_ref.attrs


def test_gdal_reads_the_cube_with_crs_transform_and_values(tmp_path: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    cube = _make(tmp_path)
    vals = _tile_values(64, 64, 2)
    write_region(cube.spec, cube.layout, DAY, 0, 32, vals)
    cube.set_day_status(DAY, DAY_PROVISIONAL)
    cube.consolidate()
    # As the README says: the band is days since 1 January of the root attribute first_year.
    first_year = open_cube(cube.spec.url).attrs["first_year"]
    idx = (DAY - dt.date(first_year, 1, 1)).days
    with rasterio.open(f'ZARR:"{os.path.abspath(cube.spec.url)}":/soil_moisture:{idx}') as src:
        assert src.crs.to_epsg() == 4326
        assert src.shape == GRID.shape
        assert tuple(src.transform)[:6] == pytest.approx(GRID.transform, abs=1e-12)
        assert src.nodata == 65535
        assert src.scales[0] == pytest.approx(1e-4)
        band = src.read(1)
    np.testing.assert_array_equal(band[0:64, 32:96], vals["soil_moisture"])
    assert (band[:, :32] == 65535).all()


def test_rewrite_gives_identical_bytes(tmp_path: Path) -> None:
    cube = _make(tmp_path)
    write_region(cube.spec, cube.layout, DAY, 0, 0, _tile_values(64, 64, 3))
    store = Path(cube.spec.url)
    first = {k: v for k, v in _files_digest(store).items() if k.startswith("soil")}
    write_region(cube.spec, cube.layout, DAY, 0, 0, _tile_values(64, 64, 3))
    again = {k: v for k, v in _files_digest(store).items() if k.startswith("soil")}
    assert first and first == again


def test_structure_guard_refuses_before_writing(tmp_path: Path) -> None:
    cube = _make(tmp_path)
    before = _files_digest(Path(cube.spec.url))
    other = Cube(cube.spec, CubeLayout(GRID, 16, 2020))
    with pytest.raises(PublishGuardError, match=r"cube\.zarr.*chunks"):
        other.guard_structure(MODEL)
    shifted = Grid("EPSG:4326", (ARCSEC3, 0.0, -97.0, 0.0, -ARCSEC3, 36.0), (70, 100))
    with pytest.raises(PublishGuardError, match="GeoTransform"):
        Cube(cube.spec, CubeLayout(shifted, 32, 2020)).guard_structure(MODEL)
    other_model = ModelInfo("dense", "cd" * 32, "0.1.0")
    with pytest.raises(PublishGuardError, match="manifest hash"):
        cube.guard_structure(other_model)
    assert _files_digest(Path(cube.spec.url)) == before
    cube.guard_structure(MODEL)  # the same layout passes


def test_layout_read_back_from_store(tmp_path: Path) -> None:
    cube = _make(tmp_path)
    lay = read_layout(cube.spec)
    assert lay == cube.layout


def test_provenance_round_trip_and_invisible_to_readers(tmp_path: Path) -> None:
    cube = _make(tmp_path)
    cube.write_provenance(DAY, {"inputs": {"smap": ["a.h5"]}, "model_manifest_hash": "x"})
    assert cube.read_provenance(DAY) == {"inputs": {"smap": ["a.h5"]}, "model_manifest_hash": "x"}
    assert cube.read_provenance(dt.date(2020, 6, 2)) is None
    cube.consolidate()
    assert "provenance" not in open_cube(cube.spec.url).variables


def test_lock_excludes_a_second_holder_and_clears_stale(tmp_path: Path) -> None:
    spec = StoreSpec(str(tmp_path / ".locks" / "c.2020-06-01.lock"))
    with hold_lock(spec, "day 2020-06-01"):
        with pytest.raises(LockHeldError, match=r"2020-06-01.*pid"):
            with hold_lock(spec, "day 2020-06-01"):
                pass
    assert not os.path.exists(spec.url)
    # A lock left by a dead process on this host is stale and taken over.
    import json

    os.makedirs(os.path.dirname(spec.url), exist_ok=True)
    dead_pid = 2**22 + 12345  # above the default pid_max of 4194304: never running
    with open(spec.url, "w") as f:
        json.dump({"host": socket.gethostname(), "pid": dead_pid, "started": 1e9 * 1.7}, f)
    with hold_lock(spec, "day"):
        assert json.loads(Path(spec.url).read_text())["pid"] == os.getpid()
