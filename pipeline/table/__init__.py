"""The training table: in-situ days paired with the nine inputs, splits, weights, screening.

Public API (see docs/table-schema.md for the Parquet schema):
``assign_splits``, ``cv_masks``, ``balanced_weights``, ``bin_values``,
``weight_columns``, ``write_table``, ``read_table``; ``build_table`` pairs
the in-situ table with the sources; ``screen_features`` (pipeline.table.screening)
is the training-side feature report.
"""

from typing import Any

from pipeline.table.schema import COLUMNS, DTYPES, conform, read_table, table_metadata, write_table
from pipeline.table.screening import ScreeningReport, screen_features, write_report
from pipeline.table.splits import SPLIT_TRAIN, SPLIT_VALIDATION, assign_splits, cv_masks
from pipeline.table.weights import (
    WEIGHT_COLUMNS,
    balanced_weights,
    bin_values,
    weight_classes,
    weight_columns,
)

# The builder imports every reader (rasterio, h5py): loaded on first use only.
_BUILD_NAMES = ("TableReport", "TableResult", "build_table", "target_grid_for")


def __getattr__(name: str) -> Any:
    if name in _BUILD_NAMES:
        from pipeline.table import build

        return getattr(build, name)
    raise AttributeError(f"module 'pipeline.table' has no attribute {name!r}")


__all__ = [
    "COLUMNS",
    "DTYPES",
    "SPLIT_TRAIN",
    "SPLIT_VALIDATION",
    "WEIGHT_COLUMNS",
    "ScreeningReport",
    "assign_splits",
    "balanced_weights",
    "bin_values",
    "build_table",
    "conform",
    "cv_masks",
    "read_table",
    "screen_features",
    "table_metadata",
    "target_grid_for",
    "weight_classes",
    "weight_columns",
    "write_report",
    "write_table",
]
