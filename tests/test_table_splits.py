"""Site splits: site-disjoint, 20% per texture class, stratified CV folds, small-class rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import TableError
from pipeline.table import assign_splits, cv_masks


def _sites(counts: dict[int, int]) -> pd.DataFrame:
    rows = [(f"net:{code}-{i}", code) for code, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["site_id", "texture"])


site_tables = st.dictionaries(
    keys=st.integers(1, 12), values=st.integers(1, 40), min_size=1, max_size=12
).map(_sites)


@settings(max_examples=60, deadline=None)
@given(sites=site_tables, seed=st.integers(0, 2**31 - 1), n_folds=st.integers(2, 12))
def test_split_properties_over_random_site_tables(
    sites: pd.DataFrame, seed: int, n_folds: int
) -> None:
    out = assign_splits(sites, seed=seed, validation_fraction=0.2, n_folds=n_folds)
    # One row per site: a site is on exactly one side of the split (site-disjoint).
    assert out["site_id"].is_unique and set(out["site_id"]) == set(sites["site_id"])
    assert set(out["split"]) <= {"train", "validation"}
    for code, grp in out.groupby("texture"):
        n = len(grp)
        n_val = int((grp["split"] == "validation").sum())
        expected = 0 if n == 1 else min(int(np.floor(0.2 * n + 0.5)), n - 1)
        assert n_val == expected, (code, n, n_val)
        # Stratified CV: every class spread as evenly as possible over the folds.
        active = grp[~grp["cv_holdout"]]
        counts = np.bincount(active["fold"].to_numpy(), minlength=n_folds)
        assert counts.max() - counts.min() <= 1, (code, counts)
        # Small-class rule: half of a class with fewer than n_folds sites is held out.
        assert int(grp["cv_holdout"].sum()) == (n // 2 if n < n_folds else 0)
    assert out["fold"].between(0, n_folds - 1).all() and out["fold"].dtype == np.int8
    # Fold sizes over the CV-training sites stay within one of each other.
    active_counts = np.bincount(out.loc[~out["cv_holdout"], "fold"], minlength=n_folds)
    assert active_counts.max() - active_counts.min() <= 1


@settings(max_examples=25, deadline=None)
@given(sites=site_tables, seed=st.integers(0, 1000))
def test_seeded_and_order_independent(sites: pd.DataFrame, seed: int) -> None:
    a = assign_splits(sites, seed=seed)
    b = assign_splits(sites.sample(frac=1.0, random_state=seed), seed=seed)
    pd.testing.assert_frame_equal(a, b)


def test_different_seeds_give_different_splits() -> None:
    sites = _sites({1: 50, 7: 50})
    a = assign_splits(sites, seed=1)
    b = assign_splits(sites, seed=2)
    assert (a["split"] != b["split"]).any() and (a["fold"] != b["fold"]).any()


def test_twenty_percent_per_class_exact_counts() -> None:
    out = assign_splits(_sites({1: 100, 2: 10, 3: 7, 4: 1}), seed=0)
    n_val = out[out["split"] == "validation"].groupby("texture").size().to_dict()
    # 20% of 100, 10, 7 (1.4 rounds to 1) sites; a single-site class stays in training.
    assert n_val == {1: 20, 2: 2, 3: 1}


def test_cv_masks_are_site_disjoint_and_cover_every_site() -> None:
    sites = _sites({1: 30, 2: 4, 3: 12})
    out = assign_splits(sites, seed=3, n_folds=10)
    rows = out.loc[out.index.repeat(5)].reset_index(drop=True)  # five days per site
    seen_val: set[str] = set()
    for k in range(10):
        train, val = cv_masks(rows, k)
        assert not (train & val).any()
        assert not set(rows.loc[train, "site_id"]) & set(rows.loc[val, "site_id"])
        seen_val |= set(rows.loc[val, "site_id"])
        # Held-out small-class sites never train and always validate.
        hold = rows["cv_holdout"].to_numpy()
        assert val[hold].all() and not train[hold].any()
    assert seen_val == set(out["site_id"])
    assert int(out["cv_holdout"].sum()) == 2  # half of the 4-site class


def test_inconsistent_texture_is_an_error() -> None:
    sites = pd.DataFrame({"site_id": ["a", "a", "b"], "texture": [1, 2, 1]})
    with pytest.raises(TableError, match="more than one texture"):
        assign_splits(sites)
    with pytest.raises(TableError, match="lacks column"):
        assign_splits(pd.DataFrame({"site_id": ["a"]}))
    with pytest.raises(TableError, match="without texture"):
        assign_splits(pd.DataFrame({"site_id": ["a"], "texture": [np.nan]}))
