"""RF (Abbaszadeh et al. 2019): one random forest per soil texture class (training side).

Each forest (``n_estimators`` trees, 100 in production) is fitted only on the
rows of its texture class, without sample weights, on float32 inputs (so the
split thresholds are comparable with float32 ONNX inputs). At prediction time
every forest sees every row and the RF prediction is the mean over forests.

In the ensemble files each forest is a member: its ``loc`` is the mean over
its trees (scikit-learn's ``predict``) and its ``scale`` the population sd
over its trees, a spread-of-trees uncertainty (not a calibrated Normal; the
paper's RF gives no sd). The ensemble mean is then the paper's RF prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from models.onnxgraph import ML_OPSET, OPSET, per_tree_forest


def fit_forest(
    x: np.ndarray, y: np.ndarray, *, n_estimators: int = 100, seed: int = 0, n_jobs: int = 2
) -> Any:
    """A seeded RandomForestRegressor fitted on float32 inputs (no sample weights)."""
    from sklearn.ensemble import RandomForestRegressor

    rf = RandomForestRegressor(n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs)
    rf.fit(np.asarray(x, np.float32), np.asarray(y, np.float64))
    return rf


def tree_predictions(rf: Any, x: np.ndarray) -> np.ndarray:
    """Per-tree predictions (n, n_trees), float64 (scikit-learn reference)."""
    x32 = np.asarray(x, np.float32)
    return np.stack([t.predict(x32) for t in rf.estimators_], axis=1)


def forest_to_onnx(rf: Any) -> onnx.ModelProto:
    """skl2onnx conversion, rewritten to output ``loc`` (mean over trees) and ``scale`` (sd)."""
    from skl2onnx import to_onnx

    n_features = int(rf.n_features_in_)
    raw = to_onnx(
        rf,
        np.zeros((1, n_features), np.float32),
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
    )
    thresholds = [np.asarray(t.tree_.threshold, np.float64) for t in rf.estimators_]
    leaves = [np.asarray(t.tree_.value[:, 0, 0], np.float64) for t in rf.estimators_]
    return per_tree_forest(raw, thresholds, leaves)
