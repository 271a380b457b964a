"""Train an ensemble, export every member to ONNX, fuse them, and write the manifest.

``train_ensemble`` is the one entry point (used by ``smdown train`` and by
cross-validation). TensorFlow/Keras and scikit-learn are imported lazily, on
the first call, so importing this module is cheap.

Networks (dense, prob, wdl): 7 members, one per sample-weight variable of
``models.features.WEIGHT_VARIABLES``, member i seeded with ``seed + i``;
Adam, Gaussian NLL, early stopping on a site-disjoint inner split of the
training sites (20 %, seeded by ``seed``), best weights restored.
Forests (rf): one forest per texture class present in the training rows
(see models/forest.py); no sample weights, no early stopping.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from models import calibration
from models import table as tbl
from models.errors import ModelError
from models.features import (
    CATEGORICALS,
    DEFAULT_FEATURE_SET,
    WEIGHT_VARIABLES,
    FeatureSet,
    check_feature_set,
    feature_names,
)
from models.manifest import (
    Arch,
    Manifest,
    Member,
    Normalisation,
    feature_units,
    onnx_entry,
    package_versions,
)
from models.onnxgraph import fuse_members

ARCHS: tuple[str, ...] = ("dense", "prob", "wdl", "rf")
INNER_FRACTION = 0.2
LEARNING_RATE = 5e-3
PROB_SAMPLES = 64  # posterior weight samples baked into each Prob ONNX graph
PROB_REFERENCE_SAMPLES = 10000
FUSE_LIMIT_BYTES = 1_500_000_000  # a fused graph must stay below protobuf's 2 GB
PARITY_TOLERANCE = {"dense": 1e-5, "prob": 1e-5, "wdl": 1e-5, "rf": 1e-6}
VERSIONED = (
    "smdown",
    "numpy",
    "pandas",
    "onnx",
    "onnxruntime",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "scikit-learn",
    "skl2onnx",
    "tf2onnx",
)


MIN_STEPS_PER_EPOCH = 32


def effective_batch_size(batch_size: int, n_rows: int) -> int:
    """The configured batch size, made smaller for small tables so that an epoch has at
    least ``MIN_STEPS_PER_EPOCH`` gradient steps (never below 32 rows).

    With a few thousand rows and batches of 512, an epoch is 3-4 steps and early stopping
    (patience counted in epochs) ends training long before the network has converged.
    """
    return max(1, min(batch_size, max(32, n_rows // MIN_STEPS_PER_EPOCH)))


class TrainError(ModelError):
    """Training or export of an ensemble failed (names the member at fault)."""


def train_ensemble(
    arch: str,
    table: pd.DataFrame | Path | str,
    out_dir: Path | str,
    *,
    seed: int = 0,
    epochs: int = 200,
    batch_size: int = 512,
    patience: int = 10,
    rows: tbl.RowSelector = "train",
    table_hash: str | None = None,
    log: Callable[[str], None] = print,
    n_estimators: int = 100,
    threads: int = 2,
    prob_samples: int = PROB_SAMPLES,
    learning_rate: float = LEARNING_RATE,
    fuse: bool | None = None,
    weight_variables: Sequence[str] = WEIGHT_VARIABLES,
    on_member: Callable[[Member, Any], None] | None = None,
    calibrate_sd: bool = True,
    feature_set: FeatureSet | str = DEFAULT_FEATURE_SET,
    family: str | None = None,
    products: dict[str, str] | None = None,
) -> Manifest:
    """Train the ``arch`` ensemble on ``rows`` of ``table``, export to ``out_dir``; the manifest.

    ``table`` is the training table (DataFrame or Parquet path, schema in
    models/table.py). ``rows``: "train" (split == train), "all", or a callable
    giving a row mask (cross-validation folds). Threads: TensorFlow and
    scikit-learn use at most ``threads``. ``weight_variables`` picks the network
    members (default: all seven; fewer only for quick experiments and tests).
    ``on_member(member, native)`` is called with each trained Keras model or
    scikit-learn forest (benchmarks compare them with their ONNX files).
    ``fuse`` writes the fused ``ensemble.onnx`` (default: networks yes, forests
    no; benchmarks/bench_models.py measured fused faster for the small
    networks and member-by-member faster for deep forests).
    ``calibrate_sd``: with ``rows="train"``, fit the sd calibration
    (``models.calibration``) on the validation split and record it in the
    manifest (``runtime["sd_calibration"]``), which the runtime applies.
    ``feature_set``: the inputs (``models.features.FEATURE_SETS``; the table must hold
    them), recorded in the manifest with their order.
    ``family``/``products``: the product family and products of the inputs, recorded in
    the manifest (default: what the Parquet table's metadata records).
    """
    if arch not in ARCHS:
        raise TrainError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    try:
        fset = check_feature_set(feature_set)
    except ValueError as exc:
        raise TrainError(str(exc)) from exc
    names = feature_names(fset)
    if not isinstance(table, pd.DataFrame):
        recorded, recorded_products = tbl.table_inputs(table)
        family = family or recorded
        products = products if products is not None else recorded_products
        table = tbl.read_table(table)
    tbl.check_table(table, names=names)
    if table_hash is None:
        table_hash = tbl.table_hash(table)
    selected = tbl.select_rows(table, rows)
    train_df = tbl.complete_rows(selected, names)
    dropped = len(selected) - len(train_df)
    if len(train_df) == 0:
        raise TrainError("no complete training rows (every row has a NaN input, target or weight)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows_desc = rows if isinstance(rows, str) else getattr(rows, "__name__", "callable")
    n_sites = train_df["site_id"].nunique()
    log(
        f"train {arch} ({fset} features): {len(train_df)} rows from {n_sites} sites "
        f"(rows={rows_desc}, {dropped} incomplete rows dropped) -> {out}"
    )
    t_start = time.perf_counter()
    if arch == "rf":
        members, extra = _train_forests(
            train_df, out, seed, n_estimators, threads, log, on_member, names
        )
        normalisation = None
        inner: dict[str, Any] = {"used": False, "reason": "forests use no early stopping"}
    else:
        members, extra, normalisation, inner = _train_networks(
            arch,
            train_df,
            out,
            seed=seed,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            threads=threads,
            prob_samples=prob_samples,
            learning_rate=learning_rate,
            weight_variables=weight_variables,
            log=log,
            on_member=on_member,
            names=names,
        )
    inputs = ["x", "cats"] if arch == "wdl" else ["x"]
    if fuse is None:
        fuse = arch != "rf"
    fused_entry = None
    member_bytes = sum((out / m.onnx.file).stat().st_size for m in members)
    if fuse and member_bytes > FUSE_LIMIT_BYTES:
        log(
            f"members total {member_bytes / 1e9:.2f} GB: no fused graph (protobuf files are "
            "limited to 2 GB); the runtime runs the member files one by one"
        )
        fuse = False
    if fuse:
        fused = fuse_members([onnx.load(out / m.onnx.file) for m in members], inputs)
        onnx.save(fused, out / "ensemble.onnx")
        fused_entry = onnx_entry(out, "ensemble.onnx")
    manifest = Manifest(
        arch=_arch(arch),
        members=members,
        fused=fused_entry,
        feature_set=fset,
        feature_names=list(names),
        feature_units=feature_units(fset),
        categoricals=list(CATEGORICALS) if arch == "wdl" else [],
        inputs=inputs,
        normalisation=normalisation,
        table_hash=table_hash,
        family=family,
        products=dict(products or {}),
        split_seed=seed,
        rows=str(rows_desc),
        inner_split=inner,
        architecture=extra,
        package_versions=package_versions(VERSIONED),
        runtime={"default_mode": "fused" if fuse else "members"},
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    manifest.write(out)
    holdout = _holdout_rows(table, rows)
    if holdout is not None:
        holdout = holdout.loc[np.isfinite(holdout[list(names)].to_numpy(np.float64)).all(axis=1)]
    if holdout is not None and len(holdout):
        metrics = evaluate_dir(out, holdout)
        manifest = manifest.model_copy(update={"validation_metrics": metrics})
        manifest.write(out)
        log(
            f"validation ({metrics['n']:.0f} rows, {metrics['n_sites']:.0f} sites): "
            f"RMSE {metrics['rmse']:.4f}, ubRMSE {metrics['ubrmse']:.4f}, bias "
            f"{metrics['bias']:+.4f}, R {metrics['r']:.3f} m3 m-3 "
            f"(SMAP alone: RMSE {metrics['smap_rmse']:.4f}, R {metrics['smap_r']:.3f})"
        )
        if calibrate_sd and rows == "train":
            manifest = _calibrate(out, manifest, holdout, seed=seed, log=log)
    log(f"train {arch}: done in {time.perf_counter() - t_start:.1f} s; manifest {out}")
    return manifest


def _calibrate(
    out: Path, manifest: Manifest, holdout: pd.DataFrame, *, seed: int, log: Callable[[str], None]
) -> Manifest:
    """Fit the sd scale on the validation rows (raw ensemble sd) and record it in the manifest."""
    from models.runtime import Ensemble

    ens = Ensemble.load(out, intra_op_threads=2)
    cats = tbl.categoricals(holdout) if ens.needs_categoricals else None
    pred = ens.predict(tbl.features(holdout, ens.feature_names), cats)
    obs = holdout[tbl.TARGET].to_numpy(np.float64)
    try:
        record = calibration.calibration_record(
            obs, pred.mean, pred.sd, holdout["site_id"].to_numpy(), seed=seed
        )
    except ValueError as exc:
        log(f"sd calibration skipped: {exc}")
        return manifest
    runtime = {**manifest.runtime, calibration.KEY: record}
    manifest = manifest.model_copy(update={"runtime": runtime})
    manifest.write(out)
    log(
        f"sd calibration on {record['n_sites']} validation sites: scale {record['scale']:.3f}; "
        f"within +-1 sd {100 * record['coverage_1sd_raw']:.0f} % raw -> "
        f"{100 * record['coverage_1sd_crossfit']:.0f} % cross-fitted by site "
        f"(+-2 sd {100 * record['coverage_2sd_crossfit']:.0f} %)"
    )
    return manifest


def _arch(arch: str) -> Arch:
    if arch == "dense":
        return "dense"
    if arch == "prob":
        return "prob"
    if arch == "wdl":
        return "wdl"
    return "rf"


def _holdout_rows(table: pd.DataFrame, rows: tbl.RowSelector) -> pd.DataFrame | None:
    """Rows to report validation metrics on: the validation split, or a CV fold's complement."""
    if isinstance(rows, str):
        if rows == "train" and "split" in table.columns:
            return table.loc[table["split"].astype(str) == "validation"]
        return None
    mask = np.asarray(rows(table), dtype=bool)
    return table.loc[~mask]


def score(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    """Bias, RMSE, ubRMSE (m3 m-3) and Pearson R of ``pred`` against ``obs`` (finite pairs)."""
    p = np.asarray(pred, np.float64)
    o = np.asarray(obs, np.float64)
    ok = np.isfinite(p) & np.isfinite(o)
    p, o = p[ok], o[ok]
    if p.size < 2:
        return {"n": float(p.size), "bias": np.nan, "rmse": np.nan, "ubrmse": np.nan, "r": np.nan}
    d = p - o
    r = float(np.corrcoef(p, o)[0, 1]) if p.std() > 0 and o.std() > 0 else float("nan")
    return {
        "n": float(p.size),
        "bias": float(d.mean()),
        "rmse": float(np.sqrt((d**2).mean())),
        "ubrmse": float(np.sqrt(((d - d.mean()) ** 2).mean())),
        "r": r,
    }


def evaluate_dir(model_dir: Path, rows: pd.DataFrame) -> dict[str, float]:
    """Pooled metrics of the exported ensemble (through the ONNX runtime) and of SMAP alone."""
    from models.runtime import Ensemble

    ens = Ensemble.load(model_dir, intra_op_threads=2)
    cats = tbl.categoricals(rows) if ens.needs_categoricals else None
    pred = ens.predict(tbl.features(rows, ens.feature_names), cats)
    obs = rows[tbl.TARGET].to_numpy(np.float64)
    out = score(pred.mean, obs)
    smap = score(rows["smap"].to_numpy(np.float64), obs)
    out |= {f"smap_{k}": v for k, v in smap.items() if k != "n"}
    out["n_sites"] = float(rows["site_id"].nunique())
    out["mean_sd"] = float(np.nanmean(pred.sd))
    out["mean_spread"] = float(np.nanmean(pred.spread))
    return out


# -- networks -----------------------------------------------------------------------------


def _setup_tf(threads: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from models import nets

    nets.configure_threads(threads)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)


def _to_onnx(model: Any, arch: str) -> onnx.ModelProto:
    import tensorflow as tf
    import tf2onnx

    from models.onnxgraph import OPSET, with_normal_outputs

    sig = [tf.TensorSpec((None, int(model.inputs[0].shape[-1])), tf.float32, name="x")]
    if arch == "wdl":
        sig.append(tf.TensorSpec((None, len(CATEGORICALS)), tf.int64, name="cats"))
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=sig, opset=OPSET)
    return with_normal_outputs(proto)


def _onnx_predict(proto: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    loc, scale = sess.run(["loc", "scale"], feed)
    return np.stack([loc, scale], axis=1)


def _train_networks(
    arch: str,
    df: pd.DataFrame,
    out: Path,
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    patience: int,
    threads: int,
    prob_samples: int,
    learning_rate: float,
    weight_variables: Sequence[str],
    log: Callable[[str], None],
    on_member: Callable[[Member, Any], None] | None,
    names: tuple[str, ...],
) -> tuple[list[Member], dict[str, Any], Normalisation, dict[str, Any]]:
    _setup_tf(threads)
    import keras

    from models import nets

    inner_mask, inner_sites = tbl.inner_split(
        df["site_id"].to_numpy(), seed=seed, fraction=INNER_FRACTION
    )
    fit_df, val_df = df.loc[~inner_mask], df.loc[inner_mask]
    x_fit, x_val = tbl.features(fit_df, names), tbl.features(val_df, names)
    y_fit, y_val = tbl.target(fit_df), tbl.target(val_df)
    c_fit, c_val = tbl.categoricals(fit_df), tbl.categoricals(val_df)
    inputs_fit: Any = [x_fit, c_fit] if arch == "wdl" else x_fit
    inputs_val: Any = [x_val, c_val] if arch == "wdl" else x_val
    feed_val = {"x": x_val} | ({"cats": c_val} if arch == "wdl" else {})
    inner = {
        "used": True,
        "fraction": INNER_FRACTION,
        "seed": seed,
        "n_fit_sites": int(fit_df["site_id"].nunique()),
        "n_inner_sites": len(inner_sites),
        "n_fit_rows": len(fit_df),
        "n_inner_rows": len(val_df),
        "inner_sites": sorted(inner_sites),
    }
    members: list[Member] = []
    sample_errors: list[dict[str, float]] = []
    normalisation: Normalisation | None = None
    n_params = 0
    unknown = sorted(set(weight_variables) - set(WEIGHT_VARIABLES))
    if unknown or not weight_variables:
        raise TrainError(f"weight variables {unknown or '[]'}: choose from {WEIGHT_VARIABLES}")
    batch = effective_batch_size(batch_size, len(x_fit))
    if batch != batch_size:
        log(f"  batch size {batch} (not {batch_size}): >= {MIN_STEPS_PER_EPOCH} steps per epoch")
    for i, var in enumerate(weight_variables):
        t0 = time.perf_counter()
        member_seed = seed + i
        keras.utils.set_random_seed(member_seed)
        if arch == "dense":
            model = nets.build_dense(x_fit)
        elif arch == "prob":
            model = nets.build_prob(x_fit, n_train=len(x_fit), seed=member_seed)
        else:
            model = nets.build_wdl(x_fit)
        n_params = nets.trainable_params(model)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=nets.gaussian_nll)
        w_fit = fit_df[f"w_{var}"].to_numpy(np.float32)
        w_val = val_df[f"w_{var}"].to_numpy(np.float32)
        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        )
        hist = model.fit(
            inputs_fit,
            y_fit,
            sample_weight=w_fit,
            validation_data=(inputs_val, y_val, w_val),
            epochs=epochs,
            batch_size=batch,
            callbacks=[stop],
            shuffle=True,
            verbose=0,
        )
        val_losses = [float(v) for v in hist.history["val_loss"]]
        if not np.isfinite(val_losses).any():
            raise TrainError(f"{arch} member {i} ({var}): inner-validation loss is not finite")
        if normalisation is None:
            norm = model.get_layer("standardise")
            mean = np.asarray(norm.mean).reshape(-1)
            std = np.sqrt(np.asarray(norm.variance).reshape(-1))
            normalisation = Normalisation(mean=mean.tolist(), std=std.tolist())
        export_model = model
        if arch == "prob":
            export_model = nets.prob_export_model(model, prob_samples, seed=member_seed)
            sample_errors.append(_prob_sample_error(model, x_val, prob_samples, member_seed))
        proto = _to_onnx(export_model, arch)
        native = np.asarray(export_model.predict(inputs_val, batch_size=65536, verbose=0))
        parity = float(np.abs(_onnx_predict(proto, feed_val) - native).max())
        if parity > PARITY_TOLERANCE[arch]:
            raise TrainError(
                f"{arch} member {i} ({var}): ONNX differs from Keras by {parity:.2e} "
                f"> {PARITY_TOLERANCE[arch]:.0e}"
            )
        name = f"{arch}_{i}_{var}"
        onnx.save(proto, out / f"{name}.onnx")
        secs = time.perf_counter() - t0
        members.append(
            Member(
                name=name,
                onnx=onnx_entry(out, f"{name}.onnx"),
                weight_variable=var,
                seed=member_seed,
                n_params=n_params,
                n_train_rows=len(fit_df),
                epochs_run=len(val_losses),
                best_inner_loss=float(np.nanmin(val_losses)),
                onnx_parity=parity,
                train_seconds=round(secs, 3),
            )
        )
        if on_member is not None:
            on_member(members[-1], export_model)
        log(
            f"  member {i + 1}/{len(weight_variables)} {name}: {len(val_losses)} epochs, "
            f"best inner NLL {np.nanmin(val_losses):.4f}, ONNX parity {parity:.1e}, {secs:.1f} s"
        )
        if on_member is None:
            keras.backend.clear_session()
    assert normalisation is not None
    extra: dict[str, Any] = {
        "trainable_params_per_member": n_params,
        "normalisation_counted": False,
        "loss": "Gaussian negative log-likelihood (ELBO with KL/n_train for prob)",
        "output": "independent Normal: loc, scale = softplus(raw) + 1e-3 (m3 m-3)",
        "learning_rate": learning_rate,
        "epochs_max": epochs,
        "batch_size": batch,
        "patience": patience,
    }
    if arch == "prob":
        extra["posterior_samples_in_graph"] = prob_samples
        extra["sample_error_vs_10000"] = {
            k: max(e[k] for e in sample_errors) for k in sample_errors[0]
        }
    return members, extra, normalisation, inner


def _prob_sample_error(model: Any, x: np.ndarray, n_samples: int, seed: int) -> dict[str, float]:
    """Error (m3 m-3) of the S baked samples' mixture against 10000 posterior samples."""
    from models import nets

    layer = model.get_layer("variational")
    hidden = np.asarray(nets.prob_hidden_model(model).predict(x, batch_size=65536, verbose=0))
    k_s, b_s = layer.posterior_samples(n_samples, seed)
    k_r, b_r = layer.posterior_samples(PROB_REFERENCE_SAMPLES, seed + 7919)
    m_s, s_s = nets.mixture_numpy(hidden, k_s, b_s)
    m_r, s_r = nets.mixture_numpy(hidden, k_r, b_r)
    return {
        "mean_max_abs": float(np.abs(m_s - m_r).max()),
        "mean_rms": float(np.sqrt(((m_s - m_r) ** 2).mean())),
        "sd_max_abs": float(np.abs(s_s - s_r).max()),
        "sd_rms": float(np.sqrt(((s_s - s_r) ** 2).mean())),
    }


# -- forests ------------------------------------------------------------------------------


def _train_forests(
    df: pd.DataFrame,
    out: Path,
    seed: int,
    n_estimators: int,
    threads: int,
    log: Callable[[str], None],
    on_member: Callable[[Member, Any], None] | None = None,
    names: tuple[str, ...] | None = None,
) -> tuple[list[Member], dict[str, Any]]:
    from models.forest import fit_forest, forest_to_onnx

    x = tbl.features(df, names if names is not None else feature_names(DEFAULT_FEATURE_SET))
    y = tbl.target(df)
    texture = df["texture"].to_numpy(np.int64)
    classes = sorted(int(c) for c in np.unique(texture))
    members: list[Member] = []
    rng = np.random.default_rng(seed)
    check_rows = x[rng.choice(len(x), size=min(len(x), 2000), replace=False)]
    worst = 0.0
    for i, cls in enumerate(classes):
        t0 = time.perf_counter()
        sel = texture == cls
        rf = fit_forest(x[sel], y[sel], n_estimators=n_estimators, seed=seed + i, n_jobs=threads)
        proto = forest_to_onnx(rf)
        native = rf.predict(check_rows)
        parity = float(np.abs(_onnx_predict(proto, {"x": check_rows})[:, 0] - native).max())
        if parity > PARITY_TOLERANCE["rf"]:
            raise TrainError(f"rf forest for texture {cls}: ONNX differs by {parity:.2e}")
        worst = max(worst, parity)
        name = f"rf_{i}_texture{cls}"
        onnx.save(proto, out / f"{name}.onnx")
        n_nodes = int(sum(t.tree_.node_count for t in rf.estimators_))
        secs = time.perf_counter() - t0
        members.append(
            Member(
                name=name,
                onnx=onnx_entry(out, f"{name}.onnx"),
                texture_class=cls,
                seed=seed + i,
                n_params=n_nodes,
                n_train_rows=int(sel.sum()),
                onnx_parity=parity,
                train_seconds=round(secs, 3),
            )
        )
        if on_member is not None:
            on_member(members[-1], rf)
        size_mb = (out / f"{name}.onnx").stat().st_size / 1e6
        log(
            f"  forest {i + 1}/{len(classes)} {name}: {int(sel.sum())} rows, {n_nodes} nodes, "
            f"{size_mb:.1f} MB, ONNX parity {parity:.1e}, {secs:.1f} s"
        )
    extra = {
        "n_estimators": n_estimators,
        "texture_classes": classes,
        "member": "one forest per texture class; loc = mean over trees, scale = sd over trees",
        "sample_weights": "none (Abbaszadeh et al. 2019)",
        "n_params_means": "tree nodes",
    }
    return members, extra
