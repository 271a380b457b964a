"""Stack every model input on one target window: the ``FeatureBlock`` both the map tiles
and the training table are built from (so a station's pixel gets one feature vector).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from grids import Grid
from models.features import CATEGORICALS, FEATURE_NAMES
from pipeline.sources.base import NativeRaster, Provenance
from pipeline.sources.sample import sample

MISSING_CODE = -1


@dataclass(frozen=True)
class FeatureBlock:
    """Inputs on one target window.

    ``x`` float32 (n, H, W) in the order and units of ``names`` (default
    ``models.features.FEATURE_NAMES``, the paper's nine; ``feature_names("extended")``
    for the extended set); ``cats`` int16 (3, H, W) in ``CATEGORICALS`` order, -1 = missing;
    ``provenance`` per input name (None for inputs given as arrays);
    ``missing`` bool (H, W): any of the 9 features is NaN (``missing_any``
    also counts missing categoricals, for models that take them as inputs).
    """

    x: np.ndarray = field(repr=False)
    cats: np.ndarray = field(repr=False)
    provenance: dict[str, Provenance | None]
    missing: np.ndarray = field(repr=False)
    grid: Grid | None = None
    names: tuple[str, ...] = FEATURE_NAMES

    @property
    def missing_any(self) -> np.ndarray:
        """(H, W) True where a feature is NaN or a categorical code is missing."""
        return self.missing | (self.cats < 0).any(axis=0)


def _on_target(name: str, value: NativeRaster | np.ndarray, target: Grid) -> np.ndarray:
    if isinstance(value, NativeRaster):
        return sample(value, target)
    arr = np.asarray(value)
    if arr.shape != target.shape:
        raise ValueError(
            f"input {name!r}: array of shape {arr.shape} is not on the target grid {target.shape}"
        )
    return arr.astype(np.float32, copy=False)


def build_feature_block(
    inputs: Mapping[str, NativeRaster | np.ndarray],
    target: Grid,
    names: tuple[str, ...] = FEATURE_NAMES,
) -> FeatureBlock:
    """Put every input on ``target`` via ``sample`` (arrays are taken as already on it).

    Every feature of ``names`` is required; absent categoricals become -1 everywhere.
    """
    absent = [n for n in names if n not in inputs]
    if absent:
        raise ValueError(f"feature block needs {absent} (inputs given: {sorted(inputs)})")
    h, w = target.shape
    x = np.empty((len(names), h, w), dtype=np.float32)
    prov: dict[str, Provenance | None] = {}
    for i, name in enumerate(names):
        value = inputs[name]
        x[i] = _on_target(name, value, target)
        prov[name] = value.provenance if isinstance(value, NativeRaster) else None
    cats = np.full((len(CATEGORICALS), h, w), MISSING_CODE, dtype=np.int16)
    for i, name in enumerate(CATEGORICALS):
        if name not in inputs:
            prov[name] = None
            continue
        value = inputs[name]
        vals = _on_target(name, value, target)
        ok = np.isfinite(vals)
        cats[i][ok] = np.rint(vals[ok]).astype(np.int16)
        prov[name] = value.provenance if isinstance(value, NativeRaster) else None
    missing = np.asarray(~np.isfinite(x).all(axis=0), dtype=bool)
    return FeatureBlock(
        x=x, cats=cats, provenance=prov, missing=missing, grid=target, names=tuple(names)
    )
