"""USDA soil texture class (12 classes) from sand and clay, and a ``Source`` deriving it.

Silt = 100 - sand - clay (%). The class boundaries are those of the USDA
texture triangle (Soil Survey Manual, USDA Handbook 18), evaluated for
whole arrays; codes are those of ``models.features.TEXTURE_CLASSES``. Any
NaN input, negative fraction or sand + clay > 100 % gives NaN.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from pipeline.sources.base import Bounds, NativeRaster, Provenance, SchemaError, Source

# Codes of models.features.TEXTURE_CLASSES.
CLAY, SILTY_CLAY, SANDY_CLAY, CLAY_LOAM, SILTY_CLAY_LOAM, SANDY_CLAY_LOAM = 1, 2, 3, 4, 5, 6
LOAM, SILT_LOAM, SANDY_LOAM, SILT, LOAMY_SAND, SAND = 7, 8, 9, 10, 11, 12


def usda_texture_class(sand_pct: np.ndarray, clay_pct: np.ndarray) -> np.ndarray:
    """USDA texture class codes (float32, NaN where undefined) for sand and clay in %."""
    sand = np.asarray(sand_pct, dtype=np.float64)
    clay = np.asarray(clay_pct, dtype=np.float64)
    silt = 100.0 - sand - clay
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(sand) & np.isfinite(clay) & (sand >= 0) & (clay >= 0) & (silt >= -1e-9)
        conditions = [
            silt + 1.5 * clay < 15,
            (silt + 1.5 * clay >= 15) & (silt + 2 * clay < 30),
            ((clay >= 7) & (clay < 20) & (sand > 52) & (silt + 2 * clay >= 30))
            | ((clay < 7) & (silt < 50) & (silt + 2 * clay >= 30)),
            (clay >= 7) & (clay < 27) & (silt >= 28) & (silt < 50) & (sand <= 52),
            ((silt >= 50) & (clay >= 12) & (clay < 27))
            | ((silt >= 50) & (silt < 80) & (clay < 12)),
            (silt >= 80) & (clay < 12),
            (clay >= 20) & (clay < 35) & (silt < 28) & (sand > 45),
            (clay >= 27) & (clay < 40) & (sand > 20) & (sand <= 45),
            (clay >= 27) & (clay < 40) & (sand <= 20),
            (clay >= 35) & (sand > 45),
            (clay >= 40) & (silt >= 40),
            (clay >= 40) & (sand <= 45) & (silt < 40),
        ]
    choices = [
        SAND,
        LOAMY_SAND,
        SANDY_LOAM,
        LOAM,
        SILT_LOAM,
        SILT,
        SANDY_CLAY_LOAM,
        CLAY_LOAM,
        SILTY_CLAY_LOAM,
        SANDY_CLAY,
        SILTY_CLAY,
        CLAY,
    ]
    codes = np.select(conditions, choices, default=0).astype(np.float32)
    codes[~valid | (codes == 0)] = np.nan
    return codes


class TextureSource:
    """USDA texture class derived from a sand and a clay ``Source`` on the same grid."""

    variable = "texture"

    def __init__(self, sand: Source, clay: Source) -> None:
        self.sand = sand
        self.clay = clay

    def available(self, date: dt.date | None = None) -> Provenance | None:
        s, c = self.sand.available(date), self.clay.available(date)
        if s is None or c is None:
            return None
        return Provenance("texture", s.files + c.files, "USDA triangle of " + s.product)

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        s = self.sand.native(date, bounds)
        c = self.clay.native(date, bounds)
        if s.grid != c.grid:
            raise SchemaError(
                c.provenance.files[0] if c.provenance.files else "clay",
                f"clay grid {c.grid!r} differs from sand grid {s.grid!r}",
            )
        prov = Provenance(
            "texture",
            s.provenance.files + c.provenance.files,
            "USDA triangle of " + s.provenance.product,
            note="; ".join(n for n in (s.provenance.note, c.provenance.note) if n),
        )
        return NativeRaster(s.grid, usda_texture_class(s.data, c.data), prov, s.lattice, s.offset)
