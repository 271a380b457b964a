"""A numpy traversal of tree ensembles read from ONNX (treelite-style; no scikit-learn).

All trees advance one level per step on a whole (rows x trees) block; leaves
point to themselves, so after ``max_depth`` steps every row sits on a leaf.
Used as the alternative to onnxruntime's TreeEnsembleRegressor in the
benchmark; the runtime uses whichever is faster (see models/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from models.onnxgraph import tree_arrays


@dataclass(frozen=True, slots=True)
class TreeArrays:
    """Flat arrays of a forest: children (self-loops at leaves), split feature and threshold."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    max_depth: int

    @classmethod
    def from_onnx(cls, model: onnx.ModelProto) -> TreeArrays:
        a = tree_arrays(model)
        idx = np.arange(len(a["left"]))
        leaf = a["left"] < 0
        left = np.where(leaf, idx, a["left"]).astype(np.int32)
        right = np.where(leaf, idx, a["right"]).astype(np.int32)
        feature = np.where(leaf, 0, a["feature"]).astype(np.int32)
        return cls(
            feature=feature,
            threshold=a["threshold"],
            left=left,
            right=right,
            value=a["value"],
            roots=a["roots"].astype(np.int32),
            max_depth=_max_depth(left, right, a["roots"], leaf),
        )


def _max_depth(left: np.ndarray, right: np.ndarray, roots: np.ndarray, leaf: np.ndarray) -> int:
    depth = 0
    frontier = roots[~leaf[roots]]
    while frontier.size:
        depth += 1
        children = np.concatenate([left[frontier], right[frontier]])
        frontier = children[~leaf[children]]
    return depth


def predict_trees(trees: TreeArrays, x: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """Leaf values of every tree for every row: (n, n_trees) float32."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    out = np.empty((n, trees.roots.size), np.float32)
    for start in range(0, n, chunk):
        xc = x[start : start + chunk]
        rows = np.arange(xc.shape[0], dtype=np.int32)[:, None]
        node = np.broadcast_to(trees.roots, (xc.shape[0], trees.roots.size)).copy()
        for _ in range(trees.max_depth):
            go_left = xc[rows, trees.feature[node]] <= trees.threshold[node]
            node = np.where(go_left, trees.left[node], trees.right[node])
        out[start : start + chunk] = trees.value[node]
    return out


def predict_normal(trees: TreeArrays, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(loc, scale): mean and population sd over trees, float32 (n,)."""
    per_tree = predict_trees(trees, x).astype(np.float64)
    return per_tree.mean(axis=1).astype(np.float32), per_tree.std(axis=1).astype(np.float32)
