"""A ``Source`` for a static single-file layer (SoilGrids property, Koeppen map).

The file is found once at construction; ``native`` reads the window
covering the bounds, converts stored values with ``convert`` and applies the
range rule of ``pipeline.sources.base`` (or, for categorical layers, turns
unknown codes into NaN, counted in the note).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.sources.base import (
    DEFAULT_MARGIN_PIXELS,
    DEFAULT_RANGE_TOLERANCE,
    Bounds,
    MissingInputError,
    NativeRaster,
    Provenance,
    apply_physical_range,
    categorical_clean,
    range_note,
)
from pipeline.sources.raster import BandInfo, CRSCheck, lattice_offset, read_file_window


class StaticFileSource:
    """A static layer held in one raster file (GeoTIFF/COG/VRT)."""

    def __init__(
        self,
        variable: str,
        product: str,
        candidates: list[Path],
        *,
        crs_ok: CRSCheck,
        crs_desc: str,
        convert: Callable[[np.ndarray, BandInfo], np.ndarray],
        codes: range | None = None,
        margin: int = DEFAULT_MARGIN_PIXELS,
        range_tolerance: float = DEFAULT_RANGE_TOLERANCE,
    ) -> None:
        self.variable = variable
        self.product = product
        self.candidates = [Path(c) for c in candidates]
        self.path: Path | None = next((c for c in self.candidates if c.is_file()), None)
        self._crs_ok = crs_ok
        self._crs_desc = crs_desc
        self._convert = convert
        self._codes = codes
        self.margin = margin
        self.range_tolerance = range_tolerance

    def available(self, date: dt.date | None = None) -> Provenance | None:
        if self.path is None:
            return None
        return Provenance(self.variable, (str(self.path),), self.product)

    def native(self, date: dt.date | None, bounds: Bounds) -> NativeRaster:
        if self.path is None:
            raise MissingInputError(
                " or ".join(str(c) for c in self.candidates),
                "static layer file not found",
                variable=self.variable,
            )
        return self.read(self.path, bounds)

    def read(self, path: str | os.PathLike[str], bounds: Bounds | None) -> NativeRaster:
        """Read ``path`` (this layer's format) on the window covering ``bounds``."""
        window, raw, info = read_file_window(
            path,
            bounds,
            crs_ok=self._crs_ok,
            crs_desc=self._crs_desc,
            margin=self.margin,
            variable=self.variable,
        )
        data = self._convert(raw, info).astype(np.float32)
        if self._codes is not None:
            data, n = categorical_clean(data, self._codes)
            note = f"{n} code(s) outside {self._codes.start}-{self._codes.stop - 1} set to NaN"
            note = note if n else ""
        else:
            data, n = apply_physical_range(
                data, self.variable, path, tolerance=self.range_tolerance
            )
            note = range_note(n, self.variable)
        prov = Provenance(self.variable, (str(path),), self.product, note=note)
        return NativeRaster(window, data, prov, info.grid, lattice_offset(info.grid, window, path))
