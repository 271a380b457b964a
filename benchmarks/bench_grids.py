"""Resampling speed: gather through a precomputed nearest index vs GDAL, one core.

Figures are target megapixels per second (median of repeats) for one 90 m tile
(1200 x 1200 px of ``conus-90m``): the separable case (gridMET-like 1/24 degree
source in the same CRS) and the non-separable case (a 300 m CONUS Albers source),
the one-off cost of building each index, and the speed-up of gather over
``rasterio.warp.reproject`` (GDAL nearest) measured in the same run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from grids import Grid, gather, named_grid, nearest_index
from grids.resample import clear_caches


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (page faults, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _gdal_seconds(data: np.ndarray, src: Grid, dst: Grid, repeats: int) -> float:
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    out = np.empty(dst.shape, dtype=data.dtype)
    src_crs, dst_crs = src.to_wkt(), dst.to_wkt()

    def run() -> None:
        reproject(
            data,
            out,
            src_transform=src.affine,
            src_crs=src_crs,
            dst_transform=dst.affine,
            dst_crs=dst_crs,
            resampling=Resampling.nearest,
            num_threads=1,
        )

    return _median_seconds(run, repeats)


def run(quick: bool = False) -> dict[str, Any]:
    """Mpx/s of separable and non-separable gather, index build times, ratios to GDAL."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    repeats = 5 if quick else 25
    size = 600 if quick else 1200
    rng = np.random.default_rng(0)
    tile = named_grid("conus-90m").crop((-98.0, 35.0, -97.0, 36.0)).window(0, size, 0, size)
    mpx = tile.size / 1e6

    # Separable: 1/24 degree source (gridMET lattice) covering the tile, same CRS.
    sep_src = Grid.from_bounds((-99.0, 34.0, -96.0, 37.0), 1 / 24, "EPSG:4326")
    # Non-separable: 300 m CONUS Albers source covering the tile.
    nonsep_src = Grid.from_bounds((-300_000.0, 1_250_000.0, 0.0, 1_550_000.0), 300.0, "EPSG:5070")

    figures: dict[str, Any] = {"tile_px": tile.size}
    for name, src in (("separable", sep_src), ("non_separable", nonsep_src)):
        clear_caches()
        t0 = time.perf_counter()
        idx = nearest_index(src, tile)
        build = time.perf_counter() - t0
        if idx.coverage < 1.0:
            raise RuntimeError(f"benchmark source does not cover the tile ({idx.coverage:.3f})")
        data = rng.random(src.shape, dtype=np.float32)
        stack = rng.random((8, *src.shape), dtype=np.float32)
        t_one = _median_seconds(lambda d=data, i=idx: gather(d, i), repeats)
        t_stack = _median_seconds(lambda d=stack, i=idx: gather(d, i), max(3, repeats // 3))
        t_gdal = _gdal_seconds(data, src, tile, max(3, repeats // 3))
        figures[name] = {
            "gather_mpx_per_s": mpx / t_one,
            "gather_8_layers_mpx_per_s": 8 * mpx / t_stack,
            "index_build_ms": build * 1e3,
            "index_build_over_gather": build / t_one,
            "gdal_reproject_mpx_per_s": mpx / t_gdal,
            "speedup_over_gdal": t_gdal / t_one,
        }
    figures["separable_meets_100_mpx_per_s"] = bool(
        figures["separable"]["gather_mpx_per_s"] >= 100.0
    )
    return figures


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
