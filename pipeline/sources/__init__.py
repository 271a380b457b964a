"""Readers for every covariate product in its native format, the daily catalogue, fetchers.

Every reader fits ``Source`` (``pipeline.sources.base``): "values of variable
V on this window for date D" on the product's own grid, in the units of
``models.features``. ``sample`` puts them on a target window and
``build_feature_block`` stacks the model inputs.
"""

from pipeline.sources.base import (
    CorruptFileError,
    DateMismatchError,
    MissingInputError,
    NativeRaster,
    OutOfRangeError,
    Provenance,
    SchemaError,
    Source,
    WrongCRSError,
)
from pipeline.sources.block import FeatureBlock, build_feature_block
from pipeline.sources.catalog import Catalog, CheckRow
from pipeline.sources.sample import sample

__all__ = [
    "Catalog",
    "CheckRow",
    "CorruptFileError",
    "DateMismatchError",
    "FeatureBlock",
    "MissingInputError",
    "NativeRaster",
    "OutOfRangeError",
    "Provenance",
    "SchemaError",
    "Source",
    "WrongCRSError",
    "build_feature_block",
    "sample",
]
