"""The paper's evaluation tables built from predictions on table rows.

Every function takes a frame of table rows that already carries one column of
predictions per model (m3 m-3) beside ``sm`` (in-situ) and ``smap``, and
returns a plain DataFrame (written to the report and to ``metrics.json``):

- :func:`class_table` - per texture / land-cover / Koeppen class (classes of
  the whole table; a class with no site in the evaluated rows gets one row
  saying so instead of metrics);
- :func:`group_table` - Tables 2 and 3: named station groups (a ``network``
  or ``group`` value); an empty group is an :class:`EmptyGroupError`;
- :func:`member_table` - Table 6: each ensemble member vs the ensemble;
- :func:`head_to_head` - Fig. 13/17/18: where a model beats SMAP's ubRMSE,
  normalised by class abundance;
- :func:`site_pca` and :func:`failure_summary` - Fig. 14 and Table 4: a PCA
  of the sites' static variables and the classes of the sites where the
  model did not beat SMAP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.features import CATEGORY_TABLES
from pipeline.errors import SmdownError
from pipeline.evaluate.metrics import (
    MIN_DAYS,
    SMAP,
    SUMMARY_COLUMNS,
    common_rows,
    summarize,
    wins_over_smap,
)

CLASS_VARIABLES: tuple[str, ...] = ("texture", "landcover", "koppen")
"""The static class references the paper breaks results down by."""

PCA_NUMERIC: tuple[str, ...] = ("sand", "clay", "ph", "elevation")
"""Continuous static variables of the site PCA (standardised)."""


class EvaluationError(SmdownError):
    """The evaluation cannot be made as asked (bad input named in the message)."""


class EmptyGroupError(EvaluationError):
    """A named station group has no site among the evaluated rows."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"station group {name!r}: {problem}")


def class_names(df: pd.DataFrame, variable: str) -> dict[int, str]:
    """Code -> name of a class variable: from the table's ``<var>_name`` column, else the codes."""
    names = dict(CATEGORY_TABLES.get(variable, {}))
    name_col = f"{variable}_name"
    if name_col in df.columns and len(df):
        pairs = df[[variable, name_col]].drop_duplicates(subset=variable)
        names.update({int(c): str(n) for c, n in pairs.itertuples(index=False)})
    return names


def class_table(
    rows: pd.DataFrame,
    models: Mapping[str, str],
    variable: str,
    *,
    all_classes: Sequence[int] | None = None,
    names: Mapping[int, str] | None = None,
    split_label: str = "evaluated",
    min_days: int = MIN_DAYS,
) -> pd.DataFrame:
    """Summary per class of ``variable``: one row per (class, model) plus SMAP.

    ``all_classes`` lists the classes to report (default: those in ``rows``);
    a listed class without any site in ``rows`` gets a single row with
    ``model`` empty and ``note`` saying there is no site of it in the split.
    """
    if variable not in rows.columns:
        raise EvaluationError(f"class variable {variable!r} is not a column of the table")
    present = sorted(int(c) for c in pd.unique(rows[variable].dropna()))
    classes = sorted(set(present) | {int(c) for c in (all_classes or [])})
    names = dict(names) if names is not None else class_names(rows, variable)
    parts: list[pd.DataFrame] = []
    codes = rows[variable].to_numpy()
    for code in classes:
        label = names.get(code, str(code))
        sub = rows[codes == code]
        if sub.empty:
            empty = pd.DataFrame([{"model": "", "n_sites": 0, "n_days": 0}])
            empty["note"] = f"no sites of class {label!r} in the {split_label} split"
        else:
            empty = summarize(sub, models, min_days=min_days)
            n_common = int(common_rows(sub, ["sm", "smap", *models.values()]).sum())
            note = "" if n_common else "no site-day with every prediction and SMAP finite"
            if n_common and (empty["n_sites"] == 0).all():
                note = f"no site with at least {min_days} days"
            empty["note"] = note
        empty.insert(0, "class", label)
        empty.insert(0, "code", code)
        empty.insert(0, "variable", variable)
        parts.append(empty)
    cols = ["variable", "code", "class", *SUMMARY_COLUMNS, "note"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True).reindex(columns=cols)


def group_table(
    rows: pd.DataFrame,
    models: Mapping[str, str],
    groups: Sequence[str],
    *,
    split_label: str = "evaluated",
    min_days: int = MIN_DAYS,
) -> pd.DataFrame:
    """Tables 2 and 3: the summary of each named station group, with SMAP.

    A name matches the ``network`` column, else the ``group`` column. A name
    with no site among ``rows`` raises :class:`EmptyGroupError` listing the
    names that exist.
    """
    parts = []
    for name in groups:
        sub = None
        for col in ("network", "group"):
            if col in rows.columns and (rows[col] == name).any():
                sub = rows[rows[col] == name]
                break
        if sub is None:
            have = sorted(
                {str(v) for c in ("network", "group") if c in rows.columns for v in rows[c]}
            )
            raise EmptyGroupError(
                name,
                f"no site in the {split_label} split (networks/groups there: {', '.join(have)})",
            )
        table = summarize(sub, models, min_days=min_days)
        if (table["n_days"] == 0).all():
            raise EmptyGroupError(
                name,
                f"no site-day with every prediction and SMAP finite in the {split_label} split",
            )
        table.insert(0, "group", name)
        parts.append(table)
    if not parts:
        return pd.DataFrame(columns=["group", *SUMMARY_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def member_table(
    rows: pd.DataFrame,
    ensemble_col: str,
    member_cols: Mapping[str, str],
    *,
    min_days: int = MIN_DAYS,
) -> pd.DataFrame:
    """Table 6: each member and the whole ensemble on the same site-days, with SMAP."""
    models = {**member_cols, "ensemble": ensemble_col}
    return summarize(rows, models, min_days=min_days)


def head_to_head(sites: pd.DataFrame, model: str, variable: str) -> pd.DataFrame:
    """Per class of ``variable``: how often ``model`` beats SMAP's ubRMSE, by class abundance.

    ``sites`` is the long per-site table of :func:`metrics.site_scores` with
    ``variable`` among its attributes. Columns: n_sites, share (of all sites),
    n_wins, win_rate (within the class) and ``normalised`` = (wins in class /
    all wins) / (sites in class / all sites) = win_rate / overall win rate:
    1 means the class wins as often as its abundance predicts, above 1 more.
    """
    wins = wins_over_smap(sites, model)
    cols = ["model", "variable", "code", "class", "n_sites", "share", "n_wins", "win_rate"]
    if wins.empty:
        return pd.DataFrame(columns=[*cols, "normalised"])
    static = sites.drop_duplicates("site_id").set_index("site_id")
    cls = static.loc[wins.index, variable].to_numpy()
    names = dict(CATEGORY_TABLES.get(variable, {}))
    name_col = f"{variable}_name"
    if name_col in static.columns:
        names.update(
            {int(c): str(n) for c, n in zip(static[variable], static[name_col], strict=True)}
        )
    frame = pd.DataFrame({"code": cls, "wins": wins.to_numpy()})
    agg = frame.groupby("code").agg(n_sites=("wins", "size"), n_wins=("wins", "sum")).reset_index()
    total, total_wins = len(frame), int(frame["wins"].sum())
    agg["share"] = agg["n_sites"] / total
    agg["win_rate"] = agg["n_wins"] / agg["n_sites"]
    overall = total_wins / total
    agg["normalised"] = agg["win_rate"] / overall if overall > 0 else np.nan
    agg["class"] = [names.get(int(c), str(c)) for c in agg["code"]]
    agg["model"] = model
    agg["variable"] = variable
    agg["n_wins"] = agg["n_wins"].astype(int)
    return agg[[*cols, "normalised"]]


@dataclass(frozen=True)
class SitePCA:
    """A PCA of the sites' static variables: scores (n_sites, k) and explained variance ratios."""

    site_ids: np.ndarray
    scores: np.ndarray
    explained: np.ndarray
    columns: tuple[str, ...]
    loadings: np.ndarray


def site_pca(
    static: pd.DataFrame,
    *,
    numeric: Sequence[str] = PCA_NUMERIC,
    categorical: Sequence[str] = CLASS_VARIABLES,
    n_components: int = 2,
) -> SitePCA:
    """PCA (numpy SVD) of per-site statics: standardised numerics plus one-hot classes.

    ``static`` has one row per site with ``site_id`` and the named columns.
    Numerics are z-scored (a constant column becomes 0); one-hot columns are
    centred only, so a rare class weighs less than a common one. Needs at
    least two sites.
    """
    static = static.drop_duplicates("site_id")
    if len(static) < 2:
        raise EvaluationError(f"a PCA of the sites needs at least 2 sites, got {len(static)}")
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for col in numeric:
        if col not in static.columns:
            continue
        v: np.ndarray = static[col].to_numpy(dtype=np.float64)
        v = np.where(np.isfinite(v), v, np.nanmean(v) if np.isfinite(v).any() else 0.0)
        sd = v.std()
        blocks.append(((v - v.mean()) / sd if sd > 0 else np.zeros_like(v))[:, None])
        names.append(col)
    for col in categorical:
        if col not in static.columns:
            continue
        codes = static[col].to_numpy()
        for c in sorted(pd.unique(codes)):
            blocks.append((codes == c).astype(np.float64)[:, None])
            names.append(f"{col}={c}")
    x = np.hstack(blocks)
    x = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(n_components, s.size)
    var = s**2
    explained = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    # Fix the sign of each component (largest loading positive) so runs agree.
    signs = np.sign(vt[np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])
    signs[signs == 0] = 1.0
    scores = u[:, :k] * s[:k] * signs
    return SitePCA(
        site_ids=static["site_id"].to_numpy(),
        scores=scores,
        explained=explained,
        columns=tuple(names),
        loadings=vt[:k] * signs[:, None],
    )


def failure_summary(sites: pd.DataFrame, model: str) -> pd.DataFrame:
    """Table 4: per class, how many sites did not beat SMAP's ubRMSE with ``model``.

    Columns: model, variable, code, class, n_sites, n_fail, fail_rate (within
    the class) and share_of_failures (this class's part of all failing sites).
    """
    wins = wins_over_smap(sites, model)
    cols = ["model", "variable", "code", "class", "n_sites", "n_fail"]
    if wins.empty:
        return pd.DataFrame(columns=[*cols, "fail_rate", "share_of_failures"])
    static = sites.drop_duplicates("site_id").set_index("site_id").loc[wins.index]
    fail = ~wins.to_numpy()
    parts = []
    for variable in CLASS_VARIABLES:
        if variable not in static.columns:
            continue
        names = dict(CATEGORY_TABLES.get(variable, {}))
        if f"{variable}_name" in static.columns:
            names.update(
                {
                    int(c): str(n)
                    for c, n in zip(static[variable], static[f"{variable}_name"], strict=True)
                }
            )
        frame = pd.DataFrame({"code": static[variable].to_numpy(), "fail": fail})
        agg = frame.groupby("code").agg(n_sites=("fail", "size"), n_fail=("fail", "sum"))
        agg = agg.reset_index()
        agg["n_fail"] = agg["n_fail"].astype(int)
        agg["fail_rate"] = agg["n_fail"] / agg["n_sites"]
        agg["share_of_failures"] = agg["n_fail"] / fail.sum() if fail.any() else 0.0
        agg["class"] = [names.get(int(c), str(c)) for c in agg["code"]]
        agg["variable"] = variable
        agg["model"] = model
        parts.append(agg)
    if not parts:
        return pd.DataFrame(columns=[*cols, "fail_rate", "share_of_failures"])
    out = pd.concat(parts, ignore_index=True)
    return out[[*cols, "fail_rate", "share_of_failures"]]


def failing_sites(sites: pd.DataFrame, model: str) -> pd.Series:
    """Per site: True where ``model`` did NOT beat SMAP's ubRMSE (the Fig. 14 marks)."""
    return ~wins_over_smap(sites, model)


def fold_mean(fold_summaries: pd.DataFrame) -> pd.DataFrame:
    """The CV row of Table 5: each metric averaged over folds, per model (and its sd over folds).

    ``fold_summaries`` has a ``fold`` column and :data:`SUMMARY_COLUMNS`.
    Counts are summed over folds (a ``cv_holdout`` site counts once per fold).
    """
    if fold_summaries.empty:
        return pd.DataFrame(columns=[*SUMMARY_COLUMNS, "n_folds"])
    count_cols = ["n_sites", "n_days", "n_sites_short", "n_sites_nan_r"]
    value_cols = [c for c in SUMMARY_COLUMNS if c not in ("model", *count_cols)]
    g = fold_summaries.groupby("model", sort=False)
    out = g[value_cols].mean()
    sd = g[value_cols].std(ddof=1).add_suffix("_fold_sd")
    counts = g[count_cols].sum()
    n_folds = g["fold"].nunique().rename("n_folds")
    res = pd.concat([counts, out, sd, n_folds], axis=1).reset_index()
    order = [*SUMMARY_COLUMNS, "n_folds", *sd.columns]
    # Keep the model order of the first fold, SMAP last.
    models = list(dict.fromkeys(fold_summaries["model"]))
    models = [m for m in models if m != SMAP] + ([SMAP] if SMAP in models else [])
    return res.set_index("model").loc[models].reset_index()[order]
