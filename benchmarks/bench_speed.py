"""Issue 19 speed figures: the Dense kernel vs the fused ONNX graph, tile features, a region day.

Every ratio is measured in one run on the same rows or tile (the machine is shared:
``load_avg`` before and after says how busy it was; ratios are the honest figure,
seconds are not):

- ``inference``: a 7-member Dense ensemble (trained as ``bench_conus`` does) on the
  same rows, one intra-op thread, CPU medians with the runs interleaved: the fused
  ONNX graph (``mode="fused"``), the numba kernel (``mode="auto"``, ``models.densekernel``)
  and the members one by one; ``speedup_vs_fused_ort``; and how many published values
  (uint16 counts of mean, sd, spread) differ between kernel and graph (0 expected);
- ``features``: one all-land 1200 x 1200 conus-90m tile on lazy inputs: cold (index
  caches cleared) and warm features CPU, the tile end to end (features, kernel,
  encode, write) cold and warm, and the parts changed in issue 19 on that tile:
  closed-form vs PROJ sinusoidal centres, the compiled vs numpy 2-D index,
  ``normalize_crs`` cached vs uncached;
- ``region_day``: static stack and one day on a centred window of conus-90m
  (1/64 of it; 1/2304 when quick) on two worker processes, measured whole;
- ``conus_day``: the whole conus-90m grid measured whole when ``SMDOWN_BENCH_WHOLE=1``
  (``measured_whole`` true), else the region day scaled by tile counts
  (``measured_whole`` false, ``basis`` says how); ``on_paper``: land tiles x the
  all-land tile's cold end-to-end CPU, on two cores (extrapolated, idle machine).
"""

from __future__ import annotations

import functools
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_conus import (
    CONUS_PX,
    DAY,
    TARGET_DAY_S,
    _cluster,
    _settings,
    conus_extent,
    feature_rows,
    load_avg,
    region_grid,
    run_region,
    train_models,
)


def _cpu(fn: Callable[[], object]) -> float:
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def _interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median CPU seconds of each function, the runs interleaved (load drifts hit all)."""
    for fn in fns.values():
        fn()  # warm-up (compilation, first-touch)
    got: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            got[k].append(_cpu(fn))
    return {k: statistics.median(v) for k, v in got.items()}


def inference(model_dir: Path, n_rows: int, repeats: int) -> dict[str, Any]:
    """Dense ensemble: fused ONNX graph vs kernel vs members on the same rows, 1 thread."""
    from models.runtime import Ensemble
    from pipeline.cube.encoding import pack_u16

    x, _ = feature_rows(n_rows)
    kernel = Ensemble.load(model_dir)
    fused = Ensemble.load(model_dir, mode="fused")
    members = Ensemble.load(model_dir, mode="members")
    cpu = _interleaved(
        {
            "fused": functools.partial(fused.predict, x),
            "kernel": functools.partial(kernel.predict, x),
            "members": functools.partial(members.predict, x),
        },
        repeats,
    )
    a, b = kernel.predict(x), fused.predict(x)
    counts = {
        name: int(np.count_nonzero(pack_u16(getattr(a, name)) != pack_u16(getattr(b, name))))
        for name in ("mean", "sd", "spread")
    }
    return {
        "rows": n_rows,
        "members": kernel.n_members,
        "kernel_mode": kernel.mode,
        "fused_cpu_us_per_row": cpu["fused"] / n_rows * 1e6,
        "kernel_cpu_us_per_row": cpu["kernel"] / n_rows * 1e6,
        "members_cpu_us_per_row": cpu["members"] / n_rows * 1e6,
        "speedup_vs_fused_ort": cpu["fused"] / cpu["kernel"],
        "speedup_vs_members_ort": cpu["members"] / cpu["kernel"],
        "published_counts_differing": counts,
        "float32_values_differing": int(
            sum(np.count_nonzero(getattr(a, n) != getattr(b, n)) for n in ("mean", "sd", "spread"))
        ),
    }


def features(root: Path, model_dir: Path, tile_size: int, repeats: int) -> dict[str, Any]:
    """Cold and warm features of one all-land tile, and the issue-19 parts on that tile."""
    from grids import resample as rs
    from grids.grid import _normalize_crs, normalize_crs
    from grids.named import MODIS_SINUSOIDAL_CRS, modis_tile_grid, named_grid
    from pipeline.run import build_plan, make_tile, run_day, tile_features
    from pipeline.run.static import landcover_year
    from pipeline.synth.lazy import lazy_catalog

    grid = named_grid("conus-90m").crop((-97.0, 36.0, -96.0, 37.0))
    grid = grid.window(0, tile_size, 0, tile_size)
    settings = _settings(root, model_dir, tile_size, "features")
    plan = build_plan(settings, mode="maps", catalog_factory=lazy_catalog, grid=grid)
    run_day(settings, DAY, client=None, plan=plan, force=True)  # static stack, compiled code
    splan = plan.static_for(landcover_year(plan, DAY), DAY)
    tile = splan.tile(0, 0)

    def cold() -> None:
        rs.clear_caches()
        tile_features(splan, tile, DAY)

    cold_s = statistics.median(_cpu(cold) for _ in range(repeats))
    warm_s = statistics.median(
        _cpu(lambda: tile_features(splan, tile, DAY)) for _ in range(repeats)
    )

    def tile_cold() -> None:
        rs.clear_caches()
        make_tile(splan, tile, DAY)

    tile_cold_s = statistics.median(_cpu(tile_cold) for _ in range(repeats))
    tile_warm_s = statistics.median(
        _cpu(lambda: make_tile(splan, tile, DAY)) for _ in range(repeats)
    )
    g = tile.grid
    x, y = g.pixel_centres()
    proj_s = statistics.median(
        _cpu(lambda: rs.transform_xy(x, y, g.crs, MODIS_SINUSOIDAL_CRS)) for _ in range(repeats)
    )
    closed_s = statistics.median(
        _cpu(lambda: rs._sinusoidal_centres(g, MODIS_SINUSOIDAL_CRS)) for _ in range(repeats)
    )
    src = modis_tile_grid(10, 5, 250)

    import numba  # noqa: F401  (loaded by the Dense kernel in a map worker)

    def index(fused: bool) -> None:
        rs.clear_caches()
        saved = rs._COMPILED_ALLOWED
        rs._COMPILED_ALLOWED = fused
        try:
            rs.nearest_index(src, g)
        finally:
            rs._COMPILED_ALLOWED = saved

    idx = _interleaved({"numpy": lambda: index(False), "fused": lambda: index(True)}, repeats)
    rs.clear_caches()
    n = 200
    uncached = _cpu(lambda: [_normalize_crs(MODIS_SINUSOIDAL_CRS) for _ in range(20)]) / 20
    cached = _cpu(lambda: [normalize_crs(MODIS_SINUSOIDAL_CRS) for _ in range(n)]) / n
    shutil.rmtree(root / "features", ignore_errors=True)
    return {
        "tile_px": g.size,
        "cold_features_cpu_s": cold_s,
        "warm_features_cpu_s": warm_s,
        "target_warm_cpu_s": 0.15,
        "tile_end_to_end_cold_cpu_s": tile_cold_s,
        "tile_end_to_end_warm_cpu_s": tile_warm_s,
        "sinusoidal_centres_proj_cpu_s": proj_s,
        "sinusoidal_centres_closed_form_cpu_s": closed_s,
        "sinusoidal_speedup": proj_s / max(closed_s, 1e-9),
        "index_2d_numpy_cpu_s": idx["numpy"],
        "index_2d_fused_cpu_s": idx["fused"],
        "index_2d_speedup": idx["numpy"] / max(idx["fused"], 1e-9),
        "normalize_crs_uncached_ms": uncached * 1e3,
        "normalize_crs_cached_us": cached * 1e6,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Inference ratio, tile features, a region day and the CONUS day (see the docstring)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    whole = os.environ.get("SMDOWN_BENCH_WHOLE") == "1" and not quick
    root = Path(tempfile.mkdtemp(prefix="smdown-bench-speed-"))
    out: dict[str, Any] = {"load_avg_before": load_avg(), "day": DAY.isoformat()}
    try:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            # bench_conus's Dense: 7 members (1 when quick), trained without TF in this process.
            dirs = pool.submit(train_models, root, quick, ("dense",)).result()
        dense = dirs["dense"]
        out["inference"] = inference(dense, 20_000 if quick else 262_144, 3 if quick else 7)
        tile = 240 if quick else 1200
        out["features"] = features(root, dense, tile, 3 if quick else 5)
        side = 1 / 48 if quick else 1 / 8
        with _cluster(2) as client:
            region = run_region(client, root, dense, region_grid(side), tile, "region")
            out["region_day"] = region
            if whole:
                from grids.named import named_grid

                day = run_region(client, root, dense, named_grid("conus-90m"), tile, "conus")
        ext = conus_extent(tile)
        if whole:
            conus: dict[str, Any] = {
                "measured_whole": True,
                "basis": "whole conus-90m",
                "static_stack_s": day["static_s"],
                "wall_s": day["day_s"],
                "run": day,
            }
        else:
            k_static = ext["tiles"] / region["tiles"]
            k_day = ext["land_tiles"] / region["land_tiles"]
            conus = {
                "measured_whole": False,
                "basis": (
                    f"region day ({region['pixels'] / CONUS_PX:.4f} of the CONUS grid) scaled: "
                    f"static x{k_static:.1f} (tiles), day x{k_day:.1f} (tiles holding land)"
                ),
                "static_stack_s": region["static_s"] * k_static,
                "wall_s": region["day_s"] * k_day,
            }
        # On paper from this run's CPU parts: every land tile costs what the all-land tile
        # costs end to end with cold indices (a CONUS day cannot keep them all in memory).
        paper = ext["land_tiles"] * out["features"]["tile_end_to_end_cold_cpu_s"]
        conus["on_paper"] = {
            "basis": "conus land tiles x one all-land tile's cold end-to-end CPU s, / 2 cores",
            "cpu_s": paper,
            "wall_s_2_cores": paper / 2,
            "core_h": paper / 3600,
        }
        conus["target_wall_s"] = TARGET_DAY_S
        conus["conus_tiles"] = ext["tiles"]
        conus["conus_land_tiles"] = ext["land_tiles"]
        out["conus_day"] = conus
        out["table"] = {
            "seconds_658k_rows": None,
            "note": "not measured in issue 19 (batched point sampling not built)",
        }
        out["load_avg_after"] = load_avg()
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1, default=str))
