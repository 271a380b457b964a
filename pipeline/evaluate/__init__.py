"""Evaluation: station metrics beside SMAP, map scoring against a synthetic truth, report.

Public API:

- ``metrics``: ``score``, ``per_site``, ``summarize``, ``site_scores`` (paper eqs. 3-6);
- ``run_evaluation(table, model_dirs, *, split, out_dir, client=None, ...)``: the
  validation split or 10-fold CV, every table and figure, ``report.html`` and
  ``metrics.json``; ``headline_table(results)``: Table 5 as plain text;
- ``report.write_report(results, out_dir)``; ``truth.score_maps`` / ``truth.score_world``.
"""

from __future__ import annotations

from pipeline.evaluate.analysis import EmptyGroupError, EvaluationError
from pipeline.evaluate.evaluation import (
    FeatureOrderError,
    Predictor,
    check_feature_order,
    predict_rows,
    run_evaluation,
)
from pipeline.evaluate.metrics import MIN_DAYS, SMAP, Scores, per_site, score, summarize
from pipeline.evaluate.report import EvaluationResults, headline_table, read_metrics, write_report

__all__ = [
    "MIN_DAYS",
    "SMAP",
    "EmptyGroupError",
    "EvaluationError",
    "EvaluationResults",
    "FeatureOrderError",
    "Predictor",
    "Scores",
    "check_feature_order",
    "headline_table",
    "per_site",
    "predict_rows",
    "read_metrics",
    "run_evaluation",
    "score",
    "summarize",
    "write_report",
]
