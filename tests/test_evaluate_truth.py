"""Map scoring against a known 90 m truth: sub-cell variance recovered, RMSE, R."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.evaluate.truth import (
    EASE2_M09,
    IDEAL_9KM,
    TruthError,
    ease_m09_cell_ids,
    score_maps,
    score_world,
)
from pipeline.evaluate.zarrio import write_zarr_v2

RES = 1.0 / 1200.0  # 3 arc-seconds, the 90 m lattice


def _lattice(n: int = 240) -> tuple[np.ndarray, np.ndarray]:
    lat = 35.2 - (np.arange(n) + 0.5) * RES
    lon = -97.2 + (np.arange(n) + 0.5) * RES
    return lat, lon


def _cube(values: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> xr.DataArray:
    time = pd.date_range("2020-06-01", periods=values.shape[0])
    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "lat", "lon"),
        coords={"time": time, "lat": lat, "lon": lon},
    )


def _world(seed: int = 0) -> tuple[xr.DataArray, np.ndarray, np.ndarray]:
    """Truth = a per-cell level (what 9 km sees) + a smooth sub-cell pattern + noise."""
    rng = np.random.default_rng(seed)
    lat, lon = _lattice()
    ids = ease_m09_cell_ids(lat, lon)
    _, compact = np.unique(ids, return_inverse=True)
    compact = compact.reshape(ids.shape)
    yy, xx = np.meshgrid(np.arange(lat.size), np.arange(lon.size), indexing="ij")
    days = []
    for t in range(3):
        level = rng.uniform(0.1, 0.35, compact.max() + 1)[compact]
        pattern = 0.04 * np.sin(yy / 17.0 + t) * np.cos(xx / 23.0) + rng.normal(0, 0.01, ids.shape)
        days.append(level + pattern)
    truth = _cube(np.stack(days), lat, lon)
    return truth, ids, compact


def _cell_mean(truth: xr.DataArray, compact: np.ndarray) -> np.ndarray:
    out = np.empty(truth.shape)
    flat = compact.ravel()
    for t in range(truth.shape[0]):
        y = truth.values[t].astype(np.float64).ravel()
        m = np.bincount(flat, y) / np.bincount(flat)
        out[t] = m[flat].reshape(compact.shape)
    return out


def test_cell_ids_follow_the_ease_grid() -> None:
    lat, lon = _lattice()
    ids = ease_m09_cell_ids(lat, lon)
    # 0.2 degree at 35 N spans 2-4 EASE M09 cells in each direction (9.008 km cells).
    rows, cols = np.unique(ids // EASE2_M09.width), np.unique(ids % EASE2_M09.width)
    assert 2 <= rows.size <= 4 and 2 <= cols.size <= 4
    # The M09 row of 35 N / -97 E, worked out from the grid definition by hand:
    # y(35N) on EASE2 global = 6371228-sphere cylindrical equal area; use pyproj.
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", "EPSG:6933", always_xy=True).transform(
        float(lon[0]), float(lat[0])
    )
    assert ids[0, 0] == int((7314540.8306386 - y) // 9008.055210146) * 3856 + int(
        (x + 17367530.4451615) // 9008.055210146
    )
    far = ease_m09_cell_ids(np.array([89.9, 89.95]), np.array([0.0, 1.0]))
    assert (far == -1).all()  # north of the grid's 85.04 N edge


def test_perfect_prediction_recovers_all_subcell_variance() -> None:
    truth, ids, _ = _world()
    out = score_maps(truth, {"model": truth.copy()}, ids)
    assert out["model"].subcell_recovered == pytest.approx(1.0)
    assert out["model"].rmse == pytest.approx(0.0, abs=1e-12)
    assert out["model"].r == pytest.approx(1.0)
    assert out["model"].n_pixel_days == truth.size


def test_cell_constant_prediction_recovers_nothing() -> None:
    truth, ids, compact = _world(1)
    cellmean = _cell_mean(truth, compact)
    smap_like = _cube(cellmean + 0.05, truth.lat.values, truth.lon.values)  # offset too
    out = score_maps(truth, {"SMAP": smap_like}, ids)
    assert out["SMAP"].subcell_recovered == pytest.approx(0.0, abs=1e-5)
    assert out[IDEAL_9KM].subcell_recovered == pytest.approx(0.0, abs=1e-9)
    # SMAP's RMSE combines its offset and the sub-cell variance it misses.
    sub_var = float(np.mean((truth.values - cellmean) ** 2))
    assert out["SMAP"].rmse == pytest.approx(np.sqrt(0.05**2 + sub_var), rel=1e-4)
    assert out["SMAP"].bias == pytest.approx(0.05, abs=1e-6)
    assert out[IDEAL_9KM].rmse == pytest.approx(np.sqrt(sub_var), rel=1e-4)


def test_half_pattern_and_noise_score_as_defined() -> None:
    truth, ids, compact = _world(2)
    cellmean = _cell_mean(truth, compact)
    half = _cube(cellmean + 0.5 * (truth.values - cellmean), truth.lat.values, truth.lon.values)
    rng = np.random.default_rng(3)
    noisy = _cube(cellmean + rng.normal(0, 0.02, truth.shape), truth.lat.values, truth.lon.values)
    out = score_maps(truth, {"half": half, "noisy": noisy}, ids)
    # d = 0.5 (y - cell mean): within-cell error variance is a quarter of the truth's.
    assert out["half"].subcell_recovered == pytest.approx(0.75, abs=1e-4)
    assert out["noisy"].subcell_recovered < 0  # adds sub-cell variance that is not there
    # Pooled R cross-checked against numpy on the flattened arrays.
    expect_r = np.corrcoef(truth.values.ravel(), half.values.ravel())[0, 1]
    assert out["half"].r == pytest.approx(expect_r, rel=1e-5)


def test_nan_pixels_are_left_out_everywhere() -> None:
    truth, ids, _ = _world(4)
    pred = truth.copy()
    pred[0, :10, :] = np.nan
    out = score_maps(truth, {"model": pred}, ids)
    assert out["model"].n_pixel_days == truth.size - 10 * truth.shape[2]
    assert out[IDEAL_9KM].n_pixel_days == out["model"].n_pixel_days
    with pytest.raises(ValueError, match="shape"):
        score_maps(truth, {"model": pred[:, :5]}, ids)


def test_score_world_reads_zarr_and_aligns(tmp_path: Path) -> None:
    truth, _, compact = _world(5)
    world = tmp_path / "world"
    (world / "truth").mkdir(parents=True)
    write_zarr_v2(
        truth.to_dataset(name="soil_moisture"), world / "truth" / "soil_moisture_90m.zarr"
    )
    # The cube covers only the last two days and the northern half of the truth.
    cube = xr.Dataset(
        {
            "soil_moisture": truth.isel(time=slice(1, 3), lat=slice(0, 120)),
            "smap": _cube(_cell_mean(truth, compact), truth.lat.values, truth.lon.values).isel(
                time=slice(1, 3), lat=slice(0, 120)
            ),
        }
    )
    write_zarr_v2(cube, tmp_path / "cube.zarr")
    out = score_world(world, tmp_path / "cube.zarr")
    assert out["model"].n_pixel_days == 2 * 120 * 240
    assert out["model"].subcell_recovered == pytest.approx(1.0)
    assert out["SMAP"].subcell_recovered == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(TruthError, match="no synthetic truth"):
        score_world(tmp_path, tmp_path / "cube.zarr")


def test_packed_uint16_cube_is_decoded(tmp_path: Path) -> None:
    """A cube stored as uint16 counts of 1e-4 m3 m-3 with fill 65535 reads back as floats."""
    import zarr

    from pipeline.evaluate.zarrio import open_zarr_v2

    g = zarr.open_group(str(tmp_path / "packed.zarr"), mode="w", zarr_format=2)
    t = g.create_array("time", data=np.array([18414, 18415], dtype=np.int32))
    t.attrs.update(_ARRAY_DIMENSIONS=["time"], units="days since 1970-01-01")
    for name, vals in (("lat", [35.1, 35.0]), ("lon", [-97.0, -96.9, -96.8])):
        a = g.create_array(name, data=np.array(vals))
        a.attrs["_ARRAY_DIMENSIONS"] = [name]
    counts = np.array([[[2500, 65535, 3000], [0, 1, 2]]] * 2, dtype=np.uint16)
    sm = g.create_array("soil_moisture", data=counts, fill_value=65535)
    sm.attrs.update(_ARRAY_DIMENSIONS=["time", "lat", "lon"], scale_factor=1e-4, add_offset=0.0)
    ds = open_zarr_v2(tmp_path / "packed.zarr")
    v = ds["soil_moisture"].values
    assert v[0, 0, 0] == pytest.approx(0.25) and np.isnan(v[0, 0, 1])
    assert str(ds["time"].values[0])[:10] == "2020-06-01"  # 18414 days after 1970-01-01
    with pytest.raises(FileNotFoundError, match="not a Zarr"):
        open_zarr_v2(tmp_path / "nothing.zarr")


def test_score_world_on_a_synthetic_world_reads_smap_granules(tmp_path: Path) -> None:
    """A tiny world of pipeline.synth: SMAP comes from its SPL3SMP_E files, cell-constant."""
    import datetime as dt

    from pipeline.evaluate.truth import MODEL_ALL_DAYS
    from pipeline.evaluate.zarrio import open_zarr_v2
    from pipeline.synth import WorldSpec, write_world

    spec = WorldSpec(
        region=(-97.3, 35.0, -97.1, 35.2),
        start=dt.date(2020, 6, 1),
        end=dt.date(2020, 6, 3),
        n_stations=2,
        n_ameriflux=0,
        spinup_days=5,
    )
    write_world(spec, tmp_path / "world")
    truth = open_zarr_v2(tmp_path / "world/truth/soil_moisture_90m.zarr")["soil_moisture"].load()
    rng = np.random.default_rng(0)
    cube = (truth + rng.normal(0, 0.01, truth.shape)).astype(np.float32)
    write_zarr_v2(cube.to_dataset(name="soil_moisture"), tmp_path / "cube.zarr")
    out = score_world(tmp_path / "world", tmp_path / "cube.zarr")
    assert set(out) == {"model", "SMAP", IDEAL_9KM, MODEL_ALL_DAYS}
    smap = out["SMAP"]
    assert 0 < smap.n_pixel_days <= truth.size
    assert smap.subcell_recovered == pytest.approx(0.0, abs=1e-6)  # one value per 9 km cell
    assert out["model"].rmse == pytest.approx(0.01, rel=0.1)
    assert out[MODEL_ALL_DAYS].n_pixel_days == int(np.isfinite(truth.values).sum())
    assert out["model"].subcell_recovered > 0.5 > smap.subcell_recovered


def test_score_world_reads_a_published_cube(tmp_path: Path) -> None:
    """A cube made with pipeline.cube (uint16 packed, whole-year time axis, absent days)."""
    import datetime as dt

    from pipeline.cube import Cube, CubeLayout, ModelInfo, StoreSpec, encode_tile, write_region
    from pipeline.evaluate.truth import MODEL_ALL_DAYS
    from pipeline.synth import WorldSpec, write_world

    spec = WorldSpec(
        region=(-97.3, 35.0, -97.1, 35.2),
        start=dt.date(2020, 6, 1),
        end=dt.date(2020, 6, 2),
        n_stations=1,
        n_ameriflux=0,
        spinup_days=3,
    )
    write_world(spec, tmp_path / "world")
    from pipeline.evaluate.zarrio import open_zarr_v2

    truth_sm = open_zarr_v2(tmp_path / "world/truth/soil_moisture_90m.zarr")["soil_moisture"]
    store = StoreSpec(str(tmp_path / "dense-0123456789ab.zarr"))
    layout = CubeLayout(grid=spec.region_grid(), chunk=120, first_year=2020)
    cube = Cube(store, layout)
    cube.create(ModelInfo("dense", "0123456789abcdef", "test"), 2020)
    # Only 2020-06-02 is written; 2020-06-01 stays absent (all fill).
    day = truth_sm.sel(time="2020-06-02").values
    tile = encode_tile(
        day, np.full_like(day, 0.02), np.zeros_like(day), np.zeros(day.shape, np.uint8)
    )
    write_region(store, layout, dt.date(2020, 6, 2), 0, 0, tile)
    cube.consolidate()
    out = score_world(tmp_path / "world", store.url)
    assert out[MODEL_ALL_DAYS].n_pixel_days == int(np.isfinite(day).sum())  # one day scored
    assert out[MODEL_ALL_DAYS].rmse < 1e-4  # packing to 1e-4 m3 m-3 is the only error
    assert out[MODEL_ALL_DAYS].subcell_recovered == pytest.approx(1.0, abs=1e-3)
