"""ONNX graph surgery with the ``onnx`` package only (no TensorFlow, no scikit-learn).

Conventions of every member file: inputs ``x`` float32 (N, F), F the manifest's
features (9 for the paper set) [and ``cats`` int64 (N, 3) for WDL]; outputs
``loc`` and ``scale`` float32 (N,), the member's Normal in m3 m-3. The fused
file of an ensemble has the same inputs and outputs ``mean``, ``sd``, ``spread``
(N,) and ``member_loc``, ``member_scale`` (N, m), computed as in
``models.ensemble.combine_members``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # default domain; ReduceMean keeps ``axes`` as an attribute up to 17
ML_OPSET = 3  # ai.onnx.ml TreeEnsembleRegressor v3
FUSED_OUTPUTS: tuple[str, ...] = ("mean", "sd", "spread", "member_loc", "member_scale")


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    return {o.domain: o.version for o in model.opset_import}


def with_normal_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Split a single (N, 2) [loc, scale] output into outputs ``loc`` and ``scale`` (N,)."""
    if len(model.graph.output) != 1:
        raise ValueError(f"expected one (N, 2) output, got {len(model.graph.output)}")
    src = model.graph.output[0].name
    g = model.graph
    for i, name in enumerate(("loc", "scale")):
        idx = f"_{name}_index"
        g.initializer.append(numpy_helper.from_array(np.array(i, np.int64), idx))
        g.node.append(helper.make_node("Gather", [src, idx], [name], axis=1, name=f"{name}_out"))
    del g.output[:]
    for name in ("loc", "scale"):
        g.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N"]))
    onnx.checker.check_model(model)
    return model


def per_tree_forest(
    model: onnx.ModelProto, thresholds: Sequence[np.ndarray], leaf_values: Sequence[np.ndarray]
) -> onnx.ModelProto:
    """Rewrite a skl2onnx forest so it outputs ``loc`` (mean over trees) and ``scale`` (sd).

    The TreeEnsembleRegressor is changed to write one column per tree (its
    leaf value, float32), then mean and population sd over trees are taken in
    the graph. Thresholds are replaced by the largest float32 <= the
    scikit-learn float64 threshold, so ``x <= t`` decides exactly as
    scikit-learn does on float32 inputs. ``thresholds[t]`` / ``leaf_values[t]``
    are indexed by scikit-learn node id of tree t.
    """
    nodes = [n for n in model.graph.node if n.op_type == "TreeEnsembleRegressor"]
    if len(nodes) != 1:
        raise ValueError("expected exactly one TreeEnsembleRegressor node")
    attrs = {a.name: helper.get_attribute_value(a) for a in nodes[0].attribute}
    tree_ids = np.asarray(attrs["nodes_treeids"], np.int64)
    node_ids = np.asarray(attrs["nodes_nodeids"], np.int64)
    is_leaf = np.array(
        [(m.decode() if isinstance(m, bytes) else m) == "LEAF" for m in attrs["nodes_modes"]]
    )
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in thresholds])])
    all_thr = np.concatenate([np.asarray(t, np.float64) for t in thresholds])
    all_leaf = np.concatenate([np.asarray(v, np.float64) for v in leaf_values])
    values = np.where(is_leaf, 0.0, floor_float32_array(all_thr[offsets[tree_ids] + node_ids]))
    t_tree = np.asarray(attrs["target_treeids"], np.int64)
    t_node = np.asarray(attrs["target_nodeids"], np.int64)
    weights = all_leaf[offsets[t_tree] + t_node].astype(np.float32)
    n_trees = len(thresholds)
    new_attrs = dict(attrs)
    new_attrs.update(
        n_targets=n_trees,
        nodes_values=values.astype(np.float32).tolist(),
        target_ids=t_tree.tolist(),
        target_weights=weights.tolist(),
        aggregate_function="SUM",
        post_transform="NONE",
    )
    new_attrs.pop("base_values", None)
    x_name = "x"
    tree_node = helper.make_node(
        "TreeEnsembleRegressor", [x_name], ["trees"], domain="ai.onnx.ml", name="trees", **new_attrs
    )
    n_features = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value or 9
    graph = _normal_from_columns("forest", tree_node, x_name, n_features)
    out = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="smdown (skl2onnx + per-tree rewrite)",
    )
    onnx.checker.check_model(out)
    return out


def _normal_from_columns(
    name: str, tree_node: onnx.NodeProto, x_name: str, n_features: int
) -> onnx.GraphProto:
    nodes = [
        tree_node,
        helper.make_node("ReduceMean", ["trees"], ["loc2"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["trees", "loc2"], ["dev"]),
        helper.make_node("Mul", ["dev", "dev"], ["dev2"]),
        helper.make_node("ReduceMean", ["dev2"], ["var2"], axes=[1], keepdims=1),
        helper.make_node("Sqrt", ["var2"], ["scale2"]),
        helper.make_node("Squeeze", ["loc2", "_axis1"], ["loc"]),
        helper.make_node("Squeeze", ["scale2", "_axis1"], ["scale"]),
    ]
    return helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(x_name, TensorProto.FLOAT, ["N", n_features])],
        [
            helper.make_tensor_value_info("loc", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["N"]),
        ],
        initializer=[numpy_helper.from_array(np.array([1], np.int64), "_axis1")],
    )


def floor_float32(t: float) -> float:
    """The largest float32 value <= t (so float32 x <= result iff x <= t)."""
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


def floor_float32_array(t: np.ndarray) -> np.ndarray:
    """Vectorised ``floor_float32``: the largest float32 <= each float64 value."""
    t = np.asarray(t, np.float64)
    f = t.astype(np.float32)
    return np.where(f.astype(np.float64) > t, np.nextafter(f, np.float32(-np.inf)), f)


def fuse_members(members: Sequence[onnx.ModelProto], input_names: Sequence[str]) -> onnx.ModelProto:
    """One graph running every member on shared inputs and combining them in-graph.

    Outputs: ``mean``, ``sd`` (equal-weight mixture), ``spread`` (sd of member
    means) as (N,), and ``member_loc``, ``member_scale`` as (N, m).
    """
    if not members:
        raise ValueError("no members to fuse")
    opsets: dict[str, int] = {}
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    graph_inputs: dict[str, onnx.ValueInfoProto] = {}
    locs: list[str] = []
    scales: list[str] = []
    for i, member in enumerate(members):
        for dom, ver in _opsets(member).items():
            opsets[dom] = max(opsets.get(dom, 0), ver)
        prefix = f"m{i}_"
        pm = onnx.compose.add_prefix(member, prefix=prefix)
        rename = {prefix + n: n for n in input_names}
        for inp in member.graph.input:
            if inp.name in input_names and inp.name not in graph_inputs:
                graph_inputs[inp.name] = inp
        for node in pm.graph.node:
            for k, name in enumerate(node.input):
                if name in rename:
                    node.input[k] = rename[name]
            nodes.append(node)
        inits.extend(pm.graph.initializer)
        for out, acc in (("loc", locs), ("scale", scales)):
            col = f"{prefix}{out}_col"
            nodes.append(helper.make_node("Unsqueeze", [prefix + out, "_axis1"], [col]))
            acc.append(col)
    nodes += [
        helper.make_node("Concat", locs, ["member_loc"], axis=1),
        helper.make_node("Concat", scales, ["member_scale"], axis=1),
        helper.make_node("ReduceMean", ["member_loc"], ["mean2"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["member_loc", "mean2"], ["dev"]),
        helper.make_node("Mul", ["dev", "dev"], ["dev2"]),
        helper.make_node("ReduceMean", ["dev2"], ["between2"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["member_scale", "member_scale"], ["s2"]),
        helper.make_node("ReduceMean", ["s2"], ["within2"], axes=[1], keepdims=1),
        helper.make_node("Add", ["within2", "between2"], ["var2"]),
        helper.make_node("Sqrt", ["var2"], ["sd2"]),
        helper.make_node("Sqrt", ["between2"], ["spread2"]),
        helper.make_node("Squeeze", ["mean2", "_axis1"], ["mean"]),
        helper.make_node("Squeeze", ["sd2", "_axis1"], ["sd"]),
        helper.make_node("Squeeze", ["spread2", "_axis1"], ["spread"]),
    ]
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "_axis1"))
    nodes, inits = _dedupe_initializers(nodes, inits)
    m = len(members)
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N"]) for n in FUSED_OUTPUTS[:3]
    ]
    outputs += [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", m]) for n in FUSED_OUTPUTS[3:]
    ]
    graph = helper.make_graph(
        nodes, "ensemble", [graph_inputs[n] for n in input_names], outputs, initializer=inits
    )
    fused = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        producer_name="smdown (fused ensemble)",
    )
    fused.ir_version = max(mm.ir_version for mm in members)
    onnx.checker.check_model(fused)
    return fused


def _dedupe_initializers(
    nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Merge byte-identical constants (e.g. the members' shared standardisation).

    onnxruntime's common-subexpression elimination then computes identical
    member nodes (the standardised inputs) once instead of once per member.
    """
    first: dict[tuple[int, tuple[int, ...], bytes], str] = {}
    rename: dict[str, str] = {}
    kept: list[onnx.TensorProto] = []
    for t in inits:
        key = (t.data_type, tuple(t.dims), numpy_helper.to_array(t).tobytes())
        if key in first:
            rename[t.name] = first[key]
        else:
            first[key] = t.name
            kept.append(t)
    for node in nodes:
        for k, name in enumerate(node.input):
            if name in rename:
                node.input[k] = rename[name]
    return nodes, kept


def tree_arrays(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The TreeEnsembleRegressor of a member file as flat numpy arrays (for numpy traversal).

    Returns global-index arrays ``feature``, ``threshold`` (float32), ``left``,
    ``right`` (child global index, -1 for leaves), ``value`` (float32 leaf
    value) and ``roots`` (global index of each tree's root).
    """
    nodes = [n for n in model.graph.node if n.op_type == "TreeEnsembleRegressor"]
    if len(nodes) != 1:
        raise ValueError("expected exactly one TreeEnsembleRegressor node")
    a = {x.name: helper.get_attribute_value(x) for x in nodes[0].attribute}
    tree = np.asarray(a["nodes_treeids"], np.int64)
    node = np.asarray(a["nodes_nodeids"], np.int64)
    modes = np.array([m.decode() if isinstance(m, bytes) else m for m in a["nodes_modes"]])
    if not set(np.unique(modes)) <= {"BRANCH_LEQ", "LEAF"}:
        raise ValueError(f"unsupported node modes {sorted(set(modes))}")
    key = tree * (node.max() + 1) + node
    order = np.argsort(key)
    sorted_key = key[order]

    def index_of(t: np.ndarray, n: np.ndarray) -> np.ndarray:
        return order[np.searchsorted(sorted_key, t * (node.max() + 1) + n)]

    is_leaf = modes == "LEAF"
    left = np.where(is_leaf, -1, index_of(tree, np.asarray(a["nodes_truenodeids"], np.int64)))
    right = np.where(is_leaf, -1, index_of(tree, np.asarray(a["nodes_falsenodeids"], np.int64)))
    value = np.zeros(len(node), np.float32)
    leaf_idx = index_of(np.asarray(a["target_treeids"]), np.asarray(a["target_nodeids"]))
    np.add.at(value, leaf_idx, np.asarray(a["target_weights"], np.float32))
    n_trees = int(tree.max()) + 1
    roots = index_of(np.arange(n_trees), np.zeros(n_trees, np.int64))
    return {
        "feature": np.asarray(a["nodes_featureids"], np.int64),
        "threshold": np.asarray(a["nodes_values"], np.float32),
        "left": left,
        "right": right,
        "value": value,
        "roots": roots,
    }
