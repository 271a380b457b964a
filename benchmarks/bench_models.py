"""Model inference speed and file sizes: ONNX runtime vs Keras vs scikit-learn (one run).

Trains a 7-member Dense ensemble and an RF ensemble (one 100-tree forest per
texture class) on a synthetic table, then times inference on the same 130k
rows (median of repeats, seconds; ratios are what matter):

- Dense: ONNX fused graph and member-by-member (1 and 2 intra-op threads),
  Keras ``predict`` (batch 8192, TensorFlow on 2 threads), and a numpy
  matmul forward pass (a lower bound for 7 tiny MLPs).
- RF: ONNX fused/member-by-member, scikit-learn ``predict`` (n_jobs=2), and
  the numpy traversal of models/treewalk.py (on a row subset: it is slow).
- File sizes of the ONNX files and of the pickled scikit-learn forests.

Paper figures (Poehls et al. 2025) are listed beside ours for context; they
come from another machine and another training set.
"""

from __future__ import annotations

import os
import pickle
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PAPER = {"dense_s": 0.16, "rf_s": 17.7, "dense_mb": 1.03, "rf_gb": 2.3}
N_ROWS = 130_000


def _median_time(fn: Callable[[], object], repeats: int, *, warmup: bool = True) -> float:
    if warmup:
        fn()  # warm-up (graph tracing, session allocation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rows(table: Any, n: int, seed: int) -> np.ndarray:
    """n rows like the table's inputs: resampled rows with 1 % multiplicative jitter."""
    from models import table as tbl

    x = tbl.features(table)
    rng = np.random.default_rng(seed)
    pick = x[rng.integers(0, len(x), n)]
    return (pick * (1 + 0.01 * rng.standard_normal(pick.shape))).astype(np.float32)


def _dir_mb(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def _numpy_dense(members: list[Any]) -> Callable[[np.ndarray], np.ndarray]:
    """Forward pass of the Dense members with numpy matmuls (standardise folded in)."""
    layers = []
    for model in members:
        norm = model.get_layer("standardise")
        mean = np.asarray(norm.mean).reshape(-1)
        std = np.sqrt(np.asarray(norm.variance).reshape(-1))
        w1, b1 = (np.asarray(v) for v in model.get_layer("hidden1").get_weights())
        w2, b2 = (np.asarray(v) for v in model.get_layer("hidden2").get_weights())
        w3, b3 = (np.asarray(v) for v in model.get_layer("raw").get_weights())
        w1f = (w1 / std[:, None]).astype(np.float32)
        b1f = (b1 - (mean / std) @ w1).astype(np.float32)
        layers.append((w1f, b1f, w2, b2, w3, b3))

    def run(x: np.ndarray) -> np.ndarray:
        out = np.empty((len(layers), x.shape[0]), np.float32)
        for i, (w1, b1, w2, b2, w3, b3) in enumerate(layers):
            h = np.maximum(x @ w1 + b1, 0)
            h = np.maximum(h @ w2 + b2, 0)
            out[i] = (h @ w3 + b3)[:, 0]
        return out

    return run


def dense_figures(table: Any, x: np.ndarray, work: Path, *, quick: bool) -> dict[str, Any]:
    """Train a 7-member Dense ensemble; time ONNX (fused, members), Keras and numpy on ``x``."""
    from models.runtime import Ensemble
    from models.train import train_ensemble

    repeats = 3 if quick else 7
    keras_members: list[Any] = []
    t0 = time.perf_counter()
    manifest = train_ensemble(
        "dense",
        table,
        work / "dense",
        epochs=5 if quick else 15,
        batch_size=512,
        patience=5,
        log=lambda _m: None,
        on_member=lambda _m, native: keras_members.append(native),
    )
    train_s = time.perf_counter() - t0
    model_dir = work / "dense"
    fused1 = Ensemble(manifest, model_dir, intra_op_threads=1, mode="fused")
    fused2 = Ensemble(manifest, model_dir, intra_op_threads=2, mode="fused")
    members1 = Ensemble(manifest, model_dir, intra_op_threads=1, mode="members")
    numpy_fwd = _numpy_dense(keras_members)

    def keras_predict() -> None:
        for model in keras_members:
            model.predict(x, batch_size=8192, verbose=0)

    f: dict[str, Any] = {
        "train_s": train_s,
        "onnx_fused_1thread_s": _median_time(lambda: fused1.predict(x), repeats),
        "onnx_fused_2threads_s": _median_time(lambda: fused2.predict(x), repeats),
        "onnx_members_1thread_s": _median_time(lambda: members1.predict(x), repeats),
        "keras_predict_s": _median_time(keras_predict, max(2, repeats // 2)),
        "numpy_matmul_s": _median_time(lambda: numpy_fwd(x), repeats),
    }
    f["onnx_vs_keras_ratio"] = f["keras_predict_s"] / f["onnx_fused_1thread_s"]
    f["fused_vs_members_ratio"] = f["onnx_members_1thread_s"] / f["onnx_fused_1thread_s"]
    f["numpy_vs_onnx_ratio"] = f["numpy_matmul_s"] / f["onnx_fused_1thread_s"]
    f["member_onnx_mb"] = _dir_mb([model_dir / m.onnx.file for m in manifest.members])
    f["trainable_params_per_member"] = manifest.members[0].n_params
    ref = np.stack([np.asarray(m.predict(x[:5000], verbose=0))[:, 0] for m in keras_members])
    f["max_abs_diff_onnx_vs_keras"] = float(
        np.abs(members1.predict_members(x[:5000])[0] - ref).max()
    )
    return f


def forest_figures(table: Any, x: np.ndarray, work: Path, *, quick: bool) -> dict[str, Any]:
    """Train the RF ensemble; time ONNX (fused, members), scikit-learn and numpy traversal."""
    import onnx

    from models.runtime import Ensemble
    from models.train import train_ensemble
    from models.treewalk import TreeArrays, predict_normal

    repeats = 3 if quick else 1  # full size: one run each (tens of seconds per run)
    forests: list[Any] = []
    t0 = time.perf_counter()
    manifest = train_ensemble(
        "rf",
        table,
        work / "rf",
        n_estimators=20 if quick else 100,
        fuse=True,
        log=lambda _m: None,
        on_member=lambda _m, native: forests.append(native),
    )
    train_s = time.perf_counter() - t0
    model_dir = work / "rf"
    fused1 = Ensemble(manifest, model_dir, intra_op_threads=1, mode="fused")
    members1 = Ensemble(manifest, model_dir, intra_op_threads=1, mode="members")
    members2 = Ensemble(manifest, model_dir, intra_op_threads=2, mode="members")

    def sklearn_predict(rows: np.ndarray, jobs: int) -> np.ndarray:
        return np.mean([f.set_params(n_jobs=jobs).predict(rows) for f in forests], axis=0)

    walker = TreeArrays.from_onnx(onnx.load(model_dir / manifest.members[0].onnx.file))
    first = Ensemble(
        manifest.model_copy(update={"members": manifest.members[:1], "fused": None}),
        model_dir,
        intra_op_threads=1,
        mode="members",
    )
    sub = x[: min(len(x), 20_000)]
    r: dict[str, Any] = {
        "train_s": train_s,
        "forests": len(forests),
        "trees_per_forest": forests[0].n_estimators,
        "nodes_total": int(sum(m.n_params for m in manifest.members)),
        "onnx_fused_1thread_s": _median_time(lambda: fused1.predict(x), repeats, warmup=quick),
        "onnx_members_1thread_s": _median_time(lambda: members1.predict(x), repeats, warmup=quick),
        "onnx_members_2threads_s": _median_time(lambda: members2.predict(x), repeats, warmup=quick),
        "sklearn_predict_1job_s": _median_time(
            lambda: sklearn_predict(x, 1), repeats, warmup=quick
        ),
        "sklearn_predict_2jobs_s": _median_time(
            lambda: sklearn_predict(x, 2), repeats, warmup=quick
        ),
        "one_forest_subset_rows": len(sub),
        "one_forest_onnx_1thread_s": _median_time(lambda: first.predict(sub), 3),
        "one_forest_sklearn_1job_s": _median_time(
            lambda: forests[0].set_params(n_jobs=1).predict(sub), 3
        ),
        "one_forest_numpy_traversal_s": _median_time(lambda: predict_normal(walker, sub), 3),
    }
    r["sklearn_vs_onnx_1thread_ratio"] = r["sklearn_predict_1job_s"] / r["onnx_members_1thread_s"]
    r["fused_vs_members_ratio"] = r["onnx_members_1thread_s"] / r["onnx_fused_1thread_s"]
    r["numpy_vs_onnx_one_forest_ratio"] = (
        r["one_forest_numpy_traversal_s"] / r["one_forest_onnx_1thread_s"]
    )
    r["max_abs_diff_onnx_vs_sklearn"] = float(
        np.abs(members1.predict(x[:5000]).mean - sklearn_predict(x[:5000], 2)).max()
    )
    r["onnx_mb"] = _dir_mb([model_dir / m.onnx.file for m in manifest.members])
    r["sklearn_pickle_mb"] = sum(len(pickle.dumps(f, protocol=5)) for f in forests) / 1e6
    return r


def run(quick: bool = False, parts: tuple[str, ...] = ("dense", "rf")) -> dict[str, Any]:
    """Train the ensembles, time member inference on the same rows, report sizes and ratios."""
    from models.synthetic import synthetic_table

    n_rows = 20_000 if quick else N_ROWS
    table = (
        synthetic_table(n_sites=40, n_days=60, seed=0, n_textures=4)
        if quick
        else synthetic_table(n_sites=200, n_days=365, seed=0, n_textures=10)
    )
    x = _rows(table, n_rows, seed=1)
    work = Path(tempfile.mkdtemp(prefix="smdown-bench-models-"))
    out: dict[str, Any] = {"rows": n_rows, "table_rows": len(table), "paper": PAPER}
    try:
        if "dense" in parts:
            out["dense"] = dense_figures(table, x, work, quick=quick)
        if "rf" in parts:
            out["rf"] = forest_figures(table, x, work, quick=quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["threads"] = {"cpus": os.cpu_count(), "tensorflow": 2, "keras_batch": 8192}
    return out


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    chosen = tuple(p for p in ("dense", "rf") if p in sys.argv) or ("dense", "rf")
    print(json.dumps(run(quick="--quick" in sys.argv, parts=chosen), indent=2, default=str))
