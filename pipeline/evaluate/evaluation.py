"""``run_evaluation``: score ensembles on the validation split or by 10-fold CV, beside SMAP.

Validation: each ensemble (a model directory) predicts the ``validation``
rows of the training table; every table and figure is computed on the
site-days where the in-situ value, SMAP and every model are finite.

CV (paper 4.5): for each fold ``k`` and each architecture a fresh ensemble is
trained on the fold's training rows (``pipeline.table.cv_masks``: ``fold !=
k`` and not ``cv_holdout``; sample weights refitted on those rows) and
predicts the fold's validation rows. Folds are submitted to a Dask client
when one is given (``client.submit``; one task trains and predicts one fold
of one architecture), else they run one after the other. Table 5's CV row is
the mean over folds of each fold's metrics (``cv_folds`` lists them all); the
per-site and per-class analyses use the out-of-fold predictions, where a
``cv_holdout`` site (scored in every fold) takes the mean of its fold
predictions.

With ``truth_world`` and ``cube`` (a synthetic world and the maps made on
it) the whole maps are scored against the known 90 m truth too.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from models.ensemble import combine_members
from models.features import CATEGORICALS, DEFAULT_FEATURE_SET, FEATURE_SETS, feature_names
from pipeline.evaluate import figures
from pipeline.evaluate.analysis import (
    CLASS_VARIABLES,
    PCA_NUMERIC,
    EvaluationError,
    class_names,
    class_table,
    failing_sites,
    failure_summary,
    fold_mean,
    group_table,
    head_to_head,
    member_table,
    site_pca,
)
from pipeline.evaluate.calibration import (
    coverage_table,
    map_coverage,
    reliability_figure,
    reliability_table,
)
from pipeline.evaluate.intervals import interval_table
from pipeline.evaluate.metrics import MIN_DAYS, SMAP, common_rows, site_scores, summarize
from pipeline.evaluate.practice import good_practice_table, heldout_text
from pipeline.evaluate.report import TABLE5, EvaluationResults, write_report

log = logging.getLogger(__name__)

Split = Literal["validation", "cv", "both"]
SPLITS: tuple[str, ...] = ("validation", "cv", "both")
SITE_ATTRIBUTES: tuple[str, ...] = (
    *CLASS_VARIABLES,
    *(f"{c}_name" for c in CLASS_VARIABLES),
    *PCA_NUMERIC,
    "network",
    "group",
    "lat",
    "lon",
)
PREDICT_BATCH = 262144


class FeatureOrderError(EvaluationError):
    """A model's feature order differs from the table's: names the model directory."""

    def __init__(self, model_dir: object, problem: str) -> None:
        self.model_dir = str(model_dir)
        self.problem = problem
        super().__init__(f"{self.model_dir}: {problem}")


@runtime_checkable
class Predictor(Protocol):
    """What the evaluation needs of an ensemble (``models.runtime.Ensemble`` is one)."""

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    def predict_members(
        self, x: np.ndarray, cats: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


Loader = Callable[[Path], Predictor]
Trainer = Callable[[str, pd.DataFrame, int, Path, int, int], Path]
"""(arch, table with the fold's refitted weights, fold, out_dir, seed, epochs) -> model dir.

The trainer must train on the fold's training rows only: ``FoldRows(fold)``.
"""


def load_ensemble(model_dir: Path) -> Predictor:
    """The default loader: ``models.runtime.Ensemble.load`` (checks hashes and feature order)."""
    from models.runtime import Ensemble

    return Ensemble.load(model_dir)


def member_labels(predictor: Predictor) -> list[str]:
    """Display names of the members: their weight variable (networks) or texture class (RF)."""
    manifest = getattr(predictor, "manifest", None)
    members = getattr(manifest, "members", None)
    if members:
        labels = []
        for i, m in enumerate(members):
            if getattr(m, "weight_variable", None):
                labels.append(f"w_{m.weight_variable}")
            elif getattr(m, "texture_class", None) is not None:
                labels.append(f"texture {m.texture_class}")
            else:
                labels.append(str(getattr(m, "name", f"member {i}")))
        return _unique(labels)
    names = getattr(predictor, "member_names", None)
    if names:
        return _unique([str(n) for n in names])
    n = int(getattr(predictor, "n_members", 0) or 0)
    return [f"member {i}" for i in range(n)]


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        k = seen.get(label, 0)
        out.append(label if k == 0 else f"{label} ({k + 1})")
        seen[label] = k + 1
    return out


def check_feature_order(predictor: Predictor, model_dir: object, table: pd.DataFrame) -> None:
    """Refuse a model whose feature order is not that of a feature set the table holds
    (``paper``: ``FEATURE_NAMES``; ``extended``: those nine, then its added inputs)."""
    names = tuple(predictor.feature_names)
    sets = {feature_names(fs): fs for fs in FEATURE_SETS}
    table_order = tuple(c for c in table.columns if c in names)
    if names not in sets or table_order != names:
        missing = [c for c in names if c not in table.columns]
        if names in sets and missing:
            raise EvaluationError(
                f"the table lacks the feature column(s) {missing} of the {sets[names]} set "
                '(build it with [models] feature_set = "extended")'
            )
        raise FeatureOrderError(
            model_dir,
            f"model feature order {list(names)} differs from the table's {list(table_order)}",
        )


def pred_col(model: str) -> str:
    return f"pred__{model}"


def sd_col(model: str) -> str:
    return f"sd__{model}"


def member_col(model: str, member: str) -> str:
    return f"member__{model}__{member}"


def predict_rows(predictor: Predictor, rows: pd.DataFrame, model: str) -> pd.DataFrame:
    """Predictions of one ensemble for ``rows`` (same index): mean, mixture sd, each member.

    The ensemble figures come from ``models.ensemble.combine_members`` on the
    member outputs (member average, mixture sd), as in the runtime; the sd is
    multiplied by the predictor's ``sd_scale`` (its manifest's calibration) as
    the runtime does.
    """
    x = rows.loc[:, list(predictor.feature_names)].to_numpy(dtype=np.float32)
    cats = rows.loc[:, list(CATEGORICALS)].to_numpy(dtype=np.int64)
    labels = member_labels(predictor)
    means_parts, sds_parts = [], []
    for start in range(0, len(rows), PREDICT_BATCH):
        m, s = predictor.predict_members(
            x[start : start + PREDICT_BATCH], cats[start : start + PREDICT_BATCH]
        )
        means_parts.append(np.asarray(m))
        sds_parts.append(np.asarray(s))
    if means_parts:
        means = np.concatenate(means_parts, axis=1)
        sds = np.concatenate(sds_parts, axis=1)
    else:
        means = sds = np.zeros((len(labels), 0), np.float32)
    if len(labels) != means.shape[0]:
        labels = [f"member {i}" for i in range(means.shape[0])]
    mean, sd, _ = combine_members(means, sds)
    sd = sd * float(getattr(predictor, "sd_scale", 1.0))  # the runtime's calibrated sd
    out = {pred_col(model): mean.astype(np.float64), sd_col(model): sd.astype(np.float64)}
    for label, col in zip(labels, means, strict=True):
        out[member_col(model, label)] = col.astype(np.float64)
    return pd.DataFrame(out, index=rows.index)


# -- one split's analysis ------------------------------------------------------------


def analyse(
    results: EvaluationResults,
    rows: pd.DataFrame,
    models: Sequence[str],
    *,
    split_label: str,
    all_rows: pd.DataFrame,
    groups: Sequence[str] = (),
    min_days: int = MIN_DAYS,
    with_members: bool = True,
    make_figures: bool = True,
    table_cfg: Any = None,
    n_folds: int | None = None,
) -> pd.DataFrame:
    """Every per-split table and figure for ``rows`` carrying ``pred__<model>`` columns.

    Adds them to ``results`` under ``<split_label>_...`` names and returns
    this split's Table-5 rows (also used as the whole summary for validation).
    """
    cols = {m: pred_col(m) for m in models}
    summary = summarize(rows, cols, min_days=min_days)
    common = rows.loc[common_rows(rows, ["sm", "smap", *cols.values()])]
    if common.empty:
        raise EvaluationError(
            f"no site-day of the {split_label} split has the in-situ value, SMAP and every "
            "model's prediction finite"
        )
    p = split_label
    add_field_sections(
        results,
        rows,
        common,
        cols,
        split_label=p,
        min_days=min_days,
        table_cfg=table_cfg,
        n_folds=n_folds,
        make_figures=make_figures,
    )
    # Table 6: each member vs the ensemble.
    if with_members:
        for m in models:
            members = {
                c.split("__", 2)[2]: c for c in rows.columns if c.startswith(f"member__{m}__")
            }
            if members:
                results.add_table(
                    f"{p}_table6_{m}",
                    member_table(common, pred_col(m), members, min_days=min_days),
                    f"Table 6 ({p}): members of {m} vs the whole ensemble, with SMAP",
                )
    # Tables 2 and 3: named station groups; the networks always.
    if groups:
        results.add_table(
            f"{p}_groups",
            group_table(common, cols, groups, split_label=p, min_days=min_days),
            f"Tables 2-3 ({p}): named station groups, with SMAP",
        )
    if "network" in common.columns:
        nets = sorted(str(n) for n in pd.unique(common["network"]))
        results.add_table(
            f"{p}_networks",
            group_table(common, cols, nets, split_label=p, min_days=min_days),
            f"Per network ({p}), with SMAP",
        )
    # Per class.
    for var in CLASS_VARIABLES:
        if var not in rows.columns:
            continue
        table = class_table(
            common,
            cols,
            var,
            all_classes=sorted(int(c) for c in pd.unique(all_rows[var].dropna())),
            names=class_names(all_rows, var),
            split_label=p,
            min_days=min_days,
        )
        for note in table.loc[table["model"] == "", "note"]:
            results.notes.append(str(note))
        results.add_table(f"{p}_class_{var}", table, f"Per {var} class ({p}), with SMAP")
    # Per site, head to head, PCA and Table 4.
    sites = site_scores(
        common,
        cols,
        min_days=min_days,
        attributes=[a for a in SITE_ATTRIBUTES if a in rows.columns],
    )
    results.add_table(f"{p}_sites", sites, f"Per-site metrics ({p}), models and SMAP")
    h2h = pd.concat(
        [head_to_head(sites, m, v) for m in models for v in CLASS_VARIABLES if v in sites.columns],
        ignore_index=True,
    )
    results.add_table(
        f"{p}_head_to_head",
        h2h,
        f"Head to head ({p}): sites where the model beats SMAP's ubRMSE, normalised by class "
        "abundance (Fig. 13, 17, 18)",
    )
    t4 = pd.concat([failure_summary(sites, m) for m in models], ignore_index=True)
    results.add_table(
        f"{p}_table4", t4, f"Table 4 ({p}): classes of the sites that did not beat SMAP's ubRMSE"
    )
    # PCA of the sites' statics with the failing sites (Fig. 14).
    static = sites.drop_duplicates("site_id")
    pca = None
    fails = {m: failing_sites(sites, m) for m in models}
    if len(static) >= 2:
        pca = site_pca(static)
        pcs = pd.DataFrame(
            {"site_id": pca.site_ids, **{f"pc{i + 1}": pca.scores[:, i] for i in range(2)}}
        )
        for m, f in fails.items():
            pcs[f"fails_{m}"] = f.reindex(pcs["site_id"]).to_numpy()
        explained = ", ".join(f"{100 * e:.0f}%" for e in pca.explained)
        results.add_table(
            f"{p}_pca_sites",
            pcs,
            f"PCA of the sites' static variables ({p}; explained variance {explained}); "
            "fails_<model>: no better than SMAP's ubRMSE",
        )
    else:
        results.notes.append(f"{p}: fewer than 2 scored sites, no PCA")
    if make_figures:
        _figures(results, p, common, sites, h2h, cols, list(models), pca, fails)
    out = summary.copy()
    out.insert(1, "split", p)
    return out


def add_field_sections(
    results: EvaluationResults,
    rows: pd.DataFrame,
    common: pd.DataFrame,
    cols: Mapping[str, str],
    *,
    split_label: str,
    min_days: int,
    table_cfg: Any = None,
    n_folds: int | None = None,
    make_figures: bool = True,
) -> None:
    """What was held out (in words), the 95 % intervals and the CEOS good-practice items."""
    p = split_label
    results.add_table(
        f"{p}_held_out",
        pd.DataFrame(
            {"what was held out": [heldout_text(rows, p, table_cfg=table_cfg, n_folds=n_folds)]}
        ),
        f"What was held out ({p})",
    )
    results.add_table(
        f"{p}_intervals",
        interval_table(common, cols, min_days=min_days),
        f"95 % confidence intervals ({p}; same site-days): analytical with the effective "
        "sample size for autocorrelation (bias t, ubRMSE chi-square, R Fisher z; *_lo/*_hi) "
        "and bootstrap over sites (boot_*); m3 m-3 except R",
    )
    results.add_table(
        f"{p}_good_practice",
        good_practice_table(rows, cols, split_label=p, min_days=min_days),
        f"CEOS LPV good-practice items ({p})",
    )
    add_calibration_sections(results, common, list(cols), split_label=p, make_figures=make_figures)


def add_calibration_sections(
    results: EvaluationResults,
    common: pd.DataFrame,
    models: Sequence[str],
    *,
    split_label: str,
    make_figures: bool = True,
) -> None:
    """Coverage of +-1/+-2 sd (raw, calibrated, cross-fitted by site); reliability diagram."""
    p = split_label
    scales = {m: float(v) for m, v in dict(results.meta.get("sd_scale", {})).items()}
    sds = {m: (pred_col(m), sd_col(m)) for m in models if sd_col(m) in common.columns}
    if not sds:
        return
    cov = coverage_table(common, sds, scales)
    results.add_table(
        f"{p}_sd_coverage",
        cov,
        f"soil_moisture_sd on held-out stations ({p}): fraction of site-days within +-1 and +-2 "
        "sd (calibrated target 0.683 and 0.954); raw = members' mixture sd, no suffix = times "
        "the manifest's sd_scale (fitted on the validation split, so 0.683 there by "
        "construction), crossfit = each half of these sites calibrated on the other half",
    )
    held = results.meta.setdefault("heldout_within_1sd", {})
    for row in cov.itertuples(index=False):
        held[f"{p}/{row.model}"] = {
            "raw": row.within_1sd_raw,
            "calibrated": row.within_1sd,
            "calibrated_crossfit": row.within_1sd_crossfit,
        }
    rel = reliability_table(common, sds, scales)
    results.add_table(
        f"{p}_sd_reliability", rel, f"Reliability of soil_moisture_sd on stations ({p})"
    )
    if make_figures:
        results.add_figure(
            f"{p}_fig_sd_reliability",
            reliability_figure(rel, f"Reliability of soil_moisture_sd, stations ({p})"),
            f"Reliability diagram of soil_moisture_sd on held-out stations ({p}): observed "
            "fraction inside each nominal central interval, raw (dashed) and calibrated",
        )


def _figures(
    results: EvaluationResults,
    p: str,
    common: pd.DataFrame,
    sites: pd.DataFrame,
    h2h: pd.DataFrame,
    cols: Mapping[str, str],
    models: list[str],
    pca: Any,
    fails: Mapping[str, pd.Series],
) -> None:
    results.add_figure(
        f"{p}_fig_r_density",
        figures.r_density(sites, f"Per-site R ({p})"),
        f"Density of per-site R with quartiles ({p}; Fig. 9, 15)",
    )
    results.add_figure(
        f"{p}_fig_scatter",
        figures.scatter_density(common, cols, f"Predicted vs measured ({p})"),
        f"Predicted vs measured soil moisture ({p}; Fig. 6)",
    )
    stations = figures.pick_stations(common)
    results.add_figure(
        f"{p}_fig_series",
        figures.time_series(common, models[0], pred_col(models[0]), sd_col(models[0]), stations),
        f"Station time series: in-situ, SMAP and {models[0]} with +-1 sd ({p}; Fig. 9)",
    )
    if not h2h.empty:
        results.add_figure(
            f"{p}_fig_head_to_head",
            figures.head_to_head_bars(h2h),
            f"Head to head against SMAP, normalised by class abundance ({p}; Fig. 13, 17, 18)",
        )
    if pca is not None:
        results.add_figure(
            f"{p}_fig_pca",
            figures.pca_scatter(pca, fails),
            f"PCA of the sites' static variables; crosses: no better than SMAP's ubRMSE ({p}; "
            "Fig. 14)",
        )


def add_baselines(
    results: EvaluationResults,
    rows: pd.DataFrame,
    models: Sequence[str],
    baselines: Mapping[str, str | Path],
    *,
    truth_world: str | Path | None,
) -> None:
    """Baseline maps (e.g. DisPATCh) beside the ensembles and SMAP on the same site-days.

    ``rows`` are the validation rows with the ensembles' predictions; each
    baseline store is sampled at their pixels (only its mapped days count),
    and scored against the truth map when there is one.
    """
    from pipeline.evaluate.dispatch import sample_stations

    results.meta["baselines"] = {k: str(v) for k, v in baselines.items()}
    if truth_world is not None:
        from pipeline.evaluate.truth import score_world

        recs = []
        for name, store in baselines.items():
            scores = score_world(truth_world, store)
            recs.append({"field": name, **scores["model"].as_dict()})
        results.add_table(
            "baselines_maps",
            pd.DataFrame(recs),
            "Baselines' whole maps against the 90 m truth (same scores as 'maps'; SMAP and "
            "the ideal 9 km field there)",
        )
    frame = rows.copy()
    cols = {m: pred_col(m) for m in models}
    for name, store in baselines.items():
        if name in cols or name == SMAP:
            raise EvaluationError(f"baseline name {name!r} is already a model name")
        frame[pred_col(name)] = sample_stations(store, frame)
        cols[name] = pred_col(name)
    common = frame.loc[common_rows(frame, ["sm", "smap", *cols.values()])]
    if common.empty:
        results.notes.append("baselines: no validation site-day on the baselines' mapped days")
        return
    results.add_table(
        "baselines",
        summarize(common, cols, min_days=1),
        f"Baselines beside the ensembles and SMAP on the same {len(common)} validation "
        f"site-days (the baselines' mapped days; per-site metrics with >= 1 day)",
    )
    results.add_table(
        "baselines_intervals",
        interval_table(common, cols, min_days=1),
        "95 % intervals of the baseline comparison (same site-days)",
    )


def add_map_calibration(
    results: EvaluationResults,
    world: str | Path,
    cube: str | Path,
    storage_options: Mapping[str, Any] | None,
    make_figures: bool = True,
) -> None:
    """Coverage of the published soil_moisture_sd against the synthetic 90 m truth map."""
    table = map_coverage(world, cube, storage_options=storage_options)
    if table.empty:
        results.notes.append(f"{cube}: no soil_moisture_sd in the cube, its sd is not checked")
        return
    results.add_table(
        "maps_sd_coverage",
        table,
        "soil_moisture_sd of the cube against the 90 m truth: fraction of pixel-days inside each "
        "nominal central interval (0.683 = +-1 sd, 0.954 = +-2 sd)",
    )
    one = table.loc[np.isclose(table["nominal"], 0.6827), "observed"]
    if len(one):
        results.meta["map_within_1sd"] = float(one.iloc[0])
    if make_figures:
        rel = table.assign(model="cube", sd="published")[["model", "sd", "nominal", "observed"]]
        results.add_figure(
            "maps_fig_sd_reliability",
            reliability_figure(rel, "Reliability of soil_moisture_sd against the truth map"),
            "Reliability diagram of the cube's soil_moisture_sd against the 90 m truth map",
        )


# -- CV --------------------------------------------------------------------------------


class FoldRows:
    """Row selector of CV fold ``k``'s training rows (``pipeline.table.cv_masks``); picklable."""

    def __init__(self, fold: int) -> None:
        self.fold = int(fold)
        self.__name__ = f"cv_fold_{self.fold}_train"

    def __call__(self, table: pd.DataFrame) -> np.ndarray:
        from pipeline.table import cv_masks

        return cv_masks(table, self.fold)[0]


class ModelsTrainer:
    """The default CV trainer: ``models.train.train_ensemble`` on ``FoldRows(fold)``; picklable.

    ``options`` go to ``train_ensemble`` (batch_size, patience, n_estimators,
    weight_variables, ...). Uses one thread inside a Dask worker (the cluster
    parallelises over folds), two otherwise.
    """

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)

    def __call__(
        self, arch: str, table: pd.DataFrame, fold: int, out_dir: Path, seed: int, epochs: int
    ) -> Path:
        from models.train import train_ensemble

        try:
            from distributed import get_worker

            get_worker()
            threads = 1
        except (ImportError, ValueError):
            threads = 2
        options: dict[str, Any] = {"threads": threads, **self.options}
        arch, _, fset = arch.partition("+")
        if fset:
            options["feature_set"] = fset
        train_ensemble(
            arch,
            table,
            out_dir,
            seed=seed,
            epochs=epochs,
            rows=FoldRows(fold),
            log=lambda msg: log.info("%s", msg),
            **options,
        )
        return out_dir


default_trainer: Trainer = ModelsTrainer()


def _refit_weights(table: pd.DataFrame, train_mask: np.ndarray, table_cfg: Any) -> pd.DataFrame:
    from pipeline.table import weight_columns

    fold_table = table.copy()
    weights = weight_columns(fold_table, table_cfg, fit=train_mask)
    for col in weights.columns:
        fold_table[col] = weights[col]
    return fold_table


def cv_fold(
    table: pd.DataFrame,
    arch: str,
    name: str,
    fold: int,
    out_dir: Path,
    *,
    seed: int,
    epochs: int,
    table_cfg: Any = None,
    trainer: Trainer | None = None,
    loader: Loader | None = None,
) -> pd.DataFrame:
    """Train ``arch`` on fold ``fold``'s training rows and predict its validation rows.

    Returns the predictions indexed by the table's row labels, with a
    ``fold`` column. Runs in a Dask worker when submitted (pure inputs).
    """
    from pipeline.config import TableConfig
    from pipeline.table import cv_masks

    train_mask, val_mask = cv_masks(table, fold)
    if not train_mask.any() or not val_mask.any():
        raise EvaluationError(f"CV fold {fold} has no training or no validation rows")
    fold_table = _refit_weights(table, train_mask, table_cfg or TableConfig())
    model_dir = Path(out_dir) / f"fold{fold:02d}"
    model_dir.mkdir(parents=True, exist_ok=True)
    (trainer or default_trainer)(arch, fold_table, fold, model_dir, seed, epochs)
    predictor = (loader or load_ensemble)(model_dir)
    check_feature_order(predictor, model_dir, table)
    val = table.loc[val_mask]
    pred = predict_rows(predictor, val, name)
    pred.insert(0, "fold", fold)
    return pred


def _arch_of(name: str, model_dir: Path | None) -> str:
    """The CV training spec of a model: ``arch`` (paper set) or ``arch+<feature set>``."""
    if model_dir is not None and (Path(model_dir) / "manifest.json").exists():
        from models.manifest import Manifest

        man = Manifest.read(Path(model_dir))
        return str(man.arch) + (
            "" if man.feature_set == DEFAULT_FEATURE_SET else f"+{man.feature_set}"
        )
    arch, sep, fset = name.partition("+")
    if arch in ("dense", "prob", "wdl", "rf") and (not sep or fset in FEATURE_SETS):
        return name
    raise EvaluationError(
        f"model {name!r}: no manifest to tell its architecture for CV (a bare arch, or "
        f"arch+<feature set> with a set of {', '.join(FEATURE_SETS)})"
    )


def run_cv(
    table: pd.DataFrame,
    archs: Mapping[str, str],
    out_dir: Path,
    *,
    client: Any = None,
    seed: int = 0,
    epochs: int = 200,
    n_folds: int | None = None,
    table_cfg: Any = None,
    trainer: Trainer | None = None,
    loader: Loader | None = None,
) -> dict[str, list[pd.DataFrame]]:
    """Run every fold of every architecture; ``{name: [fold predictions]}``.

    ``archs`` maps a display name to an architecture. With a Dask ``client``
    the (name, fold) tasks are submitted together and gathered; sequential
    otherwise.
    """
    if "fold" not in table.columns:
        raise EvaluationError("the table has no 'fold' column: build it with 'smdown table'")
    folds = sorted(int(f) for f in pd.unique(table["fold"].dropna()))
    if n_folds is not None:
        folds = folds[:n_folds]
    kwargs = {"seed": seed, "epochs": epochs, "table_cfg": table_cfg, "trainer": trainer}
    kwargs["loader"] = loader
    out: dict[str, list[pd.DataFrame]] = {name: [] for name in archs}
    if client is None:
        for name, arch in archs.items():
            for k in folds:
                log.info("CV %s fold %d of %d", name, k + 1, len(folds))
                out[name].append(cv_fold(table, arch, name, k, out_dir / name, **kwargs))
        return out
    shared = client.scatter(table, broadcast=True)
    run_id = uuid.uuid4().hex[:8]  # a second evaluation on the same client must not reuse keys
    futures = {
        (name, k): client.submit(
            cv_fold,
            shared,
            arch,
            name,
            k,
            out_dir / name,
            key=f"smdown-cv-{name}-fold{k:02d}-{run_id}",
            pure=False,
            **kwargs,
        )
        for name, arch in archs.items()
        for k in folds
    }
    log.info("CV: %d fold tasks submitted to the cluster", len(futures))
    gathered = client.gather(list(futures.values()))
    for (name, _), pred in zip(futures, gathered, strict=True):
        out[name].append(pred)
    return out


def cv_frames(
    table: pd.DataFrame, preds: Mapping[str, list[pd.DataFrame]]
) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """(per-fold row frames with every model's predictions, out-of-fold frame).

    The out-of-fold frame has one row per table row that was validated in
    any fold, with each model's prediction averaged over the folds that
    scored it (only ``cv_holdout`` rows are scored by more than one fold).
    """
    names = list(preds)
    folds = sorted({int(p["fold"].iloc[0]) for ps in preds.values() for p in ps if len(p)})
    per_fold = []
    for k in folds:
        parts = [
            p[p["fold"] == k].drop(columns="fold")
            for name in names
            for p in preds[name]
            if len(p) and int(p["fold"].iloc[0]) == k
        ]
        joined = table.join(pd.concat(parts, axis=1), how="inner")
        joined["fold"] = k
        per_fold.append(joined)
    stacked = pd.concat(
        [
            f.loc[:, [c for c in f.columns if c.startswith(("pred__", "sd__", "member__"))]]
            for f in per_fold
        ]
    )
    oof = stacked.groupby(level=0).mean()
    return per_fold, table.join(oof, how="inner")


# -- entry point ----------------------------------------------------------------------


def run_evaluation(
    table: pd.DataFrame | str | Path,
    model_dirs: Mapping[str, str | Path],
    *,
    split: Split = "validation",
    out_dir: str | Path,
    client: Any = None,
    min_days: int = MIN_DAYS,
    groups: Sequence[str] = (),
    seed: int = 0,
    epochs: int = 200,
    n_folds: int | None = None,
    table_cfg: Any = None,
    truth_world: str | Path | None = None,
    cube: str | Path | None = None,
    smap_quality: str = "recommended",
    storage_options: Mapping[str, Any] | None = None,
    loader: Loader | None = None,
    trainer: Trainer | None = None,
    train_options: Mapping[str, Any] | None = None,
    write: bool = True,
    make_figures: bool = True,
    baselines: Mapping[str, str | Path] | None = None,
    insitu: pd.DataFrame | str | Path | None = None,
) -> EvaluationResults:
    """Score the ensembles in ``model_dirs`` ({display name: directory}) beside SMAP.

    ``split``: "validation" (the trained ensembles predict the validation
    rows), "cv" (train and score each fold; the directory's manifest gives
    the architecture, or the name itself: dense/prob/wdl/rf) or "both".
    Writes ``report.html``, ``metrics.json`` and ``predictions.parquet`` into
    ``out_dir`` unless ``write`` is False; ``make_figures=False`` skips the
    figures (tables only, much faster). ``baselines`` ({name: Zarr store of
    ``soil_moisture`` on the target grid, e.g. from ``dispatch.dispatch_days``})
    are compared on the validation site-days they cover. With ``cube`` and ``insitu``
    (the in-situ daily table or its Parquet file) the cube's published days are scored at
    the validation stations by SMAP age and LST source, with a coverage table
    (``pipeline.evaluate.fallback``). ``train_options`` go to
    ``models.train.train_ensemble`` for the CV folds. Bad input raises an
    ``EvaluationError`` (or ``ManifestError`` from the runtime) naming it.
    """
    if split not in SPLITS:
        raise EvaluationError(f"split {split!r} is not one of {list(SPLITS)}")
    if not model_dirs:
        raise EvaluationError("no model to evaluate")
    if SMAP in model_dirs:
        raise EvaluationError(f"model name {SMAP!r} is reserved for the baseline")
    out = Path(out_dir)
    source = "<DataFrame>"
    if not isinstance(table, pd.DataFrame):
        from pipeline.table import read_table

        source = str(table)
        table = read_table(table)
    for col in ("site_id", "date", "sm", "smap"):
        if col not in table.columns:
            raise EvaluationError(f"the table lacks the column {col!r}")
    table = table.reset_index(drop=True)  # row labels identify rows across CV folds
    results = EvaluationResults(
        title=f"smdown evaluation ({split})",
        meta={
            "split": split,
            "table": source,
            "table_rows": len(table),
            "table_sites": int(table["site_id"].nunique()),
            "min_days": min_days,
            "models": {k: str(v) for k, v in model_dirs.items()},
            "created_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "definitions": (
                "bias = mean(p - o); RMSE = sqrt(mean((p - o)^2)); ubRMSE = sqrt(RMSE^2 - "
                "bias^2); R = Pearson; m3 m-3. Per-site metrics need min_days valid days; a "
                "constant series has no R (counted in n_sites_nan_r). All rows of one table "
                "use the same site-days (in-situ, SMAP and every model finite)."
            ),
        },
    )
    models = list(model_dirs)
    t5_parts: list[pd.DataFrame] = []
    saved: list[pd.DataFrame] = []
    if split in ("validation", "both"):
        if "split" not in table.columns:
            raise EvaluationError("the table has no 'split' column: build it with 'smdown table'")
        rows = table[table["split"] == "validation"]
        if rows.empty:
            raise EvaluationError(f"the table {source} has no validation rows")
        preds = []
        manifests: dict[str, Any] = {}
        for name, d in model_dirs.items():
            predictor = (loader or load_ensemble)(Path(d))
            check_feature_order(predictor, d, table)
            manifests[name] = getattr(predictor, "manifest_hash", None)
            results.meta.setdefault("sd_scale", {})[name] = float(
                getattr(predictor, "sd_scale", 1.0)
            )
            preds.append(predict_rows(predictor, rows, name))
        results.meta["manifest_hashes"] = manifests
        rows = rows.join(pd.concat(preds, axis=1))
        t5_parts.append(
            analyse(
                results,
                rows,
                models,
                split_label="validation",
                all_rows=table,
                groups=groups,
                min_days=min_days,
                make_figures=make_figures,
                table_cfg=table_cfg,
            )
        )
        saved.append(rows.assign(eval_split="validation"))
        if baselines:
            add_baselines(results, rows, models, baselines, truth_world=truth_world)
    if split in ("cv", "both"):
        archs = {name: _arch_of(name, Path(d) if d else None) for name, d in model_dirs.items()}
        preds_cv = run_cv(
            table,
            archs,
            out / "cv-models",
            client=client,
            seed=seed,
            epochs=epochs,
            n_folds=n_folds,
            table_cfg=table_cfg,
            trainer=trainer or ModelsTrainer(**dict(train_options or {})),
            loader=loader,
        )
        per_fold, oof = cv_frames(table, preds_cv)
        cols = {m: pred_col(m) for m in models}
        fold_tables = []
        for f in per_fold:
            s = summarize(f, cols, min_days=min_days)
            s.insert(0, "fold", int(f["fold"].iloc[0]))
            fold_tables.append(s)
        folds_df = pd.concat(fold_tables, ignore_index=True)
        results.add_table("cv_folds", folds_df, "CV: every fold's metrics, with SMAP")
        cv_mean = fold_mean(folds_df)
        # The out-of-fold analyses (classes, sites, figures); Table 5 takes the fold mean.
        analyse(
            results,
            oof,
            models,
            split_label="cv",
            all_rows=table,
            groups=groups,
            min_days=min_days,
            with_members=True,
            make_figures=make_figures,
            table_cfg=table_cfg,
            n_folds=len(per_fold),
        )
        cv_row = cv_mean.drop(columns=[c for c in cv_mean.columns if c.endswith("_fold_sd")])
        cv_row.insert(1, "split", "cv")
        t5_parts.append(cv_row)
        results.meta["cv_folds"] = len(per_fold)
        results.meta["cv_seed"] = seed
        results.meta["cv_epochs"] = epochs
        saved.append(oof.assign(eval_split="cv"))
    t5 = pd.concat(t5_parts, ignore_index=True)
    results.tables = {TABLE5: t5, **results.tables}
    results.captions[TABLE5] = (
        "Table 5: each model per split, with SMAP on the same site-days (pooled metrics; "
        "site_* over sites; CV: mean over folds)"
    )
    if cube is not None and insitu is not None:
        from pipeline.evaluate.fallback import add_fallback_sections

        daily = insitu if isinstance(insitu, pd.DataFrame) else pd.read_parquet(insitu)
        add_fallback_sections(results, cube, table, daily, storage_options=storage_options)
    if truth_world is not None or (cube is not None and insitu is None):
        if truth_world is None or cube is None:
            raise EvaluationError("map scoring needs both --truth-world and --cube")
        from pipeline.evaluate.truth import score_world

        maps = score_world(
            truth_world, cube, smap_quality=smap_quality, storage_options=storage_options
        )
        results.add_table(
            "maps",
            pd.DataFrame([{"field": k, **v.as_dict()} for k, v in maps.items()]),
            "Whole maps against the synthetic 90 m truth (RMSE, bias m3 m-3; R; fraction of "
            "the truth's within-SMAP-cell variance recovered)",
        )
        add_map_calibration(results, truth_world, cube, storage_options, make_figures)
        results.meta["truth_world"] = str(truth_world)
        results.meta["cube"] = str(cube)
    if write:
        write_report(results, out)
        keep = ["site_id", "date", "sm", "smap", "eval_split", "fold"]
        frame = pd.concat(saved, ignore_index=True)
        pcols = [c for c in frame.columns if c.startswith(("pred__", "sd__", "member__"))]
        frame = frame.loc[:, [c for c in keep if c in frame.columns] + pcols]
        frame.to_parquet(out / "predictions.parquet", index=False)
    return results
