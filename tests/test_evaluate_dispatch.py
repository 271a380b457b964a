"""DisPATCh baseline: SEE from LST and NDVI, cell-conserving linear downscaling of SMAP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.evaluate import dispatch as dp
from pipeline.evaluate.zarrio import write_zarr_v2


def _scene(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    h, w = 40, 60
    ids = (np.arange(h)[:, None] // 10) * 100 + (np.arange(w)[None, :] // 10)
    cell_sm = rng.uniform(0.1, 0.35, ids.max() + 1)
    smap = cell_sm[ids]
    ndvi = rng.uniform(0.2, 0.7, (h, w))
    lst = 25 + 15 * rng.random((h, w)) - 8 * ndvi
    return smap, lst, ndvi, ids


def test_see_is_high_for_cool_soil_and_low_for_hot_soil() -> None:
    ndvi = np.full(200, 0.3)
    lst = np.linspace(20, 45, 200)
    see = dp.soil_evaporative_efficiency(lst, ndvi)
    assert np.all(np.diff(see) <= 0)  # hotter soil, drier: lower SEE
    assert see[0] == 1.0 and see[-1] == 0.0
    # Under dense vegetation T_s is undefined.
    assert np.isnan(dp.soil_evaporative_efficiency(np.array([30.0]), np.array([0.95]))).all()


def test_dispatch_conserves_the_cell_mean_and_follows_see() -> None:
    smap, lst, ndvi, ids = _scene()
    sm = dp.dispatch(smap, lst, ndvi, ids)
    see = dp.soil_evaporative_efficiency(lst, ndvi)
    conserved = 0
    for c in np.unique(ids):
        m = ids == c
        # Within the cell: SM_HR - SM_LR = SM_p * (SEE - <SEE>), SM_p = SM_LR / <SEE>.
        want = smap[m] + smap[m] / see[m].mean() * (see[m] - see[m].mean())
        np.testing.assert_allclose(sm[m], np.clip(want, *dp.SM_RANGE), atol=1e-12)
        if (want >= dp.SM_RANGE[0]).all() and (want <= dp.SM_RANGE[1]).all():
            assert sm[m].mean() == pytest.approx(smap[m][0], abs=1e-9)  # the cell mean is SMAP's
            conserved += 1
    assert conserved >= 3
    smap2 = smap.copy()
    smap2[:10, :10] = np.nan
    out = dp.dispatch(smap2, lst, ndvi, ids)
    assert np.isnan(out[:10, :10]).all() and np.isfinite(out[10:, 10:]).all()


def test_sample_stations_reads_the_pixel_of_each_row_and_day(tmp_path: Path) -> None:
    days = pd.date_range("2020-06-01", periods=2)
    v = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    ds = xr.Dataset(
        {"soil_moisture": (("time", "lat", "lon"), v)},
        coords={"time": days, "lat": [3.0, 2.0, 1.0], "lon": [0.0, 1.0, 2.0, 3.0]},
    )
    write_zarr_v2(ds, tmp_path / "d.zarr")
    rows = pd.DataFrame(
        {
            "date": [days[0], days[1], pd.Timestamp("2020-07-01"), days[1]],
            "row": [0, 2, 0, 5],
            "col": [1, 3, 0, 0],
        }
    )
    got = dp.sample_stations(tmp_path / "d.zarr", rows)
    np.testing.assert_array_equal(got[:2], [v[0, 0, 1], v[1, 2, 3]])
    assert np.isnan(got[2:]).all()


@pytest.mark.slow
def test_dispatch_on_a_tiny_world_is_scored_beside_the_ensemble(tmp_path: Path) -> None:
    """End to end: world -> table -> tiny RF -> maps -> DisPATCh from the same inputs -> eval."""
    import datetime as dt
    import json

    from models.train import train_ensemble
    from pipeline.config import Settings
    from pipeline.evaluate.evaluation import run_evaluation
    from pipeline.evaluate.truth import score_world
    from pipeline.insitu import build_insitu
    from pipeline.run import backfill, build_plan
    from pipeline.synth import WorldSpec, write_world
    from pipeline.table import write_table
    from pipeline.table.build import build_from_settings, table_metadata_for

    region = (-97.7, 35.3, -97.5, 35.5)
    start, end = dt.date(2020, 6, 1), dt.date(2020, 6, 4)
    spec = WorldSpec(
        region=region, start=start, end=end, seed=3, n_stations=12, n_ameriflux=1, spinup_days=5
    )
    write_world(spec, tmp_path / "world")
    settings = Settings(
        sources={"root": str(tmp_path / "world")},
        grid={"name": "conus-90m", "region": region, "tile_size": 128},
        output={"store": str(tmp_path / "cube"), "chunk_size": 64, "first_year": 2020},
        models={"dir": str(tmp_path / "models"), "arch": "rf"},
        table={"path": str(tmp_path / "table.parquet"), "validation_fraction": 0.5},
    )
    info = json.loads((tmp_path / "world" / "world.json").read_text(encoding="utf-8"))
    cfg = settings.insitu.model_copy(update={"wetland_sites": info.get("ismn_wetland_sites", [])})
    build_insitu(tmp_path / "world" / "ISMN", tmp_path / "world" / "AmeriFlux", cfg).write(
        tmp_path / "insitu"
    )
    built = build_from_settings(settings, insitu=tmp_path / "insitu.parquet", mode="training")
    write_table(built.table, tmp_path / "table.parquet", table_metadata_for(built, settings.table))
    train_ensemble(
        "rf",
        built.table,
        tmp_path / "models" / "rf",
        seed=0,
        n_estimators=3,
        threads=1,
        log=lambda _m: None,
    )
    plan = build_plan(settings, mode="training")
    results = backfill(settings, start, end, client=None, plan=plan, today=dt.date(2020, 7, 1))
    mapped = [r.date for r in results if not r.skipped]
    assert mapped
    store = dp.dispatch_days(plan, mapped, tmp_path / "dispatch.zarr")
    scores = score_world(tmp_path / "world", store)
    assert scores["model"].n_pixel_days > 0 and np.isfinite(scores["model"].rmse)
    res = run_evaluation(
        tmp_path / "table.parquet",
        {"RF": tmp_path / "models" / "rf"},
        out_dir=tmp_path / "ev",
        make_figures=False,
        truth_world=tmp_path / "world",
        cube=plan.cube.url,
        table_cfg=settings.table,
        baselines={"DisPATCh": store},
    )
    if "baselines" in res.tables:
        t = res.tables["baselines"]
        assert set(t["model"]) == {"RF", "DisPATCh", "SMAP"}
        assert len(set(t["n_days"])) == 1  # the same site-days for every row
    else:
        assert any("baselines" in n for n in res.notes)
    assert res.tables["baselines_maps"]["field"].tolist() == ["DisPATCh"]
    assert "maps_sd_coverage" in res.tables


def test_cli_baseline_option_is_parsed_and_checked(tmp_path: Path) -> None:
    from pipeline.cli.evaluate import parse_baselines
    from pipeline.evaluate import EvaluationError

    (tmp_path / "d.zarr").mkdir()
    assert parse_baselines([f"DisPATCh={tmp_path / 'd.zarr'}"]) == {"DisPATCh": tmp_path / "d.zarr"}
    with pytest.raises(EvaluationError, match="NAME=ZARR"):
        parse_baselines(["nothing"])
    with pytest.raises(EvaluationError, match="does not exist"):
        parse_baselines([f"X={tmp_path / 'missing.zarr'}"])
