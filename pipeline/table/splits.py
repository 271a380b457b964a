"""Site-disjoint validation split and texture-stratified CV folds (paper 3.1 and 4.5).

Everything is decided per *site*, never per row, so no site has days on both
sides of a split. Both assignments are deterministic functions of the seed and
the *set* of (site_id, texture) pairs: the input order does not matter.

Validation split (paper 3.1): within each USDA texture class the sites are
shuffled (seeded) and ``round(validation_fraction * n)`` of them (half-up
rounding) go to ``"validation"``, the rest to ``"train"``. A class always keeps
at least one training site: a class of one site is all training, and the
validation count is capped at ``n - 1``.

CV folds (paper 4.5), ``n_folds`` folds stratified by texture class:

* A class with at least ``n_folds`` sites is shuffled and dealt round-robin
  over the folds, so every fold gets ``floor(n/k)`` or ``ceil(n/k)`` of its
  sites. The dealing continues across classes (class order sorted by code) so
  the leftover sites of successive classes fill different folds and the fold
  sizes stay within one site of each other class by class.
* A class with fewer than ``n_folds`` sites cannot appear in every fold. As the
  paper does, half of its sites (``n // 2``, chosen at random) are put in "the
  validation fold": we read this as *held out of every CV training set and
  scored in every CV validation set* (column ``cv_holdout`` True). The other
  half is dealt round-robin like a large class.

So CV fold k trains on ``(fold != k) & ~cv_holdout`` and validates on
``(fold == k) | cv_holdout``. Every site still has a ``fold`` in
``0..n_folds-1`` (a ``cv_holdout`` site keeps the fold it was dealt, which a
plain k-fold that ignores ``cv_holdout`` may use safely).

CV folds are assigned over all sites, independently of the 80/20 split: the
CV is a separate evaluation of the modelling choice, the 80/20 split is the
one the published models are trained and validated on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.errors import TableError

SPLIT_TRAIN = "train"
SPLIT_VALIDATION = "validation"


def _site_classes(sites: pd.DataFrame) -> pd.DataFrame:
    """One row per site with its texture code, sorted by site_id; checks consistency."""
    missing = {"site_id", "texture"} - set(sites.columns)
    if missing:
        raise TableError(f"site table lacks column(s) {sorted(missing)}")
    df = sites[["site_id", "texture"]].copy()
    df["site_id"] = df["site_id"].astype(str)
    if df["texture"].isna().any():
        bad = df.loc[df["texture"].isna(), "site_id"].tolist()[:5]
        raise TableError(f"site(s) without texture class: {bad}")
    df = df.drop_duplicates()
    dup = df["site_id"].duplicated(keep=False)
    if dup.any():
        bad = sorted(df.loc[dup, "site_id"].unique().tolist())[:5]
        raise TableError(f"site(s) with more than one texture class: {bad}")
    df["texture"] = df["texture"].astype(np.int64)
    return df.sort_values("site_id", kind="stable").reset_index(drop=True)


def _class_rng(seed: int, salt: int, code: int) -> np.random.Generator:
    """A generator per (purpose, class): adding a class never reshuffles another."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, salt, code & 0xFFFFFFFF])


def assign_splits(
    sites: pd.DataFrame,
    *,
    seed: int = 42,
    validation_fraction: float = 0.2,
    n_folds: int = 10,
) -> pd.DataFrame:
    """Per-site ``split`` ("train"/"validation"), CV ``fold`` (int8) and ``cv_holdout`` (bool).

    ``sites`` has columns ``site_id`` and ``texture`` (USDA code); duplicate
    rows of one site are fine, a site with two classes is a ``TableError``.
    Returns one row per site, sorted by ``site_id``.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise TableError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if n_folds < 2:
        raise TableError(f"n_folds must be at least 2, got {n_folds}")
    df = _site_classes(sites)
    n_sites = len(df)
    split = np.full(n_sites, SPLIT_TRAIN, dtype=object)
    fold = np.zeros(n_sites, dtype=np.int8)
    holdout = np.zeros(n_sites, dtype=bool)
    next_fold = 0
    for code_key, idx_list in df.groupby("texture", sort=True).indices.items():
        code = int(code_key)  # type: ignore[call-overload]
        idx = np.asarray(idx_list)
        n = len(idx)
        # 80/20 split of this class.
        order = _class_rng(seed, 1, code).permutation(idx)
        n_val = int(np.floor(validation_fraction * n + 0.5)) if n > 1 else 0
        n_val = min(n_val, n - 1)
        split[order[:n_val]] = SPLIT_VALIDATION
        # CV folds of this class.
        order = _class_rng(seed, 2, code).permutation(idx)
        n_hold = n // 2 if n < n_folds else 0
        holdout[order[:n_hold]] = True
        # Deal the CV-training sites first so they, not the held-out ones, are balanced.
        order = np.concatenate([order[n_hold:], order[:n_hold]])
        dealt = (next_fold + np.arange(n)) % n_folds
        fold[order] = dealt.astype(np.int8)
        next_fold = (next_fold + n - n_hold) % n_folds
    return pd.DataFrame(
        {
            "site_id": df["site_id"].to_numpy(dtype=object),
            "texture": df["texture"].to_numpy(dtype=np.int16),
            "split": split,
            "fold": fold,
            "cv_holdout": holdout,
        }
    )


def cv_masks(table: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row masks of CV fold ``k`` of a table with ``fold``/``cv_holdout``."""
    fold = table["fold"].to_numpy()
    hold = (
        table["cv_holdout"].to_numpy(dtype=bool)
        if "cv_holdout" in table
        else np.zeros(len(table), dtype=bool)
    )
    return (fold != k) & ~hold, (fold == k) | hold
