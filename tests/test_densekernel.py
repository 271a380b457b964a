"""The Dense kernel gives the fused ONNX graph's exact bits (published values unchanged).

Ensembles of 1 to 12 members are made from the trained Dense members of
``_models_shared`` by rescaling their weights (the graphs stay the tf2onnx ones), fused
with ``models.onnxgraph.fuse_members`` as training does, and run both ways on the same
rows, in batch lengths with every remainder modulo 4 (onnxruntime's Softplus has a
scalar tail there) and on rows far outside the training range.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _models_shared import trained
from onnx import numpy_helper

from models import densekernel
from models.densekernel import DenseKernel, dense_weights
from models.errors import ModelError
from models.onnxgraph import fuse_members
from models.runtime import Ensemble, clear_cache

NAMES = ["mean", "sd", "spread", "member_loc", "member_scale"]


def _members(n: int, seed: int = 0) -> list[tuple[str, onnx.ModelProto]]:
    """n Dense member graphs: the trained ones with weights rescaled per member."""
    model_dir, manifest = trained("dense")
    base = [onnx.load(model_dir / m.onnx.file) for m in manifest.members]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        m = onnx.ModelProto()
        m.CopyFrom(base[i % len(base)])
        for t in m.graph.initializer:
            a = numpy_helper.to_array(t)
            if a.dtype == np.float32 and a.ndim == 2 and a.shape[0] > 1 and i >= len(base):
                a = (a * rng.uniform(0.5, 1.5, a.shape)).astype(np.float32)
                t.CopyFrom(numpy_helper.from_array(a, t.name))
        out.append((f"member{i}", m))
    return out


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def _rows(n: int, seed: int, spread: float = 1.0) -> np.ndarray:
    """Rows in model units: smap, ndvi, lst, precip, sand, clay, ph, et, elevation."""
    rng = np.random.default_rng(seed)
    lo = np.array([0.05, 0.1, 5.0, 0.0, 5.0, 5.0, 5.0, 0.2, 0.0])
    hi = np.array([0.45, 0.85, 40.0, 12.0, 80.0, 50.0, 8.5, 5.0, 3000.0])
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * spread
    return rng.uniform(mid - half, mid + half, (n, 9)).astype(np.float32)


@pytest.mark.parametrize("n_members", [1, 3, 4, 5, 6, 7, 8, 9, 12])
def test_kernel_matches_fused_graph_bit_for_bit(n_members: int) -> None:
    members = _members(n_members, seed=n_members)
    fused = _session(fuse_members([m for _, m in members], ["x"]))
    kernel = DenseKernel(dense_weights(members))
    for n, spread in ((20_001, 1.0), (4096, 1.0), (1022, 30.0), (7, 1.0), (2, 1.0), (1, 1.0)):
        x = _rows(n, seed=n + n_members, spread=spread)
        ref = dict(zip(NAMES, fused.run(NAMES, {"x": x}), strict=True))
        got = kernel.run(x)
        for name in NAMES:
            diff = np.count_nonzero(got[name] != ref[name])
            assert diff == 0, f"{n_members} members, {n} rows: {diff} {name} values differ"
            assert got[name].dtype == np.float32


def test_softplus_replica_matches_onnxruntime_over_a_wide_range() -> None:
    # Wide raw values through the head: x maps to raw scale linearly (weights overwritten).
    name, m = _members(1)[0]
    w = dense_weights([(name, m)])
    rng = np.random.default_rng(5)
    raw = np.concatenate(
        [rng.uniform(-120, 100, 40_000), rng.normal(0, 3, 40_000), [0.0, -0.0, 88.7, -87.5, -104.5]]
    ).astype(np.float32)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Softplus", ["r"], ["s"])],
        "sp",
        [onnx.helper.make_tensor_value_info("r", onnx.TensorProto.FLOAT, ["N"])],
        [onnx.helper.make_tensor_value_info("s", onnx.TensorProto.FLOAT, ["N"])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    ref = _session(model).run(None, {"r": raw})[0]
    got = densekernel.softplus_array(raw)
    n_vec = raw.size - raw.size % 4
    assert np.array_equal(got[:n_vec].view(np.uint32), ref[:n_vec].view(np.uint32))
    assert w.floor == np.float32(1e-3)


def test_weights_refuse_a_graph_that_is_not_the_dense_member() -> None:
    name, m = _members(1)[0]
    bad = onnx.ModelProto()
    bad.CopyFrom(m)
    bad.graph.node[4].op_type = "Sigmoid"
    with pytest.raises(ModelError, match="member0: not the Dense member graph"):
        dense_weights([(name, bad)])


def test_ensemble_uses_the_kernel_and_predicts_as_the_fused_graph(tmp_path: Path) -> None:
    model_dir, _ = trained("dense")
    clear_cache()
    auto = Ensemble.load(model_dir)
    fused = Ensemble.load(model_dir, mode="fused")
    assert auto.mode == "kernel", auto.kernel_note
    assert fused.mode == "fused"
    x = _rows(70_001, seed=3)  # two batches of the runtime, the second with a tail
    x[5, 2] = np.nan  # a missing input: NaN out, row not passed to the model
    a, f = auto.predict(x), fused.predict(x)
    for name in ("mean", "sd", "spread"):
        assert np.array_equal(getattr(a, name), getattr(f, name), equal_nan=True), name
    assert np.isnan(a.mean[5])
    for got, ref in zip(auto.predict_members(x), fused.predict_members(x), strict=True):
        assert np.array_equal(got, ref, equal_nan=True)
    # More than one intra-op thread: onnxruntime splits element-wise nodes elsewhere.
    two = Ensemble.load(model_dir, intra_op_threads=2)
    assert two.mode == "fused" and "intra-op" in two.kernel_note
    clear_cache()


def test_kernel_mode_refuses_what_it_cannot_match(tmp_path: Path) -> None:
    model_dir, _ = trained("dense")
    copy = tmp_path / "dense"
    shutil.copytree(model_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    # A member whose file no longer is the Dense pattern (but hashes as the manifest says).
    member = manifest["members"][0]["onnx"]
    m = onnx.load(copy / member["file"])
    m.graph.node[4].op_type = "Sigmoid"
    data = m.SerializeToString()
    (copy / member["file"]).write_bytes(data)
    member["sha256"] = hashlib.sha256(data).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    clear_cache()
    ens = Ensemble.load(copy)
    assert ens.mode == "fused" and "not the Dense member graph" in ens.kernel_note
    with pytest.raises(ModelError, match="mode='kernel' unavailable"):
        Ensemble.load(copy, mode="kernel")
    clear_cache()
