"""SoilGrids 2.0 (ISRIC) 0-5 cm mean: sand and clay (g/kg -> %), pH in water (pH*10 -> pH).

Files ``<dir>/<prop>/<prop>_0-5cm_mean.tif`` (or ``.vrt``, as ISRIC serves
them) for prop in ``sand``, ``clay``, ``phh2o``: int16, nodata -32768,
Interrupted Goode Homolosine (ESRI:54052), 250 m. Values outside [0, 100] %
(sand, clay) or [0, 14] (pH) follow the range rule of ``pipeline.sources.base``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.sources.base import DEFAULT_MARGIN_PIXELS, DEFAULT_RANGE_TOLERANCE
from pipeline.sources.raster import BandInfo, is_homolosine
from pipeline.sources.static import StaticFileSource

PRODUCT = "SoilGrids-2.0"
PROPERTIES: dict[str, str] = {"sand": "sand", "clay": "clay", "ph": "phh2o"}
"""Feature name -> SoilGrids property name."""
DIVISOR = 10.0  # g/kg -> %, pH*10 -> pH
CRS_DESC = "Interrupted Goode Homolosine (ESRI:54052)"


def layer_paths(root: str | os.PathLike[str], variable: str) -> list[Path]:
    """Candidate files for ``variable`` (``.tif`` first, then ``.vrt``) under a SoilGrids dir."""
    prop = PROPERTIES[variable]
    base = Path(root) / prop / f"{prop}_0-5cm_mean"
    return [base.with_suffix(".tif"), base.with_suffix(".vrt")]


def _convert(raw: np.ndarray, info: BandInfo) -> np.ndarray:
    if info.is_float and info.scale == 1.0:
        return raw  # a float layer is taken as already in % / pH
    scale = info.scale if info.scale != 1.0 else 1.0 / DIVISOR
    return raw * scale + info.offset


class SoilGridsSource(StaticFileSource):
    """One SoilGrids property (``sand``, ``clay`` or ``ph``) as a static ``Source``."""

    def __init__(
        self,
        variable: str,
        root_or_file: str | os.PathLike[str],
        *,
        margin: int = DEFAULT_MARGIN_PIXELS,
        range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
    ) -> None:
        if variable not in PROPERTIES:
            raise ValueError(f"SoilGrids variable must be one of {sorted(PROPERTIES)}")
        p = Path(root_or_file)
        candidates = [p] if p.suffix in (".tif", ".vrt") else layer_paths(p, variable)
        super().__init__(
            variable,
            PRODUCT,
            candidates,
            crs_ok=is_homolosine,
            crs_desc=CRS_DESC,
            convert=_convert,
            margin=margin,
            range_tolerance=range_tolerance,
        )
