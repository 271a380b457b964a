"""Koeppen-Geiger classes of Beck et al. (2018), present day, 1 km (1/120 degree).

``Beck_KG_V1_present_0p0083.tif``: uint8 codes 1-30 (``KOPPEN_NAMES``), 0 =
ocean / no data (NaN), EPSG:4326. Codes outside 1-30 become NaN and are
counted in the provenance note (a categorical layer has no "range").
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from models.features import KOPPEN_CLASSES
from pipeline.sources.base import DEFAULT_MARGIN_PIXELS
from pipeline.sources.raster import BandInfo, is_geographic_wgs84
from pipeline.sources.static import StaticFileSource

PRODUCT = "Beck-KG-V1"
FILENAME = "Beck_KG_V1_present_0p0083.tif"

# Legend of Beck et al. (2018), Sci. Data 5:180214, Table 2 (code -> description).
KOPPEN_NAMES: dict[int, str] = {
    1: "Tropical, rainforest",
    2: "Tropical, monsoon",
    3: "Tropical, savannah",
    4: "Arid, desert, hot",
    5: "Arid, desert, cold",
    6: "Arid, steppe, hot",
    7: "Arid, steppe, cold",
    8: "Temperate, dry summer, hot summer",
    9: "Temperate, dry summer, warm summer",
    10: "Temperate, dry summer, cold summer",
    11: "Temperate, dry winter, hot summer",
    12: "Temperate, dry winter, warm summer",
    13: "Temperate, dry winter, cold summer",
    14: "Temperate, no dry season, hot summer",
    15: "Temperate, no dry season, warm summer",
    16: "Temperate, no dry season, cold summer",
    17: "Cold, dry summer, hot summer",
    18: "Cold, dry summer, warm summer",
    19: "Cold, dry summer, cold summer",
    20: "Cold, dry summer, very cold winter",
    21: "Cold, dry winter, hot summer",
    22: "Cold, dry winter, warm summer",
    23: "Cold, dry winter, cold summer",
    24: "Cold, dry winter, very cold winter",
    25: "Cold, no dry season, hot summer",
    26: "Cold, no dry season, warm summer",
    27: "Cold, no dry season, cold summer",
    28: "Cold, no dry season, very cold winter",
    29: "Polar, tundra",
    30: "Polar, frost",
}


def class_label(code: int) -> str:
    """``"Cfa (Temperate, no dry season, hot summer)"`` for a code."""
    return f"{KOPPEN_CLASSES[code]} ({KOPPEN_NAMES[code]})"


def _convert(raw: np.ndarray, info: BandInfo) -> np.ndarray:
    out = raw.copy()
    out[out == 0] = np.nan  # ocean / no data
    return out


class KoppenSource(StaticFileSource):
    """The Beck et al. (2018) Koeppen-Geiger map as a static categorical ``Source``."""

    def __init__(
        self, root_or_file: str | os.PathLike[str], *, margin: int = DEFAULT_MARGIN_PIXELS
    ) -> None:
        p = Path(root_or_file)
        candidates = [p] if p.suffix == ".tif" else [p / FILENAME]
        super().__init__(
            "koppen",
            PRODUCT,
            candidates,
            crs_ok=is_geographic_wgs84,
            crs_desc="geographic WGS84 (EPSG:4326)",
            convert=_convert,
            codes=range(1, 31),
            margin=margin,
        )
