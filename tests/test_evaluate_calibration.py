"""Coverage and reliability of soil_moisture_sd on stations and against the truth map."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from models.ensemble import combine_members
from models.features import FEATURE_NAMES
from pipeline.evaluate.calibration import coverage_table, map_coverage, reliability_table
from pipeline.evaluate.evaluation import Predictor, run_evaluation, sd_col
from pipeline.evaluate.testing import LinearEnsemble, station_table
from pipeline.evaluate.zarrio import write_zarr_v2


def _rows(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 4000
    sigma = rng.uniform(0.01, 0.05, n)
    mean = rng.uniform(0.1, 0.4, n)
    return pd.DataFrame(
        {
            "site_id": np.repeat([f"S{i}" for i in range(40)], n // 40),
            "sm": mean + rng.normal(0, sigma),
            "p": mean,
            "s": sigma,  # the calibrated sd (scale 0.5: the raw sd was twice as wide)
        }
    )


def test_coverage_and_reliability_by_hand() -> None:
    rows = _rows()
    cov = coverage_table(rows, {"M": ("p", "s")}, {"M": 0.5}).iloc[0]
    z = np.abs(rows["sm"] - rows["p"]) / rows["s"]
    assert cov["within_1sd"] == pytest.approx(float((z <= 1).mean()))
    assert cov["within_2sd"] == pytest.approx(float((z <= 2).mean()))
    assert cov["within_1sd_raw"] == pytest.approx(float((z <= 2).mean()))  # raw = 2 x sd
    assert cov["within_1sd"] == pytest.approx(0.683, abs=0.03)
    assert cov["within_1sd_crossfit"] == pytest.approx(0.683, abs=0.03)
    assert cov["mean_sd_raw"] == pytest.approx(2 * cov["mean_sd"])
    rel = reliability_table(rows, {"M": ("p", "s")}, {"M": 0.5})
    cal = rel[rel["sd"] == "calibrated"]
    np.testing.assert_allclose(cal["observed"], cal["nominal"], atol=0.03)
    at1 = cal.loc[np.isclose(cal["nominal"], 0.6827), "observed"].iloc[0]
    assert at1 == pytest.approx(cov["within_1sd"], abs=1e-3)


@dataclass
class ScaledLinear(LinearEnsemble):
    sd_scale: float = 1.0


def test_evaluation_applies_the_scale_and_reports_coverage(tmp_path: Path) -> None:
    df = station_table(n_sites=16, n_days=40, seed=3)
    base = LinearEnsemble.skilful()
    ens = ScaledLinear(base.coefs, base.intercepts, sd=0.04, member_names=base.member_names)
    ens.sd_scale = 0.5

    def loader(_: Path) -> Predictor:
        return ens

    res = run_evaluation(df, {"Lin": tmp_path}, out_dir=tmp_path / "ev", loader=loader)
    cov = res.tables["validation_sd_coverage"].iloc[0].to_dict()
    assert cov["model"] == "Lin" and cov["sd_scale"] == 0.5
    assert cov["mean_sd"] == pytest.approx(0.5 * cov["mean_sd_raw"])
    held = res.meta["heldout_within_1sd"]["validation/Lin"]
    assert held["calibrated"] == pytest.approx(cov["within_1sd"])
    assert held["raw"] >= held["calibrated"]
    assert "validation_fig_sd_reliability" in res.figures
    saved = pd.read_parquet(tmp_path / "ev" / "predictions.parquet")
    val = df[df["split"] == "validation"]
    means, sds = ens.predict_members(val.loc[:, list(FEATURE_NAMES)].to_numpy(np.float32))
    _, mix, _ = combine_members(means, sds)
    np.testing.assert_allclose(
        np.sort(saved[sd_col("Lin")].to_numpy()), np.sort(0.5 * mix.astype(np.float64)), rtol=1e-6
    )
    import json

    doc = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert doc["meta"]["heldout_within_1sd"]["validation/Lin"]["raw"] == held["raw"]


def test_map_coverage_against_a_truth(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lat = 35.2 - (np.arange(60) + 0.5) / 1200
    lon = -97.2 + (np.arange(50) + 0.5) / 1200
    time = pd.date_range("2020-06-01", periods=3)
    shape = (3, 60, 50)
    mean = rng.uniform(0.1, 0.4, shape)
    sd = rng.uniform(0.01, 0.05, shape)
    truth = mean + rng.normal(0, 1, shape) * sd
    coords = {"time": time, "lat": lat, "lon": lon}

    def da(v: np.ndarray) -> xr.DataArray:
        return xr.DataArray(v.astype(np.float32), dims=("time", "lat", "lon"), coords=coords)

    (tmp_path / "w" / "truth").mkdir(parents=True)
    write_zarr_v2(
        da(truth).to_dataset(name="soil_moisture"), tmp_path / "w/truth/soil_moisture_90m.zarr"
    )
    cube = xr.Dataset({"soil_moisture": da(mean), "soil_moisture_sd": da(sd)})
    cube["soil_moisture_sd"][0, :5, :] = np.nan
    write_zarr_v2(cube, tmp_path / "cube.zarr")
    out = map_coverage(tmp_path / "w", tmp_path / "cube.zarr")
    assert int(out["n_pixel_days"].iloc[0]) == 3 * 60 * 50 - 5 * 50
    np.testing.assert_allclose(out["observed"], out["nominal"], atol=0.03)
