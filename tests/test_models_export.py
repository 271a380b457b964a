"""ONNX export parity on held-out rows: networks within 1e-5, forests within 1e-6."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

pytest.importorskip("keras")
pytest.importorskip("skl2onnx")

import keras
from _models_shared import small_table, trained

from models import forest, nets, onnxgraph, train
from models import table as tbl
from models.treewalk import TreeArrays, predict_normal


def _split() -> tuple:
    df = small_table()
    held_out = df["site_id"].isin(sorted(df["site_id"].unique())[-8:])
    return df.loc[~held_out], df.loc[held_out]


def _session(proto: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _fit(model: keras.Model, inputs: object, y: np.ndarray) -> None:
    model.compile(optimizer=keras.optimizers.Adam(5e-3), loss=nets.gaussian_nll)
    model.fit(inputs, y, epochs=3, batch_size=256, verbose=0)


@pytest.mark.parametrize("arch", ["dense", "wdl"])
def test_network_onnx_matches_keras_within_1e5(arch: str) -> None:
    fit_df, test_df = _split()
    x, c, y = tbl.features(fit_df), tbl.categoricals(fit_df), tbl.target(fit_df)
    keras.utils.set_random_seed(11)
    model = nets.build_dense(x) if arch == "dense" else nets.build_wdl(x)
    _fit(model, [x, c] if arch == "wdl" else x, y)
    proto = train._to_onnx(model, arch)
    assert [i.name for i in proto.graph.input] == (["x", "cats"] if arch == "wdl" else ["x"])
    assert [o.name for o in proto.graph.output] == ["loc", "scale"]
    xt, ct = tbl.features(test_df), tbl.categoricals(test_df)
    feed = {"x": xt} | ({"cats": ct} if arch == "wdl" else {})
    loc, scale = _session(proto).run(["loc", "scale"], feed)
    native = np.asarray(model.predict([xt, ct] if arch == "wdl" else xt, verbose=0))
    assert np.abs(loc - native[:, 0]).max() <= 1e-5
    assert np.abs(scale - native[:, 1]).max() <= 1e-5
    assert (scale > 0).all()


def test_prob_onnx_matches_its_baked_keras_graph_and_documents_sample_error() -> None:
    fit_df, test_df = _split()
    x, y = tbl.features(fit_df), tbl.target(fit_df)
    keras.utils.set_random_seed(12)
    model = nets.build_prob(x, n_train=len(x), seed=12)
    _fit(model, x, y)
    export = nets.prob_export_model(model, 64, seed=12)
    proto = train._to_onnx(export, "prob")
    xt = tbl.features(test_df)
    loc, scale = _session(proto).run(["loc", "scale"], {"x": xt})
    native = np.asarray(export.predict(xt, verbose=0))
    assert np.abs(loc - native[:, 0]).max() <= 1e-5
    assert np.abs(scale - native[:, 1]).max() <= 1e-5
    # the in-graph figures are the mixture over the 64 baked samples (float64 reference)
    hidden = np.asarray(nets.prob_hidden_model(model).predict(xt, verbose=0))
    k, b = model.get_layer("variational").posterior_samples(64, 12)
    ref_mean, ref_sd = nets.mixture_numpy(hidden, k, b)
    assert np.abs(loc - ref_mean).max() <= 1e-5 and np.abs(scale - ref_sd).max() <= 1e-5
    # and their error against 10000 samples is measured and small beside the predicted sd
    err = train._prob_sample_error(model, xt, 64, 12)
    assert err["mean_max_abs"] < 0.25 * float(np.median(scale))
    assert err["sd_rms"] < 0.25 * float(np.median(scale))


def test_prob_manifest_reports_the_baked_sample_error() -> None:
    _, manifest = trained("prob")
    arch = manifest.architecture
    assert arch["posterior_samples_in_graph"] == train.PROB_SAMPLES
    errors = arch["sample_error_vs_10000"]
    assert set(errors) == {"mean_max_abs", "mean_rms", "sd_max_abs", "sd_rms"}
    assert all(0 <= v < 0.05 for v in errors.values())  # m3 m-3


def test_forest_onnx_matches_sklearn_within_1e6() -> None:
    fit_df, test_df = _split()
    x, y = tbl.features(fit_df), tbl.target(fit_df)
    rf = forest.fit_forest(x, y, n_estimators=25, seed=0, n_jobs=2)
    proto = forest.forest_to_onnx(rf)
    xt = tbl.features(test_df)
    # inputs that sit exactly on training values stress the threshold rounding
    xt = np.vstack([xt, x[:500]])
    loc, scale = _session(proto).run(["loc", "scale"], {"x": xt})
    assert np.abs(loc - rf.predict(xt)).max() <= 1e-6
    per_tree = forest.tree_predictions(rf, xt)
    assert np.abs(scale - per_tree.std(axis=1)).max() <= 1e-6
    # the numpy traversal reads the same ONNX arrays and agrees
    np_loc, np_scale = predict_normal(TreeArrays.from_onnx(proto), xt)
    assert np.abs(np_loc - rf.predict(xt)).max() <= 1e-6
    assert np.abs(np_scale - per_tree.std(axis=1)).max() <= 1e-6


def test_threshold_rounding_is_exact_on_float32_inputs() -> None:
    # a float64 threshold halfway between two adjacent float32 values rounds *up* in a
    # plain float32 cast; floor_float32 keeps "x <= t" identical to scikit-learn's test
    a = np.float32(0.3)
    b = np.nextafter(a, np.float32(1))
    t = (float(a) + float(b)) / 2
    f = np.float32(onnxgraph.floor_float32(t))
    assert f == a
    assert (b <= f) == (float(b) <= t) and (a <= f) == (float(a) <= t)


def test_rf_ensemble_is_one_forest_per_texture_class_and_files_are_small() -> None:
    model_dir, manifest = trained("rf")
    classes = sorted(int(c) for c in small_table().query("split == 'train'")["texture"].unique())
    assert [m.texture_class for m in manifest.members] == classes
    assert all(m.weight_variable is None for m in manifest.members)
    for m in manifest.members:
        assert m.onnx_parity is not None and m.onnx_parity <= 1e-6
        assert (model_dir / m.onnx.file).stat().st_size < 2**31  # protobuf limit
    assert manifest.architecture["n_estimators"] == 10


def test_fused_graph_outputs_and_inputs() -> None:
    model_dir, manifest = trained("wdl")
    assert manifest.fused is not None
    fused = onnx.load(model_dir / manifest.fused.file)
    assert [i.name for i in fused.graph.input] == ["x", "cats"]
    assert [o.name for o in fused.graph.output] == list(onnxgraph.FUSED_OUTPUTS)
