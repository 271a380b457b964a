"""The TensorFlow-free runtime: imports, ensemble formula, NaN rows, verification, cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _models_shared import copy_of, small_table, trained
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models import table as tbl
from models.ensemble import combine_members
from models.errors import ManifestError, ModelError
from models.features import FEATURE_NAMES
from models.manifest import MANIFEST_NAME, Manifest
from models.runtime import Ensemble, clear_cache

ROOT = Path(__file__).resolve().parents[1]


def test_importing_runtime_pulls_in_no_tensorflow_keras_or_sklearn() -> None:
    code = (
        "import sys, models.runtime, models.manifest, models.ensemble, models.treewalk\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'tensorflow', 'keras', 'sklearn', 'tf2onnx', 'skl2onnx'})\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr


# -- the ensemble formula -----------------------------------------------------------------


def test_combine_members_matches_the_mixture_formula() -> None:
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.05, 0.45, (7, 500))
    sd = rng.uniform(0.005, 0.08, (7, 500))
    mean, mix_sd, spread = combine_members(mu, sd)
    ref_mean = mu.mean(axis=0)
    ref_sd = np.sqrt((sd**2 + mu**2).mean(axis=0) - ref_mean**2)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-12)
    np.testing.assert_allclose(mix_sd, ref_sd, rtol=1e-9)
    np.testing.assert_allclose(spread, mu.std(axis=0, ddof=0), rtol=1e-12)


def test_combine_members_against_sampling_the_mixture() -> None:
    # Draw from the equal-weight mixture of 3 Normals: its sd is the formula's sd.
    rng = np.random.default_rng(1)
    mu = np.array([[0.1], [0.2], [0.35]])
    sd = np.array([[0.02], [0.05], [0.01]])
    comp = rng.integers(0, 3, 400_000)
    draws = rng.normal(mu[comp, 0], sd[comp, 0])
    _, mix_sd, _ = combine_members(mu, sd)
    assert abs(draws.std() - mix_sd[0]) < 2e-3


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, (3, 4), elements=st.floats(0.0, 0.6)),
    arrays(np.float64, (3, 4), elements=st.floats(1e-3, 0.2)),
)
def test_combine_members_properties(mu: np.ndarray, sd: np.ndarray) -> None:
    mean, mix_sd, spread = combine_members(mu, sd)
    assert np.all(mix_sd >= spread - 1e-12)  # the mixture is at least as wide as the spread
    assert np.all(mix_sd >= np.sqrt((sd**2).mean(axis=0)) - 1e-12)
    assert np.all((mean >= mu.min(axis=0) - 1e-12) & (mean <= mu.max(axis=0) + 1e-12))


def test_combine_members_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="both be"):
        combine_members(np.zeros((3, 4)), np.zeros((3, 5)))


# -- runtime on a trained ensemble --------------------------------------------------------


def _rows(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    df = small_table().iloc[:n]
    return tbl.features(df), tbl.categoricals(df)


def test_predict_shapes_dtypes_and_member_consistency() -> None:
    model_dir, manifest = trained("dense")
    ens = Ensemble.load(model_dir)
    assert ens.feature_names == FEATURE_NAMES
    assert not ens.needs_categoricals
    assert ens.n_members == 3 == len(manifest.members)
    x, _ = _rows()
    pred = ens.predict(x)
    for arr in (pred.mean, pred.sd, pred.spread):
        assert arr.shape == (len(x),) and arr.dtype == np.float32
        assert np.isfinite(arr).all()
    means, sds = ens.predict_members(x)
    assert means.shape == sds.shape == (3, len(x))
    assert (sds > 0).all()
    ref = combine_members(means.astype(np.float64), sds.astype(np.float64))
    np.testing.assert_allclose(pred.mean, ref[0], atol=1e-6)
    # The published sd is the mixture sd times the manifest's calibrated factor.
    assert ens.sd_scale == manifest.runtime["sd_calibration"]["scale"] != 1.0
    np.testing.assert_allclose(pred.sd, ref[1] * ens.sd_scale, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pred.spread, ref[2], atol=1e-6)


@pytest.mark.parametrize("arch", ["dense", "rf", "wdl"])
def test_fused_graph_equals_member_by_member(arch: str) -> None:
    model_dir, _ = trained(arch)
    x, cats = _rows(500)
    c = cats if arch == "wdl" else None
    fused = Ensemble.load(model_dir, mode="fused").predict(x, c)
    members = Ensemble.load(model_dir, mode="members").predict(x, c)
    np.testing.assert_allclose(fused.mean, members.mean, atol=1e-6)
    np.testing.assert_allclose(fused.sd, members.sd, atol=1e-6)
    np.testing.assert_allclose(fused.spread, members.spread, atol=1e-6)


def test_nan_rows_give_nan_and_do_not_touch_other_rows() -> None:
    model_dir, _ = trained("dense")
    ens = Ensemble.load(model_dir)
    x, _ = _rows(200)
    clean = ens.predict(x)
    dirty = x.copy()
    dirty[5, 0] = np.nan
    dirty[17, 8] = np.inf
    dirty[100:110, 3] = np.nan
    pred = ens.predict(dirty)
    bad = np.zeros(len(x), bool)
    bad[[5, 17, *range(100, 110)]] = True
    for got, ref in ((pred.mean, clean.mean), (pred.sd, clean.sd), (pred.spread, clean.spread)):
        assert np.isnan(got[bad]).all()
        np.testing.assert_allclose(got[~bad], ref[~bad], atol=1e-6)
    means, _ = ens.predict_members(dirty)
    assert np.isnan(means[:, bad]).all() and np.isfinite(means[:, ~bad]).all()
    all_nan = ens.predict(np.full((4, 9), np.nan, np.float32))
    assert np.isnan(all_nan.mean).all()


def test_batches_give_the_same_figures_as_one_run() -> None:
    model_dir, manifest = trained("dense")
    x, _ = _rows(1000)
    whole = Ensemble(manifest, model_dir, batch_rows=10_000).predict(x)
    parts = Ensemble(manifest, model_dir, batch_rows=77).predict(x)
    np.testing.assert_allclose(whole.mean, parts.mean, atol=1e-7)
    np.testing.assert_allclose(whole.sd, parts.sd, atol=1e-7)


def test_wrong_shapes_and_missing_categoricals_are_refused() -> None:
    model_dir, _ = trained("wdl")
    ens = Ensemble.load(model_dir)
    assert ens.needs_categoricals
    x, cats = _rows(10)
    with pytest.raises(ModelError, match="needs cats"):
        ens.predict(x)
    with pytest.raises(ModelError, match=r"x must be \(n, 9\)"):
        ens.predict(x[:, :8], cats)
    with pytest.raises(ModelError, match="cats must be"):
        ens.predict(x, cats[:, :2])
    unseen = cats.copy()
    unseen[:, 0] = 99  # a code outside the texture table maps to "unknown", never breaks
    unseen[:, 2] = -1
    assert np.isfinite(ens.predict(x, unseen).mean).all()


def test_load_is_cached_per_process_by_manifest_hash() -> None:
    model_dir, manifest = trained("rf")
    a = Ensemble.load(model_dir)
    b = Ensemble.load(Path(str(model_dir)) / ".")
    assert a is b
    assert a.manifest_hash == manifest.manifest_hash == Manifest.read(model_dir).manifest_hash
    clear_cache()
    assert Ensemble.load(model_dir) is not a


# -- verification -------------------------------------------------------------------------


def test_changed_onnx_file_is_refused_naming_it(tmp_path: Path) -> None:
    model_dir = copy_of("dense", tmp_path)
    target = model_dir / Manifest.read(model_dir).members[2].onnx.file
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=rf"{target.name}: sha256 .* does not match"):
        Manifest.load(model_dir)
    with pytest.raises(ManifestError, match=target.name):
        Ensemble.load(model_dir, mode="members")


def test_missing_onnx_file_is_refused(tmp_path: Path) -> None:
    model_dir = copy_of("rf", tmp_path)
    (model_dir / "ensemble.onnx").unlink()
    with pytest.raises(ManifestError, match=r"ensemble.onnx: ONNX file .* is missing"):
        Ensemble.load(model_dir)


def test_corrupted_onnx_with_matching_hash_is_refused_by_onnxruntime(tmp_path: Path) -> None:
    model_dir = copy_of("dense", tmp_path)
    data = json.loads((model_dir / MANIFEST_NAME).read_text())
    (model_dir / "ensemble.onnx").write_bytes(b"not an onnx model at all")
    import hashlib

    data["fused"]["sha256"] = hashlib.sha256(b"not an onnx model at all").hexdigest()
    (model_dir / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"ensemble\.onnx: onnxruntime cannot open it"):
        Ensemble.load(model_dir)


def test_feature_order_mismatch_is_refused(tmp_path: Path) -> None:
    model_dir = copy_of("dense", tmp_path)
    data = json.loads((model_dir / MANIFEST_NAME).read_text())
    names = data["feature_names"]
    names[1], names[2] = names[2], names[1]
    (model_dir / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"feature_names.*another feature order"):
        Ensemble.load(model_dir)
    # and a caller expecting another order is refused by an intact manifest too
    intact, _ = trained("dense")
    with pytest.raises(ManifestError, match="feature_names"):
        Manifest.load(intact, expected_features=list(reversed(FEATURE_NAMES)))


def test_malformed_manifest_names_the_field(tmp_path: Path) -> None:
    model_dir = copy_of("rf", tmp_path)
    data = json.loads((model_dir / MANIFEST_NAME).read_text())
    data["arch"] = "xgboost"
    (model_dir / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="field 'arch'"):
        Manifest.load(model_dir)
    (model_dir / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ManifestError, match="not readable JSON"):
        Manifest.load(model_dir)
    with pytest.raises(ManifestError, match="manifest not found"):
        Manifest.load(tmp_path / "nowhere")


def test_manifest_records_provenance() -> None:
    _, manifest = trained("dense")
    assert manifest.table_hash == tbl.table_hash(small_table())
    assert manifest.split_seed == 3
    assert [m.weight_variable for m in manifest.members] == ["texture", "clay", "none"]
    assert [m.seed for m in manifest.members] == [3, 4, 5]
    assert manifest.feature_units[0] == "m3 m-3" and len(manifest.feature_units) == 9
    assert manifest.normalisation is not None and len(manifest.normalisation.mean) == 9
    assert {"onnxruntime", "numpy"} <= set(manifest.package_versions)
    assert {"rmse", "r", "bias", "ubrmse", "smap_rmse"} <= set(manifest.validation_metrics)


def test_pickling_sends_a_reference_that_reopens_the_cached_ensemble() -> None:
    import pickle

    model_dir, _ = trained("dense")
    ens = Ensemble.load(model_dir)
    blob = pickle.dumps(ens)
    assert len(blob) < 2000  # a path and a hash, not the sessions
    assert pickle.loads(blob) is ens  # same process: the cached object


def test_nan_rows_are_not_passed_to_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir, manifest = trained("dense")
    ens = Ensemble(manifest, model_dir)
    seen: list[np.ndarray] = []
    real_run = ens._run

    def spy(xa: np.ndarray, ca: np.ndarray | None, names: list[str]) -> list[np.ndarray]:
        seen.append(xa.copy())
        return real_run(xa, ca, names)

    monkeypatch.setattr(ens, "_run", spy)
    x, _ = _rows(50)
    x[[3, 7], 2] = np.nan
    ens.predict(x)
    assert sum(len(b) for b in seen) == 48
    assert all(np.isfinite(b).all() for b in seen)
