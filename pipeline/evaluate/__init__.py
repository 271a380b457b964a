"""Evaluation: station metrics beside SMAP, map scoring against a synthetic truth, report."""

from __future__ import annotations

from pipeline.evaluate.metrics import Scores, per_site, score, summarize

__all__ = ["Scores", "per_site", "score", "summarize"]
