"""Balanced weights w_i = n / (k * n_i), their sums, and the documented binning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import TableConfig
from pipeline.errors import TableError
from pipeline.table import WEIGHT_COLUMNS, balanced_weights, bin_values, weight_columns


def test_formula_on_a_hand_example() -> None:
    # n = 6, k = 3 classes with counts 3, 2, 1: w = 6/(3*3), 6/(3*2), 6/(3*1).
    w = balanced_weights(["a", "a", "a", "b", "b", "c"])
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 2 / 3, 1.0, 1.0, 2.0])
    assert w.dtype == np.float64


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=300))
def test_sum_is_n_and_each_class_gets_equal_total(classes: list[int]) -> None:
    w = balanced_weights(classes)
    n, k = len(classes), len(set(classes))
    assert w.sum() == pytest.approx(n)
    per_class = pd.Series(w).groupby(pd.Series(classes)).sum()
    np.testing.assert_allclose(per_class.to_numpy(), n / k)
    counts = pd.Series(classes).value_counts()
    np.testing.assert_allclose(w, [n / (k * counts[c]) for c in classes])


def test_single_class_is_all_ones_and_nan_refused() -> None:
    np.testing.assert_array_equal(balanced_weights([5, 5, 5]), [1.0, 1.0, 1.0])
    with pytest.raises(TableError):
        balanced_weights([1.0, np.nan])


def test_binning_follows_np_digitize_left_closed() -> None:
    edges = [10.0, 20.0, 30.0]
    x = [0.0, 9.99, 10.0, 19.9, 20.0, 29.999, 30.0, 99.0]
    assert bin_values(x, edges).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(TableError, match="increasing"):
        bin_values(x, [20.0, 10.0])
    with pytest.raises(TableError, match="NaN"):
        bin_values([np.nan], edges)


def test_config_refuses_unsorted_edges() -> None:
    with pytest.raises(ValueError):
        TableConfig(clay_bins=[30.0, 10.0])


def _table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "texture": rng.choice([1, 7, 9], n, p=[0.6, 0.3, 0.1]).astype(np.int16),
            "landcover": rng.choice([10, 12], n).astype(np.int16),
            "koppen": rng.choice([7, 14, 26], n).astype(np.int16),
            "clay": rng.uniform(0, 60, n).astype(np.float32),
            "sand": rng.uniform(0, 100, n).astype(np.float32),
            "ph": rng.uniform(4, 9, n).astype(np.float32),
            "split": rng.choice(["train", "validation"], n, p=[0.8, 0.2]),
        }
    )


def test_weight_columns_fit_on_training_rows() -> None:
    df = _table()
    cfg = TableConfig()
    w = weight_columns(df, cfg)
    assert list(w.columns) == list(WEIGHT_COLUMNS)
    train = (df["split"] == "train").to_numpy()
    for col in WEIGHT_COLUMNS:
        assert w[col].dtype == np.float64
        assert w.loc[train, col].sum() == pytest.approx(train.sum())
    np.testing.assert_array_equal(w["w_none"], 1.0)
    # Clay weights are the balanced weights of the documented digitize classes.
    clay_cls = np.digitize(df["clay"].to_numpy(np.float64), cfg.clay_bins)
    np.testing.assert_allclose(w.loc[train, "w_clay"], balanced_weights(clay_cls[train]))
    # Validation rows carry their class weight as counted on training rows.
    tex_w = (
        pd.Series(w.loc[train, "w_texture"].to_numpy(), index=df.loc[train, "texture"])
        .groupby(level=0)
        .first()
    )
    val = ~train
    np.testing.assert_allclose(
        w.loc[val, "w_texture"], tex_w.loc[df.loc[val, "texture"]].to_numpy()
    )


def test_validation_weights_one_and_unseen_class() -> None:
    df = _table()
    df.loc[df.index[:3], ["texture", "split"]] = [12, "validation"]  # class absent in training
    w_class = weight_columns(df, TableConfig())
    np.testing.assert_array_equal(w_class.loc[df.index[:3], "w_texture"], 1.0)
    w_one = weight_columns(df, TableConfig(validation_weights="one"))
    val = (df["split"] == "validation").to_numpy()
    for col in WEIGHT_COLUMNS:
        np.testing.assert_array_equal(w_one.loc[val, col], 1.0)


def test_fit_mask_for_a_cv_fold() -> None:
    df = _table(seed=4)
    mask = np.zeros(len(df), dtype=bool)
    mask[:50] = True
    w = weight_columns(df, TableConfig(), fit=mask)
    for col in WEIGHT_COLUMNS:
        assert w.loc[mask, col].sum() == pytest.approx(50)
    with pytest.raises(TableError, match="fit mask"):
        weight_columns(df, TableConfig(), fit=mask[:10])
