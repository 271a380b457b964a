"""Feature screening (paper 2.0.1) and leave-one-variable-out importance (paper 2.0.2).

Screening, per candidate variable against the in-situ target ``sm``:

* Pearson, Kendall (tau-b) and Spearman correlations; each one with
  ``|r| < screen_corr_threshold`` (default 0.1) gives one mark. A variable
  without variance (correlation undefined) gets the mark.
* Random-forest importance (scikit-learn ``RandomForestRegressor``,
  impurity-based ``feature_importances_``, ``screen_rf_trees`` trees, leaves
  of at least 5 samples, each tree on at most 20,000 bootstrap rows) below
  ``screen_rf_fraction`` (default 25%) of the most important variable gives one
  mark.
* ``screen_marks_to_drop`` (default 2) or more marks drop the variable.

Leave-one-variable-out (LOVO): a small random forest (``max(10,
screen_rf_trees // 2)`` trees, same settings) is trained on the training
sites with all variables, then once without each variable; importance is the
increase of RMSE (m3 m-3) on the validation sites when the variable is left
out, and variables are ranked by it (largest first). Training/validation are
the table's site-disjoint ``split``; a table without one is split 80/20 by
site (seeded).

Both parts run on at most ``screen_max_rows`` rows sampled with
``screen_seed`` so the report takes seconds to a few minutes on a
657,935-row table. This is a training-side tool: scikit-learn is imported
lazily.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.features import FEATURE_NAMES
from pipeline.config import TableConfig
from pipeline.errors import TableError

TARGET = "sm"
MIN_SAMPLES_LEAF = 5
MAX_SAMPLES_PER_TREE = 20_000


@dataclass(frozen=True, slots=True)
class VariableScreen:
    """Screening result of one variable."""

    name: str
    pearson: float
    kendall: float
    spearman: float
    rf_importance: float
    rf_relative: float  # importance / importance of the top variable
    marks: int
    dropped: bool


@dataclass(frozen=True, slots=True)
class LovoResult:
    """Leave-one-variable-out result of one variable (RMSE in m3 m-3)."""

    name: str
    rmse_without: float
    delta_rmse: float
    rank: int


@dataclass(frozen=True, slots=True)
class ScreeningReport:
    """The screening table, the LOVO ranking and the settings that made them."""

    variables: tuple[VariableScreen, ...]
    lovo: tuple[LovoResult, ...]
    rmse_all: float
    n_rows: int
    n_train_rows: int
    n_validation_rows: int
    settings: dict[str, Any]

    @property
    def kept(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables if not v.dropped)

    @property
    def dropped(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables if v.dropped)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (NaN written as null)."""
        return _nan_to_none(
            {
                "variables": [asdict(v) for v in self.variables],
                "lovo": [asdict(r) for r in self.lovo],
                "rmse_all": self.rmse_all,
                "n_rows": self.n_rows,
                "n_train_rows": self.n_train_rows,
                "n_validation_rows": self.n_validation_rows,
                "kept": list(self.kept),
                "dropped": list(self.dropped),
                "settings": self.settings,
            }
        )


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


def correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(Pearson r, Kendall tau-b, Spearman rho) of x and y; NaN where undefined."""
    from scipy import stats

    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan, math.nan
    pearson = float(stats.pearsonr(x, y).statistic)
    kendall = float(stats.kendalltau(x, y).statistic)
    spearman = float(stats.spearmanr(x, y).statistic)
    return pearson, kendall, spearman


def _forest(n_trees: int, n_rows: int, seed: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(
        n_estimators=n_trees,
        min_samples_leaf=MIN_SAMPLES_LEAF,
        max_samples=min(n_rows, MAX_SAMPLES_PER_TREE) if n_rows > MAX_SAMPLES_PER_TREE else None,
        n_jobs=2,
        random_state=seed,
    )


def _sample(table: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    if len(table) <= max_rows:
        return table
    return table.sample(n=max_rows, random_state=seed).sort_index()


def _train_validation(df: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Site-disjoint boolean masks: the table's split, or an 80/20 site split (seeded)."""
    if "split" in df.columns:
        train = (df["split"] == "train").to_numpy()
        val = (df["split"] == "validation").to_numpy()
        if train.any() and val.any():
            return train, val
    if "site_id" not in df.columns:
        raise TableError("screening needs 'split' or 'site_id' to keep validation site-disjoint")
    sites = np.sort(df["site_id"].astype(str).unique())
    if len(sites) < 2:
        raise TableError("screening needs at least two sites for a site-disjoint validation")
    rng = np.random.default_rng(seed)
    n_val = max(1, int(np.floor(0.2 * len(sites) + 0.5)))
    val_sites = set(rng.permutation(sites)[:n_val].tolist())
    val = df["site_id"].astype(str).isin(val_sites).to_numpy()
    return ~val, val


def screen_features(
    table: pd.DataFrame,
    cfg: TableConfig,
    *,
    features: Sequence[str] = FEATURE_NAMES,
    target: str = TARGET,
) -> ScreeningReport:
    """Screen ``features`` against ``target`` (paper 2.0.1) and rank them by LOVO (2.0.2)."""
    features = list(features)
    missing = [c for c in [*features, target] if c not in table.columns]
    if missing:
        raise TableError(f"table lacks column(s) {missing} needed for screening")
    if len(features) < 2:
        raise TableError("screening needs at least two variables")
    df = table.dropna(subset=[*features, target])
    if len(df) < 20:
        raise TableError(f"only {len(df)} complete rows: too few to screen features")
    df = _sample(df, cfg.screen_max_rows, cfg.screen_seed)
    x = df[features].to_numpy(dtype=np.float64)
    y = df[target].to_numpy(dtype=np.float64)

    rf = _forest(cfg.screen_rf_trees, len(df), cfg.screen_seed).fit(x, y)
    importance = np.asarray(rf.feature_importances_, dtype=np.float64)
    top = float(importance.max()) if importance.size else 0.0
    screens = []
    for j, name in enumerate(features):
        p, k, s = correlations(x[:, j], y)
        marks = sum(1 for r in (p, k, s) if not (abs(r) >= cfg.screen_corr_threshold))
        rel = float(importance[j] / top) if top > 0 else 0.0
        marks += int(rel < cfg.screen_rf_fraction)
        screens.append(
            VariableScreen(
                name=name,
                pearson=p,
                kendall=k,
                spearman=s,
                rf_importance=float(importance[j]),
                rf_relative=rel,
                marks=marks,
                dropped=marks >= cfg.screen_marks_to_drop,
            )
        )

    train, val = _train_validation(df, cfg.screen_seed)
    n_small = max(10, cfg.screen_rf_trees // 2)

    def rmse_with(col_list: list[int]) -> float:
        cols = np.asarray(col_list, dtype=np.intp)
        model = _forest(n_small, int(train.sum()), cfg.screen_seed)
        model.fit(x[np.ix_(train, cols)], y[train])
        model.set_params(n_jobs=1)  # threaded prediction sums trees in a racy order
        err = model.predict(x[np.ix_(val, cols)]) - y[val]
        return float(np.sqrt(np.mean(err**2)))

    all_cols = list(range(len(features)))
    rmse_all = rmse_with(all_cols)
    deltas = []
    for j, name in enumerate(features):
        r = rmse_with([c for c in all_cols if c != j])
        deltas.append((name, r, r - rmse_all))
    order = sorted(deltas, key=lambda t: -t[2])
    lovo = tuple(
        LovoResult(name=n, rmse_without=r, delta_rmse=d, rank=i + 1)
        for i, (n, r, d) in enumerate(order)
    )
    settings = {
        "corr_threshold": cfg.screen_corr_threshold,
        "rf_fraction": cfg.screen_rf_fraction,
        "marks_to_drop": cfg.screen_marks_to_drop,
        "rf_trees": cfg.screen_rf_trees,
        "lovo_trees": n_small,
        "min_samples_leaf": MIN_SAMPLES_LEAF,
        "max_samples_per_tree": MAX_SAMPLES_PER_TREE,
        "max_rows": cfg.screen_max_rows,
        "seed": cfg.screen_seed,
        "target": target,
    }
    return ScreeningReport(
        variables=tuple(screens),
        lovo=lovo,
        rmse_all=rmse_all,
        n_rows=len(df),
        n_train_rows=int(train.sum()),
        n_validation_rows=int(val.sum()),
        settings=settings,
    )


def _fmt(v: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def report_markdown(report: ScreeningReport) -> str:
    """The report as Markdown: screening table, kept/dropped, LOVO ranking."""
    s = report.settings
    lines = [
        "# Feature screening (Poehls et al. 2025, 2.0.1 and 2.0.2)",
        "",
        f"{report.n_rows} rows ({report.n_train_rows} training, "
        f"{report.n_validation_rows} validation, site-disjoint); target `{s['target']}` (m3 m-3).",
        "",
        "## Screening",
        "",
        f"One mark per correlation with |r| < {s['corr_threshold']}, one mark for random-forest "
        f"importance < {s['rf_fraction']:.0%} of the top variable ({s['rf_trees']} trees); "
        f"{s['marks_to_drop']} or more marks drop the variable.",
        "",
        "| variable | Pearson | Kendall | Spearman | RF importance | RF / top | marks | decision |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for v in report.variables:
        lines.append(
            f"| {v.name} | {_fmt(v.pearson)} | {_fmt(v.kendall)} | {_fmt(v.spearman)} | "
            f"{_fmt(v.rf_importance)} | {_fmt(v.rf_relative, 2)} | {v.marks} | "
            f"{'drop' if v.dropped else 'keep'} |"
        )
    lines += [
        "",
        f"Kept: {', '.join(report.kept) or '(none)'}. "
        f"Dropped: {', '.join(report.dropped) or '(none)'}.",
        "",
        "## Leave-one-variable-out importance",
        "",
        f"Random forest of {s['lovo_trees']} trees; validation RMSE with all variables "
        f"{_fmt(report.rmse_all, 4)} m3 m-3.",
        "",
        "| rank | variable left out | RMSE without (m3 m-3) | increase (m3 m-3) |",
        "| ---: | --- | ---: | ---: |",
    ]
    for r in report.lovo:
        lines.append(
            f"| {r.rank} | {r.name} | {_fmt(r.rmse_without, 4)} | {_fmt(r.delta_rmse, 4)} |"
        )
    return "\n".join(lines) + "\n"


def write_report(report: ScreeningReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``screening.md`` and ``screening.json`` into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "screening.md"
    js = out / "screening.json"
    md.write_text(report_markdown(report), encoding="utf-8")
    js.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return md, js
