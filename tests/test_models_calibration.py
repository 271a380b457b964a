"""sd calibration: fitted on the validation split, stored in the manifest, applied at run time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models import calibration as cal
from models.errors import ManifestError
from models.runtime import Ensemble, clear_cache
from tests._models_shared import trained


def _overdispersed(n_sites: int = 60, n_days: int = 40, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Gaussian errors of sd sigma with a predicted sd 2.1 times too wide, per-site varying."""
    rng = np.random.default_rng(seed)
    sites = np.repeat([f"S{i:03d}" for i in range(n_sites)], n_days)
    sigma = np.repeat(rng.uniform(0.02, 0.06, n_sites), n_days)
    mean = rng.uniform(0.1, 0.4, sites.size)
    obs = mean + rng.normal(0, sigma)
    return obs, mean, 2.1 * sigma, sites


def test_fit_scale_recovers_the_overdispersion_and_crossfit_coverage_is_68() -> None:
    obs, mean, sd, sites = _overdispersed()
    assert cal.coverage(obs, mean, sd) > 0.95  # twice too wide
    scale = cal.fit_scale(obs, mean, sd)
    assert scale == pytest.approx(1 / 2.1, rel=0.05)
    assert cal.coverage(obs, mean, sd * scale) == pytest.approx(cal.ONE_SD, abs=1e-3)
    rec = cal.calibration_record(obs, mean, sd, sites)
    assert abs(rec["coverage_1sd_crossfit"] - cal.ONE_SD) < 0.05
    assert abs(rec["coverage_2sd_crossfit"] - cal.TWO_SD) < 0.05
    assert rec["n_sites"] == 60 and rec["fitted_on"] == "validation"
    with pytest.raises(ValueError, match="need at least"):
        cal.fit_scale(obs[:5], mean[:5], sd[:5])


def test_training_stores_the_calibration_fitted_on_the_validation_split_only() -> None:
    model_dir, manifest = trained("dense")
    rec = manifest.runtime[cal.KEY]
    from tests._models_shared import small_table

    table = small_table()
    val = table[table["split"] == "validation"]
    assert rec["n_sites"] == val["site_id"].nunique()
    assert rec["n_rows"] <= len(val)
    # Refit from the raw sd (predict_members -> mixture sd) on the validation rows: same scale.
    from models import table as tbl
    from models.ensemble import combine_members

    ens = Ensemble.load(model_dir)
    loc, scale = ens.predict_members(tbl.features(val))
    mean, sd, _ = combine_members(loc.astype(np.float64), scale.astype(np.float64))
    assert cal.fit_scale(val["sm"].to_numpy(), mean, sd) == pytest.approx(rec["scale"], rel=1e-4)


def test_runtime_applies_the_scale_and_refuses_a_bad_one(tmp_path: Path) -> None:
    src, _ = trained("dense")
    target = tmp_path / "m"
    shutil.copytree(src, target)
    path = target / "manifest.json"
    doc = json.loads(path.read_text())
    x = np.full((4, 9), 0.0, np.float32)
    x[:] = [0.25, 0.5, 25.0, 2.0, 40.0, 20.0, 6.5, 2.0, 300.0]
    clear_cache()
    calibrated = Ensemble.load(target).predict(x)
    doc["runtime"].pop(cal.KEY)
    path.write_text(json.dumps(doc))
    raw = Ensemble.load(target)
    assert raw.sd_scale == 1.0
    scale = json.loads((src / "manifest.json").read_text())["runtime"][cal.KEY]["scale"]
    np.testing.assert_allclose(calibrated.sd, raw.predict(x).sd * np.float32(scale), rtol=1e-6)
    np.testing.assert_array_equal(calibrated.mean, raw.predict(x).mean)
    doc["runtime"][cal.KEY] = {"scale": -1.0}
    path.write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=r"runtime\.sd_calibration\.scale"):
        Ensemble.load(target)
    clear_cache()
